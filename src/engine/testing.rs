//! Test support: a tiny random-weight Qwen2 model, written to disk, for fast tests anywhere in
//! the project.
//!
//! The model has 2 layers, hidden size 64, 4 query heads and 2 K/V heads (head_dim 16), an MLP
//! of 128 and a byte-level GPT-2 tokenizer (256 byte tokens, three merges, and the Qwen2.5
//! special tokens including the FIM markers) embedded in the GGUF metadata, so it loads through
//! exactly the same code path as a real Qwen2.5-Coder GGUF. Its output is noise, but it is
//! deterministic for a given seed.
//!
//! Also where the tests find the real model ([`real_model`]).
#![doc(hidden)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;

use super::vocab::byte_to_char;
use crate::rng::Rng;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Special tokens of the tiny vocabulary, in id order after the regular tokens.
pub const TINY_SPECIAL_TOKENS: [&str; 7] =
    ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"];

/// BPE merges of the tiny vocabulary (each result is also a token).
const TINY_MERGES: [(&str, &str); 3] = [("Ġ", "Ġ"), ("e", "r"), ("ĠĠ", "ĠĠ")];

const LAYERS: usize = 2;
const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 128;
const CONTEXT: usize = 1024;
const ROPE_THETA: f32 = 10_000.0;
const RMS_EPS: f32 = 1e-6;

/// Variants of the tiny model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TinyOptions {
    /// Store the embedding and linear layers as Q8_0 (like a real quantized GGUF) instead of F32.
    pub quantized: bool,
    /// Reuse the embedding as the LM head (no `output.weight`), like Qwen2.5-Coder-0.5B.
    pub tied: bool,
    /// Transformer blocks (a one-block model's keys and values depend only on each token and
    /// its position, which some cache tests need).
    pub layers: usize,
}

impl Default for TinyOptions {
    fn default() -> Self {
        Self { quantized: true, tied: true, layers: LAYERS }
    }
}

/// Writes the default tiny model (Q8_0, tied embeddings) as `dir/tiny-qwen2-{seed}.gguf`.
pub fn write_tiny_model(dir: &Path, seed: u64) -> anyhow::Result<PathBuf> {
    write_tiny_gguf(dir, seed, TinyOptions::default())
}

/// The real model the tests use: `$INKLING_TEST_MODEL`, else the small model in the cache
/// (`python3 finetune/fetch_model.py --small`). `None` when there is neither: a unit test then
/// says it did not run. With `CI` set (as `.ci/run` runs) a missing model is an error instead,
/// so the suite there can never pass without the real model.
pub fn real_model() -> Option<PathBuf> {
    let path = match std::env::var_os("INKLING_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => crate::models::cached_model(crate::models::SMALL_MODEL)?,
    };
    if path.exists() {
        return Some(path);
    }
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    assert!(!ci, "the real-model tests need {}: run `python3 finetune/fetch_model.py --small` (or set INKLING_TEST_MODEL)", path.display());
    eprintln!("no real model at {}: this real-model test did not run", path.display());
    None
}

/// The default tiny model, written once per process into a temporary folder.
pub fn tiny_model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("inkling-tiny-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create a temporary folder for the tiny model");
        write_tiny_model(&dir, 42).expect("write the tiny model")
    })
    .clone()
}

/// Writes a tiny GGUF with the given options as `dir/tiny-qwen2-{seed}[-f32][-untied].gguf`.
pub fn write_tiny_gguf(dir: &Path, seed: u64, opts: TinyOptions) -> anyhow::Result<PathBuf> {
    let tokens = tiny_tokens();
    let mut tensors = Vec::new();
    for t in tiny_tensors(seed, tokens.len(), opts.tied, opts.layers)? {
        let q = if opts.quantized && t.matrix {
            QTensor::quantize(&t.value, GgmlDType::Q8_0)?
        } else {
            QTensor::quantize(&t.value, GgmlDType::F32)?
        };
        tensors.push((t.gguf_name, q));
    }

    let special_start = tokens.len() - TINY_SPECIAL_TOKENS.len();
    let eos = Value::U32(special_start as u32);
    let u32v = |v: usize| Value::U32(v as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("qwen2".into())),
        ("general.name", Value::String(format!("inkling tiny qwen2 (seed {seed})"))),
        ("qwen2.block_count", u32v(opts.layers)),
        ("qwen2.context_length", u32v(CONTEXT)),
        ("qwen2.embedding_length", u32v(HIDDEN)),
        ("qwen2.feed_forward_length", u32v(FFN)),
        ("qwen2.attention.head_count", u32v(HEADS)),
        ("qwen2.attention.head_count_kv", u32v(KV_HEADS)),
        ("qwen2.rope.freq_base", Value::F32(ROPE_THETA)),
        ("qwen2.attention.layer_norm_rms_epsilon", Value::F32(RMS_EPS)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("qwen2".into())),
        ("tokenizer.ggml.tokens", Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect())),
        (
            "tokenizer.ggml.token_type",
            // 1 = normal, 3 = control (registered as special tokens by the GGUF tokenizer).
            Value::Array((0..tokens.len()).map(|i| Value::I32(if i >= special_start { 3 } else { 1 })).collect()),
        ),
        ("tokenizer.ggml.merges", Value::Array(TINY_MERGES.iter().map(|(a, b)| Value::String(format!("{a} {b}"))).collect())),
        ("tokenizer.ggml.eos_token_id", eos.clone()),
        ("tokenizer.ggml.padding_token_id", eos.clone()),
        ("tokenizer.ggml.bos_token_id", eos),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ];

    std::fs::create_dir_all(dir)?;
    let mut name = format!("tiny-qwen2-{seed}");
    if !opts.quantized {
        name.push_str("-f32");
    }
    if !opts.tied {
        name.push_str("-untied");
    }
    if opts.layers != LAYERS {
        name.push_str(&format!("-{}layers", opts.layers));
    }
    let path = dir.join(format!("{name}.gguf"));
    // Write to a temporary name and rename, so a concurrent reader never sees half a file.
    let partial = dir.join(format!("{name}.gguf.partial-{}", std::process::id()));
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
        let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
        gguf_file::write(&mut file, &md, &ts)?;
        std::io::Write::flush(&mut file)?;
    }
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

/// Writes the same tiny model (F32 weights) as a Hugging Face folder `dir/tiny-qwen2-hf-{seed}`
/// with `config.json`, `tokenizer.json` and `model.safetensors`. With equal `seed` and `tied`
/// it computes the same function as `write_tiny_gguf(.., TinyOptions { quantized: false, .. })`.
pub fn write_tiny_hf(dir: &Path, seed: u64, tied: bool) -> anyhow::Result<PathBuf> {
    use candle_core::quantized::tokenizer::TokenizerFromGguf as _;

    let folder = dir.join(format!("tiny-qwen2-hf-{seed}{}", if tied { "" } else { "-untied" }));
    std::fs::create_dir_all(&folder)?;
    // The tokenizer is the GGUF one, serialized as tokenizer.json.
    let gguf = write_tiny_gguf(&folder, seed, TinyOptions { quantized: false, tied, layers: LAYERS })?;
    let content = gguf_file::Content::read(&mut std::fs::File::open(&gguf)?)?;
    let tokenizer = tokenizers::Tokenizer::from_gguf(&content)?;
    std::fs::remove_file(&gguf)?;
    tokenizer.save(folder.join("tokenizer.json"), false).map_err(|e| anyhow::anyhow!("saving tokenizer.json: {e}"))?;

    let tokens = tiny_tokens();
    let tensors: std::collections::HashMap<String, Tensor> =
        tiny_tensors(seed, tokens.len(), tied, LAYERS)?.into_iter().map(|t| (t.hf_name, t.value)).collect();
    candle_core::safetensors::save(&tensors, folder.join("model.safetensors"))?;

    let config = serde_json::json!({
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "vocab_size": tokens.len(),
        "hidden_size": HIDDEN,
        "intermediate_size": FFN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": CONTEXT,
        "rope_theta": ROPE_THETA,
        "rms_norm_eps": RMS_EPS,
        "tie_word_embeddings": tied,
        "torch_dtype": "float32",
    });
    std::fs::write(folder.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    Ok(folder)
}

/// The tiny vocabulary: 256 byte tokens (GPT-2 byte-to-unicode mapping, id = byte value), the
/// merge results, then [`TINY_SPECIAL_TOKENS`].
pub fn tiny_tokens() -> Vec<String> {
    let mut tokens: Vec<String> = byte_to_char().iter().map(char::to_string).collect();
    tokens.extend(TINY_MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.extend(TINY_SPECIAL_TOKENS.iter().map(|s| s.to_string()));
    tokens
}

/// One weight of the tiny model under both naming schemes.
struct TinyTensor {
    gguf_name: String,
    hf_name: String,
    value: Tensor,
    /// A matrix (quantizable) rather than a norm or bias vector.
    matrix: bool,
}

/// Deterministic random weights, scaled so that activations stay around unit size.
fn tiny_tensors(seed: u64, vocab: usize, tied: bool, layers: usize) -> anyhow::Result<Vec<TinyTensor>> {
    let mut rng = Rng::new(seed);
    let kv = KV_HEADS * (HIDDEN / HEADS);
    let mut out = Vec::new();
    let mut push = |gguf: String, hf: String, dims: &[usize], kind: Kind| -> anyhow::Result<()> {
        let count: usize = dims.iter().product();
        let data: Vec<f32> = (0..count)
            .map(|_| match kind {
                Kind::Matrix => rng.signed_unit_f32() * (3.0 / dims[1] as f32).sqrt(),
                Kind::Embedding => rng.signed_unit_f32(),
                Kind::Norm => 1.0 + 0.1 * rng.signed_unit_f32(),
                Kind::Bias => 0.1 * rng.signed_unit_f32(),
            })
            .collect();
        let value = Tensor::from_vec(data, dims, &Device::Cpu).context("tiny tensor")?;
        let matrix = matches!(kind, Kind::Matrix | Kind::Embedding);
        out.push(TinyTensor { gguf_name: gguf, hf_name: hf, value, matrix });
        Ok(())
    };
    push("token_embd.weight".into(), "model.embed_tokens.weight".into(), &[vocab, HIDDEN], Kind::Embedding)?;
    for i in 0..layers {
        let (g, h) = (format!("blk.{i}"), format!("model.layers.{i}"));
        push(format!("{g}.attn_norm.weight"), format!("{h}.input_layernorm.weight"), &[HIDDEN], Kind::Norm)?;
        for (gn, hn, rows) in [("attn_q", "q_proj", HIDDEN), ("attn_k", "k_proj", kv), ("attn_v", "v_proj", kv)] {
            push(format!("{g}.{gn}.weight"), format!("{h}.self_attn.{hn}.weight"), &[rows, HIDDEN], Kind::Matrix)?;
            push(format!("{g}.{gn}.bias"), format!("{h}.self_attn.{hn}.bias"), &[rows], Kind::Bias)?;
        }
        push(format!("{g}.attn_output.weight"), format!("{h}.self_attn.o_proj.weight"), &[HIDDEN, HIDDEN], Kind::Matrix)?;
        push(format!("{g}.ffn_norm.weight"), format!("{h}.post_attention_layernorm.weight"), &[HIDDEN], Kind::Norm)?;
        push(format!("{g}.ffn_gate.weight"), format!("{h}.mlp.gate_proj.weight"), &[FFN, HIDDEN], Kind::Matrix)?;
        push(format!("{g}.ffn_up.weight"), format!("{h}.mlp.up_proj.weight"), &[FFN, HIDDEN], Kind::Matrix)?;
        push(format!("{g}.ffn_down.weight"), format!("{h}.mlp.down_proj.weight"), &[HIDDEN, FFN], Kind::Matrix)?;
    }
    push("output_norm.weight".into(), "model.norm.weight".into(), &[HIDDEN], Kind::Norm)?;
    if !tied {
        push("output.weight".into(), "lm_head.weight".into(), &[vocab, HIDDEN], Kind::Matrix)?;
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Matrix,
    Embedding,
    Norm,
    Bias,
}
