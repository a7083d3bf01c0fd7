//! [`LoadError`]: everything that can go wrong while turning a path into a ready model, worded
//! for the person who configured that path.

use std::path::PathBuf;

/// Errors at the model-loading boundary. Every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Nothing exists at the configured path.
    #[error("model not found at {path}: download a Qwen2.5-Coder GGUF (e.g. qwen2.5-coder-1.5b-instruct-q4_k_m.gguf) or fix the configured model path")]
    NotFound { path: PathBuf },

    /// The path exists but could not be read (permissions, I/O error).
    #[error("cannot read {path}: {source}; check the file's permissions")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The path is neither a GGUF file nor a Hugging Face model folder.
    #[error("{path} is not a model: {reason}; point inkling at a .gguf file or at a Hugging Face folder holding config.json, tokenizer.json and *.safetensors")]
    NotAModel { path: PathBuf, reason: String },

    /// The file is a model format but its content is truncated or malformed.
    #[error("{path} is corrupt or incomplete ({detail}); the download may have been interrupted: delete it and download it again")]
    Corrupt { path: PathBuf, detail: String },

    /// A well-formed model of an architecture inkling cannot run.
    #[error("{path} is a `{found}` model, but inkling only runs Qwen2 models (Qwen2.5-Coder); use a Qwen2.5-Coder GGUF")]
    UnsupportedArchitecture { path: PathBuf, found: String },

    /// The tokenizer is missing, unreadable or lacks the fill-in-the-middle tokens.
    #[error("tokenizer problem with {path}: {detail}")]
    Tokenizer { path: PathBuf, detail: String },
}

impl LoadError {
    /// Builds [`LoadError::Corrupt`] from anything printable. Only the first line is kept:
    /// candle appends a backtrace to its errors when `RUST_BACKTRACE` is set, which is no use
    /// to the person reading the message.
    pub(crate) fn corrupt(path: &std::path::Path, detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        Self::Corrupt { path: path.to_path_buf(), detail: detail.lines().next().unwrap_or_default().to_string() }
    }

    /// Maps an I/O error on `path`, turning "not found" into [`LoadError::NotFound`].
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound { path: path.to_path_buf() }
        } else {
            Self::Io { path: path.to_path_buf(), source }
        }
    }

    /// Maps a configuration problem found in `path`.
    pub(crate) fn config(path: &std::path::Path, err: super::config::ConfigError) -> Self {
        match err {
            super::config::ConfigError::Architecture(found) => Self::UnsupportedArchitecture { path: path.to_path_buf(), found },
            super::config::ConfigError::Invalid(detail) => Self::corrupt(path, detail),
        }
    }
}
