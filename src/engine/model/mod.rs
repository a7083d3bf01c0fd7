//! The language model: a project-owned Qwen2 forward pass with an O(1)-truncatable KV cache.
//!
//! [`Qwen2::load`] reads a GGUF file or a Hugging Face folder and returns the model together
//! with its tokenizer; the engine thread then feeds tokens with [`Qwen2::forward_last`] /
//! [`Qwen2::forward_all`] / [`Qwen2::extend`], rewinds the cache with [`Qwen2::truncate`] to
//! reuse the prefix shared with the previous prompt, and moves cached runs to other positions
//! with [`Qwen2::span`] / [`Qwen2::append_span`].
//!
//! Files: [`config`] (hyper-parameters), [`weights`] (reading files), [`quant`] (Q5_0 → Q8_0),
//! [`kv_cache`], [`qwen2`] (the forward pass), [`attention`] (its per-block pieces), [`error`]
//! ([`LoadError`]).

pub mod attention;
pub mod config;
pub mod error;
pub mod kv_cache;
pub mod quant;
pub mod qwen2;
pub mod weights;

use std::io::Read;
use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

pub use config::ModelConfig;
pub use error::LoadError;
pub use kv_cache::{KvSnapshot, KvSpan};

/// Special tokens a fill-in-the-middle prompt needs; each must encode as one id.
pub const FIM_TOKENS: [&str; 4] = ["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endoftext|>"];

/// A loaded Qwen2 model and its KV cache.
#[derive(Debug)]
pub struct Qwen2 {
    model: qwen2::Model,
}

impl Qwen2 {
    /// Loads a GGUF file or a Hugging Face folder (decided by: is a directory → HF; else GGUF
    /// magic bytes) and allocates a KV cache of `max_ctx` positions (clamped to the model's
    /// trained context and to at least 1; see [`Qwen2::max_ctx`]).
    pub fn load(path: &Path, device: &Device, max_ctx: usize) -> Result<(Qwen2, Tokenizer), LoadError> {
        // candle may panic on malformed data it does not validate; a bad file must never take
        // the server down, so a panic during loading is reported as corruption.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load_unguarded(path, device, max_ctx))) {
            Ok(result) => result,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Err(LoadError::corrupt(path, format!("the loader panicked: {msg}")))
            }
        }
    }

    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// Capacity of the KV cache in positions.
    pub fn max_ctx(&self) -> usize {
        self.model.cache().max_ctx()
    }

    /// Number of positions currently in the KV cache.
    pub fn cached_len(&self) -> usize {
        self.model.cache().len()
    }

    /// Copies the KV cache out (to switch to another file and come back without recomputing).
    pub fn snapshot(&self) -> anyhow::Result<KvSnapshot> {
        Ok(self.model.cache().snapshot()?)
    }

    /// Puts a snapshot taken from this model back into the KV cache.
    pub fn restore(&mut self, snapshot: &KvSnapshot) -> anyhow::Result<()> {
        Ok(self.model.cache_mut().restore(snapshot)?)
    }

    /// O(1): forget every cached position at or after `len` (no-op if `len >= cached_len`).
    pub fn truncate(&mut self, len: usize) {
        self.model.cache_mut().truncate(len);
    }

    /// Copies the cached positions `start..start + len` out (see [`Qwen2::append_span`]).
    pub fn span(&self, start: usize, len: usize) -> anyhow::Result<KvSpan> {
        Ok(self.model.cache().span(start, len)?)
    }

    /// Appends a span copied by [`Qwen2::span`] at position `cached_len()`: its keys are turned
    /// by the distance moved, so the positions hold what a run of the same tokens there would
    /// hold had their earlier neighbours not changed.
    pub fn append_span(&mut self, span: &KvSpan) -> anyhow::Result<()> {
        Ok(self.model.append_span(span)?)
    }

    /// Runs `tokens` at positions `cached_len()..`, appending to the cache, without logits.
    pub fn extend(&mut self, tokens: &[u32]) -> anyhow::Result<()> {
        Ok(self.model.extend(tokens)?)
    }

    /// [`Qwen2::extend`] that a newer job can interrupt within one block: `stop` is asked before
    /// each; the pass it ends is dropped. Returns how many of `tokens` were committed (all, or
    /// none for a short input; see [`qwen2::Model::extend_unless`]).
    pub fn extend_unless(&mut self, tokens: &[u32], stop: &(dyn Fn() -> bool + Sync)) -> anyhow::Result<usize> {
        Ok(self.model.extend_unless(tokens, stop)?)
    }

    /// Turns the dense f32 prefill path for Q8_0 weights on (the default) or off
    /// (see [`weights::DENSE_PREFILL_MIN_ROWS`]).
    pub fn set_dense_prefill(&mut self, on: bool) {
        self.set_dense_min_rows(if on { weights::DENSE_PREFILL_MIN_ROWS } else { usize::MAX });
    }

    /// Sends inputs of at least `rows` rows to the dense f32 prefill path (to measure where it
    /// starts to pay; see [`weights::Weights::set_dense_min_rows`]).
    pub fn set_dense_min_rows(&mut self, rows: usize) {
        self.model.weights_mut().set_dense_min_rows(rows);
    }

    /// Turns the project's CPU kernels off or back on (see [`weights::Weights::set_own_kernels`]),
    /// the attention kernel of short steps with them.
    pub fn set_own_kernels(&mut self, on: bool) {
        self.model.weights_mut().set_own_kernels(on);
        self.model.set_own_attention(on);
    }

    /// Turns the attention kernel of short steps off or back on, alone (to measure and test it).
    pub fn set_own_attention(&mut self, on: bool) {
        self.model.set_own_attention(on);
    }

    /// Runs `tokens` at positions `cached_len()..cached_len()+tokens.len()`, appending to the
    /// cache. Returns f32 logits `[1, vocab]` for the last position only.
    pub fn forward_last(&mut self, tokens: &[u32]) -> anyhow::Result<Tensor> {
        Ok(self.model.forward(tokens, false)?)
    }

    /// The final hidden states (after the last norm) `[rows, hidden]` of the rows whose logits
    /// the last [`Qwen2::forward_last`] / [`Qwen2::forward_all`] returned; `None` before any.
    pub fn last_hidden(&self) -> Option<&Tensor> {
        self.model.last_hidden()
    }
    /// Same as [`Qwen2::forward_last`] but returns logits for every new position:
    /// `[tokens.len(), vocab]` (used to verify speculative drafts).
    pub fn forward_all(&mut self, tokens: &[u32]) -> anyhow::Result<Tensor> {
        Ok(self.model.forward(tokens, true)?)
    }
}

/// [`Qwen2::load`] without the panic guard.
fn load_unguarded(path: &Path, device: &Device, max_ctx: usize) -> Result<(Qwen2, Tokenizer), LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| LoadError::io(path, e))?;
    let (cfg, weights, tokenizer) = if meta.is_dir() {
        weights::load_hf(path, device)?
    } else {
        check_gguf_magic(path)?;
        weights::load_gguf(path, device)?
    };
    check_tokenizer(path, &tokenizer, &cfg)?;
    let max_ctx = max_ctx.clamp(1, cfg.max_position_embeddings);
    tracing::info!(
        path = %path.display(),
        layers = cfg.num_layers,
        hidden = cfg.hidden_size,
        max_ctx,
        "model loaded"
    );
    let model = qwen2::Model::new(cfg, weights, max_ctx, device)
        .map_err(|e| LoadError::corrupt(path, format!("cannot set up the model ({e}); try a smaller context")))?;
    Ok((Qwen2 { model }, tokenizer))
}

/// Fails with [`LoadError::NotAModel`] unless the file starts with `GGUF`.
fn check_gguf_magic(path: &Path) -> Result<(), LoadError> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| LoadError::io(path, e))?;
    let read = file.read(&mut magic).map_err(|e| LoadError::io(path, e))?;
    if read < 4 || &magic != b"GGUF" {
        return Err(LoadError::NotAModel { path: path.to_path_buf(), reason: "it does not start with the GGUF magic bytes".into() });
    }
    Ok(())
}

/// Checks that the tokenizer can drive FIM completion and fits the model's vocabulary.
fn check_tokenizer(path: &Path, tokenizer: &Tokenizer, cfg: &ModelConfig) -> Result<(), LoadError> {
    let error = |detail: String| LoadError::Tokenizer { path: path.to_path_buf(), detail };
    for token in FIM_TOKENS {
        let single = tokenizer.encode(token, false).ok().filter(|enc| enc.get_ids().len() == 1).map(|enc| enc.get_ids()[0]);
        if single.is_none() || single != tokenizer.token_to_id(token) {
            return Err(error(format!(
                "not a FIM-capable Qwen2.5-Coder tokenizer: `{token}` is not a single token; \
                 use a Qwen2.5-Coder model"
            )));
        }
    }
    let size = tokenizer.get_vocab_size(true);
    if size > cfg.vocab_size {
        return Err(error(format!(
            "the tokenizer has {size} tokens but the model only {}; tokenizer and weights come \
             from different models",
            cfg.vocab_size
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
