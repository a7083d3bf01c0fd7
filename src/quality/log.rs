//! The local suggestion log (`logSuggestions`, off by default): one JSON object per line for each
//! suggestion shown, accepted, dismissed or filtered, with its features, so that a filter can
//! later be fitted on what this user kept. It is written to
//! `$INKLING_STATE_DIR/suggestions.jsonl` (else `$XDG_STATE_HOME/inkling/…`, else
//! `~/.local/state/inkling/…`), never read by the server and never sent anywhere; deleting it is
//! always safe.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::Features;

/// The log's file name inside the state folder.
pub const FILE_NAME: &str = "suggestions.jsonl";

/// Where the log goes when nothing else is said.
pub fn default_path() -> Option<PathBuf> {
    let dir = if let Some(dir) = std::env::var_os("INKLING_STATE_DIR").filter(|d| !d.is_empty()) {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        PathBuf::from(dir).join("inkling")
    } else {
        PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?).join(".local/state/inkling")
    };
    Some(dir.join(FILE_NAME))
}

/// What happened to a suggestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Shown to the user.
    Shown,
    /// The editor reported that the user accepted it.
    Accepted,
    /// Another suggestion took its place before it was accepted.
    Dismissed,
    /// The model wrote it, the filter scored it under the threshold: not shown.
    Filtered,
}

/// One line of the log.
#[derive(Clone, Debug, Serialize)]
pub struct Entry<'a> {
    pub event: Event,
    /// The suggestion's number within this server's run (the same for all its events).
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u128,
    pub path: &'a str,
    /// 0-based cursor line.
    pub line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// Written by the router model.
    pub routed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<&'a Features>,
}

impl Entry<'_> {
    pub fn now_ms() -> u128 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
    }
}

/// Appends entries to the log file (created with its folder on first use).
#[derive(Debug)]
pub struct SuggestionLog {
    path: PathBuf,
    lock: Mutex<()>,
}

impl SuggestionLog {
    pub fn new(path: PathBuf) -> SuggestionLog {
        SuggestionLog { path, lock: Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as one line.
    pub fn write(&self, entry: &Entry<'_>) -> std::io::Result<()> {
        let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        let _guard = crate::sync::lock(&self.lock);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        writeln!(file, "{line}")
    }
}
