//! Indexing a workspace from disk: walking it with the `ignore` crate (`.gitignore`, `.ignore`
//! and hidden files respected, even outside a git repository; vendored and build folders
//! skipped), reading sources (binary, huge and minified files skipped), parsing each with a
//! time budget and swapping its definitions into the [`Index`]. Runs on the indexer thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ropey::Rope;

use super::defs::{self, Definition};
use super::index::{Index, Insert, Origin};
use super::similar::FileWindows;
use crate::syntax::{Language, Parser};

/// Folders never indexed: dependencies, build output, caches.
pub const SKIPPED_DIRS: &[&str] = &[
    "node_modules", "target", ".git", "vendor", "third_party", "dist", "build", "__pycache__",
    "venv", "bower_components",
];

/// How long one file's parse may take while indexing.
const INDEX_PARSE_BUDGET: Duration = Duration::from_millis(250);
/// Bytes sniffed for NUL when deciding a file is binary.
const SNIFF_BYTES: usize = 8 * 1024;
/// A file whose lines average more bytes than this is taken as minified or generated.
const MINIFIED_LINE_BYTES: usize = 300;

/// What one [`index_workspace`](super::CrossFile::index_workspace) run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Source files found (after ignore rules and the file cap).
    pub found: usize,
    /// Files whose definitions are now in the index.
    pub indexed: usize,
    /// Files skipped: binary, over the size limit, minified, unreadable, unparsable.
    pub skipped: usize,
    pub definitions: usize,
    /// More files existed than `max_index_files`, or the memory cap was hit.
    pub truncated: bool,
    /// The snippet-bytes cap was hit: later files were not indexed.
    pub memory_cap_hit: bool,
    /// Stopped early by [`IndexJob::cancel`](super::IndexJob::cancel) or a newer run.
    pub cancelled: bool,
    pub elapsed: Duration,
}

/// Why a file on disk is not indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    TooLarge,
    Binary,
    Minified,
    Unreadable,
}

/// Source files under `root` with a known language, in path order, at most `max_files`; and
/// whether there were more.
pub(crate) fn collect_files(root: &Path, max_files: usize, max_file_bytes: usize, cancel: &AtomicBool) -> (Vec<(PathBuf, Language)>, bool) {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .standard_filters(true)
        .hidden(true)
        .require_git(false)
        .follow_links(false)
        .max_filesize(Some(max_file_bytes as u64))
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && entry.depth() > 0 && entry.file_name().to_str().is_some_and(|n| SKIPPED_DIRS.contains(&n)))
        });
    let mut files = Vec::new();
    for entry in builder.build() {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.into_path();
        let Some(name) = path.to_str() else { continue };
        let language = Language::from_path(name);
        if language == Language::Other || name.contains(".min.") {
            continue;
        }
        if files.len() == max_files {
            return (files, true);
        }
        files.push((path, language));
    }
    (files, false)
}

/// The text of a source file, or why it is skipped.
pub(crate) fn read_source(path: &Path, max_bytes: usize) -> Result<String, Skip> {
    let bytes = std::fs::read(path).map_err(|_| Skip::Unreadable)?;
    if bytes.len() > max_bytes {
        return Err(Skip::TooLarge);
    }
    if bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) {
        return Err(Skip::Binary);
    }
    let text = String::from_utf8(bytes).map_err(|_| Skip::Binary)?;
    if looks_minified(&text) {
        return Err(Skip::Minified);
    }
    Ok(text)
}

/// Long files whose lines are very long on average (bundles, generated tables).
pub(crate) fn looks_minified(text: &str) -> bool {
    let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
    text.len() > 4 * 1024 && text.len() / lines > MINIFIED_LINE_BYTES
}

/// Parsers by language, reused across files on one thread.
#[derive(Default)]
pub(crate) struct Parsers {
    parsers: HashMap<Language, Parser>,
}

impl Parsers {
    /// The definitions in `text`; `None` when the language has no grammar or the parse failed.
    pub(crate) fn definitions(&mut self, language: Language, text: &str) -> Option<Vec<Definition>> {
        let parser = match self.parsers.entry(language) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Parser::new(language).ok()?.with_budget(INDEX_PARSE_BUDGET))
            }
        };
        let tree = parser.parse(&Rope::from_str(text), None)?;
        Some(defs::extract(language, text, &tree))
    }
}

/// Indexes the files under `root` into `index`, calling `progress(done, total)` now and then
/// (about every 1% and at the end). Stops when `cancel` is set.
pub(crate) fn index_files(
    index: &Index,
    root: &Path,
    max_files: usize,
    max_file_bytes: usize,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(usize, usize),
) -> IndexReport {
    let started = Instant::now();
    let (files, more) = collect_files(root, max_files, max_file_bytes, cancel);
    if more {
        index.set_truncated();
        tracing::info!(max_files, root = %root.display(), "workspace has more source files than maxIndexFiles; indexing the first ones");
    }
    let total = files.len();
    let mut report = IndexReport { found: total, truncated: more, ..IndexReport::default() };
    progress(0, total);
    let step = (total / 100).max(1);
    let mut parsers = Parsers::default();
    for (done, (path, language)) in files.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            break;
        }
        let Some(key) = path.to_str() else { continue };
        let parsed = read_source(path, max_file_bytes).ok().and_then(|text| Some((parsers.definitions(*language, &text)?, text)));
        match parsed {
            None => report.skipped += 1,
            Some((defs, text)) => {
                let count = defs.len();
                match index.insert(key, *language, defs, Some(FileWindows::build(&text)), Origin::Disk) {
                    Insert::Done => {
                        report.indexed += 1;
                        report.definitions += count;
                    }
                    Insert::KeptNewer => report.indexed += 1,
                    Insert::TooManyFiles => report.truncated = true,
                    Insert::OverMemory => {
                        report.truncated = true;
                        report.memory_cap_hit = true;
                        tracing::warn!(indexed = report.indexed, "the workspace index reached its memory cap; the remaining files are not indexed");
                        progress(total, total);
                        break;
                    }
                }
            }
        }
        if (done + 1) % step == 0 || done + 1 == total {
            progress(done + 1, total);
        }
    }
    report.elapsed = started.elapsed();
    report
}
