//! Reading Qwen2 weights from disk: GGUF files and Hugging Face folders.
//!
//! Both loaders produce the same [`Weights`]: every linear layer is a [`QMatMul`] (quantized
//! blocks from GGUF, Q5_0 re-encoded as Q8_0 only where candle's kernels will run it, see
//! [`super::quant`]; plain f32 for safetensors), norms and biases are f32 tensors. Each
//! [`Linear`] decides at load which kernels multiply it: the project's ([`kernels`]) for inputs
//! of a few rows where [`kernels::own_max_rows`] says so, else candle's. Every tensor's shape is checked against the
//! [`ModelConfig`] here, so a mismatching or truncated file is a [`LoadError`] rather than a
//! shape error (or a panic) during the first completion.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use tokenizers::Tokenizer;

use super::config::ModelConfig;
use super::quant::fast_cpu_layout;
use super::LoadError;
use crate::engine::kernels::{self, Format};

/// A linear layer `y = x Wᵀ (+ b)`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: QMatMul,
    bias: Option<Tensor>,
    /// Inputs of at least this many rows take the dense path (see [`DENSE_PREFILL_MIN_ROWS`]).
    dense_min_rows: usize,
    /// Whether inputs of fewer than `own_max_rows` rows take the project's kernels (see
    /// [`kernels`]); larger ones go to candle's tiled kernels, unless the dense path is off
    /// (then every input takes the project's kernels, so that a result never depends on how
    /// the input was split into chunks).
    own_kernels: bool,
    /// What `own_kernels` was at load ([`kernels::preferred_for`]).
    preferred: bool,
    own_max_rows: usize,
    /// The most rows the project's kernels may take for this weight's format
    /// ([`kernels::own_max_rows`]), whatever `own_max_rows` is set to, unless the dense path is off.
    format_max_rows: usize,
}

/// Inputs of at least this many rows (prefill chunks) multiply a Q8_0 or Q5_0 weight through a
/// dense f32 copy made on the fly. The quantized kernels decode each block of weights once for a
/// few rows and take one 8-bit dot product per (row, block) pair, while candle's f32 matmul is a
/// blocked GEMM that pays for the copy once per chunk: after 1,000 cached tokens of the 0.5B, a
/// step of 48 new tokens runs ~15% faster on the quantized kernels, one of 64 ~10% slower, and a
/// 512-token chunk over twice as fast on the dense path (`cargo bench --bench engine`). Decoding
/// and speculative checks stay on the quantized kernels, which read 4–6x fewer bytes. No copy is
/// kept. The two paths round differently (the dense one is the more exact), so logits can differ
/// slightly with how a prompt was split between prefill and cache reuse.
pub const DENSE_PREFILL_MIN_ROWS: usize = 56;

impl Linear {
    fn new(weight: QMatMul, bias: Option<Tensor>) -> Linear {
        let format_max_rows = match &weight {
            QMatMul::QTensor(q) if q.device().is_cpu() => Format::of(q.dtype()).map_or(0, kernels::own_max_rows),
            _ => 0,
        };
        let own_kernels = format_max_rows > 0;
        Linear {
            weight,
            bias,
            dense_min_rows: DENSE_PREFILL_MIN_ROWS,
            own_kernels,
            preferred: own_kernels,
            own_max_rows: DENSE_PREFILL_MIN_ROWS.min(format_max_rows),
            format_max_rows,
        }
    }

    /// Inputs of at least `rows` rows go dense (Q8_0, Q5_0) or to candle; `usize::MAX` turns the
    /// dense path off and sends every input of a preferred format to the project's kernels.
    fn set_dense_min_rows(&mut self, rows: usize) {
        self.dense_min_rows = rows;
        self.limit_own_rows(rows);
    }

    /// The project's kernels take inputs of fewer than `rows` rows, within what the format
    /// allows (`usize::MAX`: all of them, so that a result never depends on how inputs were split).
    fn limit_own_rows(&mut self, rows: usize) {
        self.own_max_rows = if rows == usize::MAX { rows } else { rows.min(self.format_max_rows) };
    }

    /// The output head: never dense (an f32 copy of a 150k-row vocabulary is too big).
    fn output_head(weight: QMatMul) -> Linear {
        Linear { dense_min_rows: usize::MAX, ..Linear::new(weight, None) }
    }

    /// Applies the layer to `x` (`[.., in]` → `[.., out]`); `x` must be contiguous.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            QMatMul::QTensor(q) if x.device().is_cpu() => {
                let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
                match Format::of(q.dtype()) {
                    Some(Format::Q8_0 | Format::Q5_0) if rows >= self.dense_min_rows => {
                        let _span = tracing::trace_span!("dense_prefill").entered();
                        x.broadcast_matmul(&kernels::dequantize(q)?.t()?)?
                    }
                    Some(format) if self.own_kernels && rows < self.own_max_rows => kernels::forward(format, q, x)?,
                    _ => self.weight.forward(x)?,
                }
            }
            weight => weight.forward(x)?,
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// The token embedding table.
#[derive(Debug, Clone)]
pub enum Embedding {
    /// Quantized rows, dequantized on lookup (saves `vocab × hidden × 4` bytes of RAM).
    Quantized(Arc<QTensor>),
    /// A dense `[vocab, hidden]` table.
    Dense(Tensor),
}

impl Embedding {
    /// Looks up `ids` (`[n]`, u32) and returns `[n, hidden]` f32 rows.
    pub fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Quantized(q) => q.embedding(ids)?.to_dtype(DType::F32),
            Self::Dense(t) => t.index_select(ids, 0),
        }
    }
}

/// The weights of one transformer block.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: Tensor,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub ffn_norm: Tensor,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

/// All the weights of a Qwen2 model, ready for [`super::qwen2::Model::new`].
#[derive(Debug, Clone)]
pub struct Weights {
    pub embed: Embedding,
    pub layers: Vec<LayerWeights>,
    pub final_norm: Tensor,
    pub lm_head: Linear,
}

impl Weights {
    fn layer_linears(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.layers.iter_mut().flat_map(|l| [&mut l.q, &mut l.k, &mut l.v, &mut l.o, &mut l.gate, &mut l.up, &mut l.down])
    }

    /// Sends inputs of at least `rows` rows to the dense prefill path in every layer
    /// ([`DENSE_PREFILL_MIN_ROWS`] by default; `usize::MAX` turns it off, to measure what it
    /// brings and to test cache mechanics on one kernel).
    pub fn set_dense_min_rows(&mut self, rows: usize) {
        self.layer_linears().for_each(|lin| lin.set_dense_min_rows(rows));
        self.lm_head.limit_own_rows(rows);
    }

    /// Turns the project's kernels off (candle's kernels everywhere; to test one against the
    /// other) or back to the choice made at load ([`kernels::preferred_for`]).
    pub fn set_own_kernels(&mut self, on: bool) {
        self.layer_linears().for_each(|lin| lin.own_kernels = on && lin.preferred);
        self.lm_head.own_kernels = on && self.lm_head.preferred;
    }
}

/// What both loaders return.
pub type Loaded = (ModelConfig, Weights, Tokenizer);

/// Loads a GGUF file (caller has checked the magic bytes).
pub fn load_gguf(path: &Path, device: &Device) -> Result<Loaded, LoadError> {
    let _span = tracing::debug_span!("load_gguf", path = %path.display()).entered();
    let file = File::open(path).map_err(|e| LoadError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| LoadError::corrupt(path, e))?;
    let mut cfg = ModelConfig::from_gguf(&content).map_err(|e| LoadError::config(path, e))?;
    let tokenizer = {
        use candle_core::quantized::tokenizer::TokenizerFromGguf;
        Tokenizer::from_gguf(&content).map_err(|e| LoadError::Tokenizer {
            path: path.to_path_buf(),
            detail: format!("the GGUF's embedded tokenizer cannot be read: {e}"),
        })?
    };

    // GGUF has no vocabulary-size key: the embedding table is authoritative.
    let vocab = match content.tensor_infos.get("token_embd.weight") {
        Some(info) => info.shape.dims().first().copied().unwrap_or(0),
        None => return Err(LoadError::corrupt(path, "missing tensor `token_embd.weight`")),
    };
    cfg.vocab_size = vocab;
    cfg.tie_word_embeddings = !content.tensor_infos.contains_key("output.weight");
    cfg.validate().map_err(|e| LoadError::config(path, e))?;

    let mut gguf = GgufTensors { path, content: &content, reader: &mut reader, device };
    let (h, kv, ffn) = (cfg.hidden_size, cfg.kv_dim(), cfg.intermediate_size);
    let embed = Arc::new(gguf.quantized("token_embd.weight", &[vocab, h])?);
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("blk.{i}");
        layers.push(LayerWeights {
            attn_norm: gguf.dense(&format!("{p}.attn_norm.weight"), &[h])?,
            q: gguf.linear(&p, "attn_q", [h, h], true)?,
            k: gguf.linear(&p, "attn_k", [kv, h], true)?,
            v: gguf.linear(&p, "attn_v", [kv, h], true)?,
            o: gguf.linear(&p, "attn_output", [h, h], false)?,
            ffn_norm: gguf.dense(&format!("{p}.ffn_norm.weight"), &[h])?,
            gate: gguf.linear(&p, "ffn_gate", [ffn, h], false)?,
            up: gguf.linear(&p, "ffn_up", [ffn, h], false)?,
            down: gguf.linear(&p, "ffn_down", [h, ffn], false)?,
        });
    }
    let final_norm = gguf.dense("output_norm.weight", &[h])?;
    let lm_head = if cfg.tie_word_embeddings {
        QMatMul::from_arc(embed.clone())
    } else {
        QMatMul::from_qtensor(gguf.quantized("output.weight", &[vocab, h])?)
    }
    .map_err(|e| LoadError::corrupt(path, e))?;
    let lm_head = Linear::output_head(lm_head);
    let weights = Weights { embed: Embedding::Quantized(embed), layers, final_norm, lm_head };
    Ok((cfg, weights, tokenizer))
}

/// Reads named tensors out of a parsed GGUF, checking shapes and mapping errors.
struct GgufTensors<'a, R> {
    path: &'a Path,
    content: &'a gguf_file::Content,
    reader: &'a mut R,
    device: &'a Device,
}

impl<R: std::io::Read + std::io::Seek> GgufTensors<'_, R> {
    /// Reads `name`, checking it has shape `dims` (PyTorch order: `[out, in]`).
    fn quantized(&mut self, name: &str, dims: &[usize]) -> Result<QTensor, LoadError> {
        let info = self.content.tensor_infos.get(name).ok_or_else(|| LoadError::corrupt(self.path, format!("missing tensor `{name}`")))?;
        if info.shape.dims() != dims {
            return Err(LoadError::corrupt(self.path, format!("tensor `{name}` has shape {:?}, expected {dims:?}", info.shape.dims())));
        }
        let qt = info
            .read(self.reader, self.content.tensor_data_offset, self.device)
            .map_err(|e| LoadError::corrupt(self.path, format!("tensor `{name}`: {e}")))?;
        fast_cpu_layout(qt).map_err(|e| LoadError::corrupt(self.path, e))
    }

    /// Reads `name` and dequantizes it to f32 (norms and biases).
    fn dense(&mut self, name: &str, dims: &[usize]) -> Result<Tensor, LoadError> {
        let qt = self.quantized(name, dims)?;
        qt.dequantize(self.device)
            .and_then(|t| t.to_dtype(DType::F32))
            .map_err(|e| LoadError::corrupt(self.path, format!("tensor `{name}`: {e}")))
    }

    /// Reads `{prefix}.{base}.weight` (and `.bias` when `bias`).
    fn linear(&mut self, prefix: &str, base: &str, [out, inp]: [usize; 2], bias: bool) -> Result<Linear, LoadError> {
        let name = format!("{prefix}.{base}.weight");
        let weight = QMatMul::from_qtensor(self.quantized(&name, &[out, inp])?)
            .map_err(|e| LoadError::corrupt(self.path, format!("tensor `{name}`: {e}")))?;
        let bias = if bias { Some(self.dense(&format!("{prefix}.{base}.bias"), &[out])?) } else { None };
        Ok(Linear::new(weight, bias))
    }
}

/// Loads a Hugging Face folder: `config.json`, `tokenizer.json` and `*.safetensors`.
pub fn load_hf(dir: &Path, device: &Device) -> Result<Loaded, LoadError> {
    let _span = tracing::debug_span!("load_hf", path = %dir.display()).entered();
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(LoadError::NotAModel { path: dir.to_path_buf(), reason: "the folder has no config.json".into() });
    }
    let json = std::fs::read_to_string(&config_path).map_err(|e| LoadError::io(&config_path, e))?;
    let cfg = ModelConfig::from_hf_json(&json).map_err(|e| LoadError::config(&config_path, e))?;

    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| LoadError::Tokenizer {
        path: tokenizer_path.clone(),
        detail: format!("cannot read tokenizer.json ({e}); copy it from the model's repository"),
    })?;

    let files = safetensors_files(dir)?;
    let mut tensors = HashMap::new();
    for file in &files {
        let loaded = candle_core::safetensors::load(file, device).map_err(|e| LoadError::corrupt(file, e))?;
        tensors.extend(loaded);
    }
    let mut st = HfTensors { path: dir, tensors };
    let (h, kv, ffn, vocab) = (cfg.hidden_size, cfg.kv_dim(), cfg.intermediate_size, cfg.vocab_size);
    let embed = st.dense("model.embed_tokens.weight", &[vocab, h])?;
    let mut layers = Vec::with_capacity(cfg.num_layers);
    for i in 0..cfg.num_layers {
        let p = format!("model.layers.{i}");
        layers.push(LayerWeights {
            attn_norm: st.dense(&format!("{p}.input_layernorm.weight"), &[h])?,
            q: st.linear(&format!("{p}.self_attn.q_proj"), [h, h], true)?,
            k: st.linear(&format!("{p}.self_attn.k_proj"), [kv, h], true)?,
            v: st.linear(&format!("{p}.self_attn.v_proj"), [kv, h], true)?,
            o: st.linear(&format!("{p}.self_attn.o_proj"), [h, h], false)?,
            ffn_norm: st.dense(&format!("{p}.post_attention_layernorm.weight"), &[h])?,
            gate: st.linear(&format!("{p}.mlp.gate_proj"), [ffn, h], false)?,
            up: st.linear(&format!("{p}.mlp.up_proj"), [ffn, h], false)?,
            down: st.linear(&format!("{p}.mlp.down_proj"), [h, ffn], false)?,
        });
    }
    let final_norm = st.dense("model.norm.weight", &[h])?;
    let lm_head =
        if cfg.tie_word_embeddings { QMatMul::Tensor(embed.clone()) } else { QMatMul::Tensor(st.dense("lm_head.weight", &[vocab, h])?) };
    let lm_head = Linear::output_head(lm_head);
    let weights = Weights { embed: Embedding::Dense(embed), layers, final_norm, lm_head };
    Ok((cfg, weights, tokenizer))
}

/// The `*.safetensors` files of `dir`, sorted by name.
fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LoadError::io(dir, e))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| LoadError::io(dir, e))?.path();
        if path.extension().is_some_and(|ext| ext == "safetensors") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError::NotAModel { path: dir.to_path_buf(), reason: "the folder has no *.safetensors weights".into() });
    }
    Ok(files)
}

/// Named tensors from safetensors files, checked and converted to f32.
struct HfTensors<'a> {
    path: &'a Path,
    tensors: HashMap<String, Tensor>,
}

impl HfTensors<'_> {
    fn dense(&mut self, name: &str, dims: &[usize]) -> Result<Tensor, LoadError> {
        let t = self.tensors.remove(name).ok_or_else(|| LoadError::corrupt(self.path, format!("missing tensor `{name}`")))?;
        if t.dims() != dims {
            return Err(LoadError::corrupt(self.path, format!("tensor `{name}` has shape {:?}, expected {dims:?}", t.dims())));
        }
        t.to_dtype(DType::F32).map_err(|e| LoadError::corrupt(self.path, format!("tensor `{name}`: {e}")))
    }

    fn linear(&mut self, prefix: &str, [out, inp]: [usize; 2], bias: bool) -> Result<Linear, LoadError> {
        let weight = QMatMul::Tensor(self.dense(&format!("{prefix}.weight"), &[out, inp])?);
        let bias = if bias { Some(self.dense(&format!("{prefix}.bias"), &[out])?) } else { None };
        Ok(Linear::new(weight, bias))
    }
}
