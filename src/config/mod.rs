//! Settings: the raw options a client sends, validated once into [`Settings`].
//!
//! Clients send `initializationOptions` and `workspace/didChangeConfiguration` as JSON. That JSON
//! is deserialized into [`Options`] (every field optional, unknown fields rejected by `from_json`, ignored and named by `from_json_lenient`, which the server uses) and validated
//! into [`Settings`] (every field present and in range). The rest of the server only ever sees
//! `Settings`. [`OPTION_DOCS`] is the single source of truth the editor clients are checked
//! against.

mod options;

pub use options::{OptionDoc, Options, SettingsError, OPTION_DOCS};

use std::path::PathBuf;

/// When a completion may span several lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Multiline {
    /// Decided from the syntax around the cursor.
    Auto,
    /// Always stop at the end of the line.
    Never,
    /// Never stop at the end of the line (still stop at the end of the block).
    Always,
}

/// Validated settings. Build with [`Options::validate`] or [`Settings::default`].
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub enabled: bool,
    pub model_path: Option<PathBuf>,
    pub max_prefix_tokens: usize,
    pub max_suffix_tokens: usize,
    pub max_new_tokens: usize,
    pub time_budget_ms: u64,
    /// Prompts whose uncached part would take longer to read are scaled down (0: never).
    pub latency_target_ms: u64,
    pub multiline: Multiline,
    pub complete_in_comments: bool,
    pub threads: Option<usize>,
    pub max_document_bytes: usize,
    /// Show the model code from other files (open files, workspace definitions).
    pub cross_file_context: bool,
    /// Token budget for code from other files.
    pub max_context_tokens: usize,
    /// Most files the workspace index holds.
    pub max_index_files: usize,
    /// Memory for saved KV caches of other files (MiB).
    pub kv_cache_mb: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            model_path: None,
            max_prefix_tokens: 1024,
            max_suffix_tokens: 256,
            max_new_tokens: 96,
            time_budget_ms: 10_000,
            latency_target_ms: 1_000,
            multiline: Multiline::Auto,
            complete_in_comments: false,
            threads: None,
            max_document_bytes: 4 * 1024 * 1024,
            cross_file_context: true,
            max_context_tokens: 1024,
            max_index_files: 20_000,
            kv_cache_mb: 512,
        }
    }
}
