//! Where models live on disk: the cache folder and the default model's file name.
//!
//! `finetune/fetch_model.py` writes models here (it is the only code that downloads); the server
//! only reads. Keep the two in step: cache root `$INKLING_CACHE_DIR`, else `$XDG_CACHE_HOME/inkling`,
//! else `~/.cache/inkling`; models in `<root>/models/<name>.gguf`.

use std::path::PathBuf;

/// The default model: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m";
/// The small model: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M.
pub const SMALL_MODEL: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m";

/// The cache root.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("INKLING_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("inkling"));
    }
    std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".cache").join("inkling"))
}

/// The cached file for a model name.
pub fn cached_model(name: &str) -> Option<PathBuf> {
    cache_dir().map(|d| d.join("models").join(format!("{name}.gguf")))
}

/// The model to use when none is configured: the default if fetched, else the small one if
/// fetched, else the default's path (so the error names the file to fetch).
pub fn default_model() -> Option<PathBuf> {
    let default = cached_model(DEFAULT_MODEL)?;
    if default.exists() {
        return Some(default);
    }
    match cached_model(SMALL_MODEL) {
        Some(small) if small.exists() => Some(small),
        _ => Some(default),
    }
}

/// How to get the default model, for error messages.
pub const FETCH_HINT: &str = "run `python3 finetune/fetch_model.py` (or `--small`) to fetch a model, or set `modelPath`";
