//! Indexing a workspace from disk: walking it and reading its sources by the rules of
//! [`crate::files`], parsing each with a time budget and swapping its definitions into the
//! [`Index`]. Runs on the indexer thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ropey::Rope;

use super::defs::{self, Definition};
use super::index::{Index, Insert, Origin};
use super::similar::FileWindows;
use crate::files;
use crate::syntax::{Language, Parser};

/// How long one file's parse may take while indexing.
const INDEX_PARSE_BUDGET: Duration = Duration::from_millis(250);
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
    /// Stopped early by [`CrossFile::stop_indexing`](super::CrossFile::stop_indexing) or a newer run.
    pub cancelled: bool,
    pub elapsed: Duration,
}

/// Source files under `root` with a known language, in path order, at most `max_files`; and
/// whether there were more.
pub(crate) fn collect_files(root: &Path, max_files: usize, max_file_bytes: usize, cancel: &AtomicBool) -> (Vec<(PathBuf, Language)>, bool) {
    let mut files = Vec::new();
    for path in files::walk(root, max_file_bytes, true) {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let Ok(path) = path else { continue };
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
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Parser::new(language).ok()?.with_budget(INDEX_PARSE_BUDGET)),
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
        let parsed = files::read_source(path, max_file_bytes).ok().and_then(|text| Some((parsers.definitions(*language, &text)?, text)));
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
                        tracing::warn!(
                            indexed = report.indexed,
                            "the workspace index reached its memory cap; the remaining files are not indexed"
                        );
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
