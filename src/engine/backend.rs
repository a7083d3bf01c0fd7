//! What the engine thread drives: the [`Backend`] trait, and the loader for the real model.

use std::path::Path;

use anyhow::Result;
use candle_core::Device;

use super::job::{CancelToken, GenerateRequest, Generated};
use super::qwen2_backend::Qwen2Backend;

/// How the real backend works; switches exist to measure what each technique brings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Reuse the KV cache across requests (longest common token prefix, per-file snapshots).
    pub reuse: bool,
    /// Prompt-lookup speculative decoding (same output as plain greedy decoding).
    pub speculate: bool,
    /// Most draft tokens verified per step.
    pub max_draft: usize,
    /// Shortest run of cached tokens moved to a new position instead of being run again when a
    /// prompt holds it elsewhere (see `engine::reuse`); 0 moves nothing. Needs `reuse`.
    pub min_moved_run: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { reuse: true, speculate: true, max_draft: 6, min_moved_run: 32 }
    }
}

/// A model the engine thread can run.
pub trait Backend: Send {
    /// A short human description ("model.gguf (Qwen2, 24 layers, ...)").
    fn describe(&self) -> String;
    /// Generates one completion; checks `cancel` between tokens.
    fn generate(&mut self, request: &GenerateRequest, cancel: &CancelToken) -> Result<Generated>;
    /// Forgets all cached state (after an error mid-job).
    fn reset(&mut self);
}

/// Turns a model path into a backend.
pub type Loader = Box<dyn Fn(&Path) -> Result<Box<dyn Backend>> + Send>;

/// The real loader with default options.
pub fn load_backend(path: &Path) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Qwen2Backend::load(path, &default_device(), EngineOptions::default())?))
}

/// The real loader with the given options.
pub fn loader_with(options: EngineOptions) -> Loader {
    Box::new(move |path: &Path| Ok(Box::new(Qwen2Backend::load(path, &default_device(), options)?) as Box<dyn Backend>))
}

/// The device models run on: CUDA when built with it and a GPU answers, else the CPU.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    {
        match std::panic::catch_unwind(|| Device::new_cuda(0)) {
            Ok(Ok(d)) => return d,
            Ok(Err(e)) => tracing::warn!("no CUDA device ({e}); using the CPU"),
            Err(_) => tracing::warn!("the CUDA driver could not be loaded; using the CPU"),
        }
    }
    Device::Cpu
}
