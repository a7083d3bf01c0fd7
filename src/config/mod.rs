//! Settings: the raw options a client sends, validated once into [`Settings`].
//!
//! Clients send `initializationOptions` and `workspace/didChangeConfiguration` as JSON. That JSON
//! is deserialized into [`Options`] (every field optional; unknown fields rejected by
//! `from_json`, ignored and named by `from_json_lenient`, which the server uses) and validated
//! into [`Settings`] (every field present and in range). The rest of the server only ever sees
//! `Settings`. Each setting is declared once, in `options.rs`; [`OPTION_DOCS`] is derived from
//! that declaration and is what the editor clients and the README are checked against.

mod options;

pub use options::{OptionDoc, Options, Settings, SettingsError, MAX_PROMPT_AND_ANSWER_TOKENS, OPTION_DOCS};

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
