//! The Qwen2 hyper-parameters ([`ModelConfig`]) and how to read them from the two supported
//! sources: GGUF metadata (`qwen2.*` keys) and a Hugging Face `config.json`.
//!
//! Both readers validate the numbers they return (non-zero sizes, heads that divide the hidden
//! size, an even head dimension for RoPE) so that the forward pass can rely on them and a bad
//! file is reported at load time instead of failing on the first completion.

use candle_core::quantized::gguf_file;
use serde::Deserialize;

/// Architecture name this module implements, as written in `general.architecture` (GGUF) and
/// `model_type` (Hugging Face).
pub const ARCHITECTURE: &str = "qwen2";

/// Shape and numeric constants of a Qwen2 model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Number of rows of the token embedding table (and of the logits).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_layers: usize,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (grouped-query attention: `num_heads % num_kv_heads == 0`).
    pub num_kv_heads: usize,
    /// Width of one attention head.
    pub head_dim: usize,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f64,
    /// Context length the model was trained for.
    pub max_position_embeddings: usize,
    /// Whether the output projection reuses the token embedding table.
    pub tie_word_embeddings: bool,
}

impl ModelConfig {
    /// Reads the configuration from GGUF metadata.
    ///
    /// Errors are plain strings; the loader wraps them in a [`super::LoadError`] that names the
    /// file. `vocab_size` comes from the `tokenizer.ggml.tokens` array when present (GGUF has no
    /// dedicated key); the loader cross-checks it against the embedding table.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, ConfigError> {
        let md = &content.metadata;
        let arch = md.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_else(|| "<missing>".to_string());
        if arch != ARCHITECTURE {
            return Err(ConfigError::Architecture(arch));
        }
        let uint = |key: &str| -> Result<usize, ConfigError> {
            md.get(key)
                .ok_or_else(|| ConfigError::Invalid(format!("missing GGUF metadata key `{key}`")))
                .and_then(|v| gguf_uint(v).ok_or_else(|| ConfigError::Invalid(format!("GGUF key `{key}` is not an integer: {v:?}"))))
        };
        let float = |key: &str, default: f64| -> Result<f64, ConfigError> {
            match md.get(key) {
                None => Ok(default),
                Some(v) => gguf_float(v).ok_or_else(|| ConfigError::Invalid(format!("GGUF key `{key}` is not a number: {v:?}"))),
            }
        };
        let hidden_size = uint("qwen2.embedding_length")?;
        let num_heads = uint("qwen2.attention.head_count")?;
        let head_dim = match md.get("qwen2.attention.key_length") {
            Some(v) => {
                gguf_uint(v).ok_or_else(|| ConfigError::Invalid("GGUF key `qwen2.attention.key_length` is not an integer".into()))?
            }
            None => hidden_size / num_heads.max(1),
        };
        let vocab_size = match md.get("tokenizer.ggml.tokens") {
            Some(gguf_file::Value::Array(tokens)) => tokens.len(),
            _ => 0, // filled in from the embedding table by the loader
        };
        let cfg = Self {
            vocab_size,
            hidden_size,
            intermediate_size: uint("qwen2.feed_forward_length")?,
            num_layers: uint("qwen2.block_count")?,
            num_heads,
            num_kv_heads: uint("qwen2.attention.head_count_kv")?,
            head_dim,
            rope_theta: float("qwen2.rope.freq_base", 1_000_000.0)?,
            rms_norm_eps: float("qwen2.attention.layer_norm_rms_epsilon", 1e-6)?,
            max_position_embeddings: uint("qwen2.context_length")?,
            // GGUF decides this by the presence of `output.weight`; the loader overrides it.
            tie_word_embeddings: false,
        };
        Ok(cfg)
    }

    /// Parses a Hugging Face `config.json`.
    pub fn from_hf_json(json: &str) -> Result<Self, ConfigError> {
        let raw: HfConfig =
            serde_json::from_str(json).map_err(|e| ConfigError::Invalid(format!("config.json is not a Qwen2 config: {e}")))?;
        let arch = raw.model_type.clone().unwrap_or_else(|| "<missing>".to_string());
        if arch != ARCHITECTURE {
            return Err(ConfigError::Architecture(arch));
        }
        let head_dim = raw.head_dim.unwrap_or(raw.hidden_size / raw.num_attention_heads.max(1));
        let cfg = Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads: raw.num_key_value_heads.unwrap_or(raw.num_attention_heads),
            head_dim,
            rope_theta: raw.rope_theta.unwrap_or(10_000.0),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            max_position_embeddings: raw.max_position_embeddings,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Invalid(msg));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return bad(format!("{name} is 0"));
            }
        }
        if self.num_heads * self.head_dim != self.hidden_size {
            return bad(format!("num_heads ({}) * head_dim ({}) != hidden_size ({})", self.num_heads, self.head_dim, self.hidden_size));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!("num_heads ({}) is not a multiple of num_kv_heads ({})", self.num_heads, self.num_kv_heads));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim ({}) must be even for RoPE", self.head_dim));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!("rope_theta ({}) must be positive", self.rope_theta));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return bad(format!("rms_norm_eps ({}) is invalid", self.rms_norm_eps));
        }
        Ok(())
    }

    /// Width of the key/value projections: `num_kv_heads * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }
}

/// Why a configuration could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// The file describes another architecture (the string is what it says it is).
    Architecture(String),
    /// A key is missing or a value is out of range.
    Invalid(String),
}

/// The subset of a Hugging Face Qwen2 `config.json` that inkling uses.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rms_norm_eps: Option<f64>,
    max_position_embeddings: usize,
    tie_word_embeddings: Option<bool>,
}

/// Reads any non-negative integer GGUF value.
fn gguf_uint(v: &gguf_file::Value) -> Option<usize> {
    use gguf_file::Value as V;
    let n: i128 = match v {
        V::U8(x) => (*x).into(),
        V::I8(x) => (*x).into(),
        V::U16(x) => (*x).into(),
        V::I16(x) => (*x).into(),
        V::U32(x) => (*x).into(),
        V::I32(x) => (*x).into(),
        V::U64(x) => (*x).into(),
        V::I64(x) => (*x).into(),
        _ => return None,
    };
    usize::try_from(n).ok()
}

/// Reads any numeric GGUF value as `f64`.
fn gguf_float(v: &gguf_file::Value) -> Option<f64> {
    use gguf_file::Value as V;
    match v {
        V::F32(x) => Some((*x).into()),
        V::F64(x) => Some(*x),
        other => gguf_uint(other).map(|n| n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN25_CODER_05B: &str = r#"{
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
        "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
        "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
        "tie_word_embeddings": true, "torch_dtype": "bfloat16"
    }"#;

    #[test]
    fn parses_hf_config() {
        let cfg = ModelConfig::from_hf_json(QWEN25_CODER_05B).unwrap();
        assert_eq!(cfg.head_dim, 64);
        assert_eq!(cfg.kv_dim(), 128);
        assert!(cfg.tie_word_embeddings);
        assert_eq!(cfg.rope_theta, 1e6);
    }

    #[test]
    fn rejects_other_architectures() {
        let json = QWEN25_CODER_05B.replace("\"qwen2\"", "\"llama\"");
        assert_eq!(ModelConfig::from_hf_json(&json), Err(ConfigError::Architecture("llama".into())));
    }

    #[test]
    fn rejects_inconsistent_heads() {
        let json = QWEN25_CODER_05B.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
        assert!(matches!(ModelConfig::from_hf_json(&json), Err(ConfigError::Invalid(_))));
    }
}
