//! Backends the engine thread can drive: the real Qwen2 model, or a fake one in tests.
//!
//! [`Qwen2Backend`] keeps the token sequence whose keys and values sit in the model's KV cache.
//! A new job computes the longest common token prefix with it, truncates the cache there (O(1))
//! and prefills only the rest, then decodes greedily.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, Result};
use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use super::job::{CancelToken, GenerateRequest, Generated, StopReason};
use super::model::Qwen2;
use super::vocab::TokenBytes;
use crate::prompt::{self, SpecialTokens};

/// Tokens of KV cache allocated per model (prompt + generated).
pub const DEFAULT_MAX_CONTEXT: usize = 4096;

/// A model the engine thread can run.
pub trait Backend: Send {
    /// A short human description ("Qwen2.5-Coder 24 layers from file.gguf").
    fn describe(&self) -> String;
    /// Generates one completion; checks `cancel` between tokens.
    fn generate(&mut self, request: &GenerateRequest, cancel: &CancelToken) -> Result<Generated>;
    /// Forgets all cached state (after an error mid-job).
    fn reset(&mut self);
}

/// Turns a model path into a backend.
pub type Loader = Box<dyn Fn(&Path) -> Result<Box<dyn Backend>> + Send>;

/// The real loader: a GGUF file or a Hugging Face folder on the CPU (or CUDA when built with it).
pub fn load_backend(path: &Path) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Qwen2Backend::load(path, &default_device())?))
}

fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    Device::Cpu
}

pub struct Qwen2Backend {
    model: Qwen2,
    tokenizer: Tokenizer,
    special: SpecialTokens,
    /// Exactly the tokens whose keys/values are in the model's cache.
    cached: Vec<u32>,
    token_bytes: TokenBytes,
    description: String,
}

impl Qwen2Backend {
    pub fn load(path: &Path, device: &Device) -> Result<Qwen2Backend> {
        let (model, tokenizer) = Qwen2::load(path, device, DEFAULT_MAX_CONTEXT)?;
        let special = SpecialTokens::from_tokenizer(&tokenizer)?;
        let cfg = model.config();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let description = format!(
            "{name} (Qwen2, {} layers, hidden {}, {:?})",
            cfg.num_layers, cfg.hidden_size, device.location()
        );
        let token_bytes = TokenBytes::from_tokenizer(&tokenizer);
        Ok(Qwen2Backend { model, tokenizer, special, cached: Vec::new(), token_bytes, description })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn argmax(logits: &Tensor) -> Result<u32> {
        Ok(logits.flatten_all()?.argmax(0)?.to_scalar::<u32>()?)
    }

    /// The most likely token that spells (part of) the `pending` healing bytes.
    fn healing_argmax(&self, logits: &Tensor, pending: &[u8]) -> Result<u32> {
        let scores = logits.flatten_all()?.to_vec1::<f32>()?;
        let best = (0..scores.len() as u32)
            .filter(|&id| self.token_bytes.fits(id, pending))
            .max_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
        match best {
            Some(id) => Ok(id),
            None => Self::argmax(logits),
        }
    }
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Backend for Qwen2Backend {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn reset(&mut self) {
        self.model.truncate(0);
        self.cached.clear();
    }

    fn generate(&mut self, request: &GenerateRequest, cancel: &CancelToken) -> Result<Generated> {
        let _span = tracing::debug_span!("generate").entered();
        let started = Instant::now();
        let prompt = prompt::build(&self.tokenizer, &self.special, &request.text, request.budget)?;
        let tokens = &prompt.tokens;
        if tokens.len() + 1 > self.model.max_ctx() {
            anyhow::bail!(
                "the prompt has {} tokens but the model's cache holds {}: lower maxPrefixTokens/maxSuffixTokens",
                tokens.len(),
                self.model.max_ctx()
            );
        }
        // Reuse the cached prefix; always run at least the last prompt token to get its logits.
        let reused = common_prefix(&self.cached, tokens).min(tokens.len() - 1);
        self.model.truncate(reused);
        self.cached.truncate(reused);
        let mut logits = self.model.forward_last(&tokens[reused..]).context("prefill")?;
        self.cached.extend_from_slice(&tokens[reused..]);
        let prefill_ms = started.elapsed().as_secs_f64() * 1e3;

        let decode_started = Instant::now();
        let mut generated: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut pending_heal: Vec<u8> = prompt.heal.as_bytes().to_vec();
        let stop = loop {
            let next = if pending_heal.is_empty() {
                Self::argmax(&logits)?
            } else {
                self.healing_argmax(&logits, &pending_heal)?
            };
            if self.special.is_stop(next) {
                break StopReason::EndOfText;
            }
            if !pending_heal.is_empty() {
                let spelled = self.token_bytes.get(next).map_or(pending_heal.len(), <[u8]>::len);
                pending_heal.drain(..spelled.min(pending_heal.len()));
            }
            generated.push(next);
            let decoded = self.tokenizer.decode(&generated, false).map_err(anyhow::Error::msg)?;
            // The healed text was already on the line: only what follows it is new.
            text = match decoded.strip_prefix(prompt.heal.as_str()) {
                Some(rest) => rest.to_string(),
                None => String::new(),
            };
            if request.single_line && text.contains('\n') {
                break StopReason::EndOfLine;
            }
            if request.stop_when.as_ref().is_some_and(|f| f(&text)) {
                break StopReason::EndOfBlock;
            }
            if generated.len() >= request.max_new_tokens {
                break StopReason::MaxTokens;
            }
            if Instant::now() >= request.deadline {
                break StopReason::TimeBudget;
            }
            if self.cached.len() + 1 >= self.model.max_ctx() {
                break StopReason::ContextFull;
            }
            if cancel.is_cancelled() {
                break StopReason::TimeBudget; // the worker turns this into Cancelled
            }
            logits = self.model.forward_last(&[next]).context("decode")?;
            self.cached.push(next);
        };
        Ok(Generated {
            text,
            stop,
            prompt_tokens: tokens.len(),
            reused_tokens: reused,
            new_tokens: generated.len(),
            prefill_ms,
            decode_ms: decode_started.elapsed().as_secs_f64() * 1e3,
        })
    }
}
