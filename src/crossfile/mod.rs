//! Cross-file context: code from *other* files that the model should see before the FIM prompt
//! (laid out by [`prompt`](crate::prompt) as comments at the top of the prefix, or in Qwen's repo-level format).
//!
//! A [`CrossFile`] handle (cheap to clone, `Send + Sync`) holds:
//!
//! * a **recent-chunks ring** ([`CrossFile::note_edit`], [`CrossFile::note_view`]): the ~40
//!   lines around recent edits and views, merged per file, oldest evicted;
//! * a **symbol index** of the workspace ([`CrossFile::index_workspace`] on a background std
//!   thread, [`CrossFile::update_file`] for one file): tree-sitter definitions with compact
//!   snippets, bounded in files and bytes, and each file's similar-code windows (`similar`);
//! * **retrieval** ([`CrossFile::retrieve`]): candidates scored by BM25 plus metadata, selected
//!   within a byte budget, laid out in a stable, KV-cache-friendly order (see `rank`);
//!   [`CrossFile::chunks_at`] builds the query from a completion's [`Cursor`] and pins the
//!   choice while the cursor stays on its line.
//!
//! Nothing here knows about LSP, and nothing blocks on indexing: lookups take a read lock held
//! only for a map lookup, and writers parse before they take the lock.

pub(crate) mod defs;
mod index;
mod lexical;
mod rank;
mod recent;
mod similar;
mod snippet;
mod walk;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_retrieve;

pub use defs::{DefKind, Definition};
pub use lexical::{identifiers_near, imports_of};
pub use rank::{chunk_cost, ChunkSource, ScoredChunk};
pub use recent::{RecentLimits, Text};
pub use walk::IndexReport;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use crate::config::Settings;
use crate::prompt::ContextChunk;
use crate::sync::{self, lock};
use crate::syntax::Language;
use index::{Index, Insert, Origin};
use rank::Layouts;
use recent::Ring;

/// Limits of a [`CrossFile`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrossFileLimits {
    /// Most files in the index (Settings `max_index_files`, default 20,000).
    pub max_index_files: usize,
    /// Most bytes of names and snippets in the index (default 64 MiB).
    pub max_index_bytes: usize,
    /// Most bytes of file text and similar-code windows (default 48 MiB); files past it are
    /// indexed with definitions only.
    pub max_window_bytes: usize,
    /// Larger files are not indexed (default 1 MiB).
    pub max_file_bytes: usize,
    pub recent: RecentLimits,
}

impl Default for CrossFileLimits {
    fn default() -> Self {
        CrossFileLimits {
            max_index_files: 20_000,
            max_index_bytes: 64 * 1024 * 1024,
            max_window_bytes: 48 * 1024 * 1024,
            max_file_bytes: crate::files::MAX_FILE_BYTES,
            recent: RecentLimits::default(),
        }
    }
}

impl CrossFileLimits {
    pub fn from_settings(settings: &Settings) -> CrossFileLimits {
        CrossFileLimits { max_index_files: settings.max_index_files, ..CrossFileLimits::default() }
    }
}

/// Size of the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub files: usize,
    pub definitions: usize,
    /// Bytes counted against `max_index_bytes`.
    pub bytes: usize,
    /// Bytes counted against `max_window_bytes`.
    pub window_bytes: usize,
    /// A file or memory limit was hit: some files are not indexed.
    pub truncated: bool,
}

/// What to retrieve context for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The current file (never returned), as given to `update_file`/the index.
    pub path: String,
    pub language: Language,
    /// The prefix window: text before the cursor (cursor line head included).
    pub text_before: String,
    /// The suffix window: text after the cursor.
    pub text_after: String,
    /// Identifiers near the cursor, most recent first ([`identifiers_near`]).
    pub identifiers: Vec<String>,
    /// Modules the current file imports ([`imports_of`]).
    pub imports: Vec<String>,
    /// Bytes of chunks to return at most (`prompt::typical_bytes` of the token budget), measured
    /// by [`chunk_cost`].
    pub budget_bytes: usize,
}

/// Where a completion is asked for, as [`CrossFile::chunks_at`] needs it.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    /// The current file (its chunks are never returned).
    pub path: &'a str,
    pub language: Language,
    /// The prefix window: whole lines above the cursor line.
    pub prefix: &'a str,
    /// The cursor line up to the cursor.
    pub line_head: &'a str,
    /// The suffix window: the rest of the cursor line and the lines below.
    pub suffix: &'a str,
    /// The whole file (its imports are read from the top).
    pub file: &'a ropey::Rope,
}

/// Lines at the top of a file searched for imports.
const IMPORT_LINES: usize = 200;

/// Whether every non-blank line of a chunk already appears in the current window: another
/// file's copy of what the model already sees adds nothing, and an unfinished copy invites the
/// model to leave this one unfinished too.
fn repeats_window(chunk: &str, window: &str) -> bool {
    let lines: Vec<&str> = chunk.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    !lines.is_empty() && lines.iter().all(|l| window.contains(l))
}

/// A key for the cursor line, for [`CrossFile::retrieve_on_line`]: the text above it and the
/// budget. Equal keys mean the cursor is still on the same line and nothing above it changed.
pub fn line_key(text_above: &str, budget_bytes: usize) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(text_above, &mut hasher);
    std::hash::Hash::hash(&budget_bytes, &mut hasher);
    std::hash::Hasher::finish(&hasher)
}

impl Query {
    /// A query from the windows around the cursor: identifiers from the end of `text_before`
    /// and the first line of `text_after`, imports from both windows (pass the whole file's
    /// [`imports_of`] in `imports` when the prefix window does not reach its top).
    pub fn new(path: &str, language: Language, text_before: &str, text_after: &str, budget_bytes: usize) -> Query {
        let line_tail = text_after.split('\n').next().unwrap_or("");
        let around = format!("{text_before}{line_tail}");
        let mut imports = imports_of(language, text_before);
        imports.extend(imports_of(language, text_after));
        Query {
            path: path.to_owned(),
            language,
            text_before: text_before.to_owned(),
            text_after: text_after.to_owned(),
            identifiers: identifiers_near(&around, text_before.len()),
            imports,
            budget_bytes,
        }
    }
}

/// A running [`CrossFile::index_workspace`].
#[derive(Debug)]
pub struct IndexJob {
    handle: JoinHandle<IndexReport>,
}

impl IndexJob {
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the indexer (blocking: never call this on the async runtime).
    pub fn join(self) -> IndexReport {
        self.handle.join().unwrap_or_else(|_| IndexReport { cancelled: true, ..IndexReport::default() })
    }
}

struct Inner {
    limits: CrossFileLimits,
    index: Index,
    recent: Mutex<Ring>,
    layouts: Mutex<Layouts>,
    root: RwLock<Option<String>>,
    running: Mutex<Option<Arc<AtomicBool>>>,
}

/// Cross-file context for one workspace; clone freely.
#[derive(Clone)]
pub struct CrossFile {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CrossFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossFile").field("limits", &self.inner.limits).field("stats", &self.stats()).finish()
    }
}

impl CrossFile {
    pub fn new(limits: CrossFileLimits) -> CrossFile {
        CrossFile {
            inner: Arc::new(Inner {
                limits,
                index: Index::new(limits.max_index_files, limits.max_index_bytes, limits.max_window_bytes),
                recent: Mutex::new(Ring::new(limits.recent)),
                layouts: Mutex::new(Layouts::default()),
                root: RwLock::new(None),
                running: Mutex::new(None),
            }),
        }
    }

    pub fn limits(&self) -> CrossFileLimits {
        self.inner.limits
    }

    /// Indexes the workspace under `root` on a new background thread, calling
    /// `progress(done, total)` from that thread about every 1% (for `$/progress`). A run
    /// already going is cancelled. Chunk paths are shown relative to `root` from now on.
    /// Fails only when the thread cannot be started.
    pub fn index_workspace(
        &self,
        root: impl Into<PathBuf>,
        mut progress: impl FnMut(usize, usize) + Send + 'static,
    ) -> std::io::Result<IndexJob> {
        let root: PathBuf = root.into();
        *sync::write(&self.inner.root) = Some(root.to_string_lossy().into_owned());
        let cancel = Arc::new(AtomicBool::new(false));
        if let Some(previous) = lock(&self.inner.running).replace(cancel.clone()) {
            previous.store(true, Ordering::Relaxed);
        }
        let inner = self.inner.clone();
        let flag = cancel.clone();
        let handle = std::thread::Builder::new().name("inkling-index".into()).spawn(move || {
            let limits = inner.limits;
            let report = walk::index_files(&inner.index, &root, limits.max_index_files, limits.max_file_bytes, &flag, &mut progress);
            tracing::info!(?report, "workspace indexed");
            report
        })?;
        Ok(IndexJob { handle })
    }

    /// Stops the running workspace indexer after its current file (the one way to stop it; a
    /// newer [`CrossFile::index_workspace`] run stops the older one the same way).
    pub fn stop_indexing(&self) {
        if let Some(running) = lock(&self.inner.running).take() {
            running.store(true, Ordering::Relaxed);
        }
    }

    /// Re-indexes one file from the editor's text (after a save, or debounced after changes).
    /// Parses on the calling thread (a few ms for ordinary files): call it off the async
    /// runtime (`spawn_blocking`). Files without a grammar or over the size limit are dropped
    /// from the index. The background indexer never overwrites what this put in.
    pub fn update_file<'a>(&self, path: &str, text: impl Into<Text<'a>>) {
        let language = Language::from_path(path);
        let text = text.into();
        let len = match text {
            Text::Rope(rope) => rope.len_bytes(),
            Text::Str(s) => s.len(),
        };
        if language == Language::Other || len > self.inner.limits.max_file_bytes {
            self.inner.index.remove(path);
            return;
        }
        let source = text.to_text();
        if crate::files::minified(&source) {
            self.inner.index.remove(path);
            return;
        }
        let Some(defs) = walk::Parsers::default().definitions(language, &source) else { return };
        let windows = Some(similar::FileWindows::build(&source));
        if self.inner.index.insert(path, language, defs, windows, Origin::Editor) == Insert::OverMemory {
            tracing::warn!(path, "the workspace index is at its memory cap; this file is not indexed");
        }
    }

    /// Forgets a deleted or renamed file: its definitions and its recent chunks.
    pub fn remove_file(&self, path: &str) {
        self.inner.index.remove(path);
        lock(&self.inner.recent).remove_file(path);
    }

    /// Records an edit at `line` (zero-based) of `path`, whose text is now `text`.
    pub fn note_edit<'a>(&self, path: &str, text: impl Into<Text<'a>>, line: usize) {
        lock(&self.inner.recent).note(path, text.into(), line, true);
    }

    /// Records that the user looked at `line` of `path` (opened it, moved the cursor there).
    pub fn note_view<'a>(&self, path: &str, text: impl Into<Text<'a>>, line: usize) {
        lock(&self.inner.recent).note(path, text.into(), line, false);
    }

    /// The chunks of other files to show for a completion at `cursor`, within `max_tokens`
    /// (estimated as [`crate::prompt::typical_bytes`]; the prompt trims exactly): the query is
    /// built from the text around the cursor and the file's imports only when the cursor
    /// reached a new line ([`CrossFile::retrieve_on_line`]), and chunks that only repeat what the
    /// windows already show are dropped.
    pub fn chunks_at(&self, cursor: &Cursor<'_>, max_tokens: usize) -> Vec<ContextChunk> {
        let before = format!("{}{}", cursor.prefix, cursor.line_head);
        let budget_bytes = crate::prompt::typical_bytes(max_tokens);
        let query = || {
            let mut query = Query::new(cursor.path, cursor.language, &before, cursor.suffix, budget_bytes);
            let top = cursor.file.len_lines().min(IMPORT_LINES);
            let head = cursor.file.line_to_byte(top);
            query.imports = imports_of(cursor.language, &cursor.file.byte_slice(..head).to_string());
            query
        };
        let chunks = self.retrieve_on_line(cursor.path, line_key(cursor.prefix, budget_bytes), query);
        let window = format!("{before}{}", cursor.suffix);
        chunks.into_iter().filter(|c| !repeats_window(&c.text, &window)).collect()
    }

    /// Chunks of other files for `query`, in stable layout order, within its budget.
    pub fn retrieve(&self, query: &Query) -> Vec<ContextChunk> {
        let shown = lock(&self.inner.layouts).shown(&query.path);
        let chosen = self.select(query, &shown);
        lock(&self.inner.layouts).arrange(&query.path, &chosen)
    }

    /// [`CrossFile::retrieve`] for a cursor in `path` on the line keyed `line` ([`line_key`]).
    /// While the previous retrieval for `path` was on the same line, its chunks come back
    /// unchanged and `query` is never built: typing on a line keeps the prompt's prefix (and the
    /// KV cache) and costs no retrieval. `query` must be for `path`.
    pub fn retrieve_on_line(&self, path: &str, line: u64, query: impl FnOnce() -> Query) -> Vec<ContextChunk> {
        if let Some(pinned) = lock(&self.inner.layouts).pinned(path, line) {
            return pinned;
        }
        let chunks = self.retrieve(&query());
        lock(&self.inner.layouts).pin(path, line, &chunks);
        chunks
    }

    /// The same selection as [`CrossFile::retrieve`], best first, with scores (for debugging
    /// and tests; it does not touch the remembered layout).
    pub fn retrieve_scored(&self, query: &Query) -> Vec<ScoredChunk> {
        let shown = lock(&self.inner.layouts).shown(&query.path);
        self.select(query, &shown)
    }

    fn select(&self, query: &Query, shown: &std::collections::HashSet<u64>) -> Vec<ScoredChunk> {
        let recent = lock(&self.inner.recent).chunks();
        let root = sync::read(&self.inner.root).clone();
        rank::select(&self.inner.index, &recent, query, root.as_deref(), shown)
    }

    /// `path` as chunk headers show it: relative to the workspace root when it lies inside.
    pub fn display_path(&self, path: &str) -> String {
        let root = sync::read(&self.inner.root).clone();
        rank::display_path(root.as_deref(), path)
    }

    /// The workspace folder's name, for the prompt's `<|repo_name|>` header (empty before
    /// [`CrossFile::index_workspace`]).
    pub fn repo_name(&self) -> String {
        let root = sync::read(&self.inner.root).clone();
        root.as_deref().map(Path::new).and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    /// The indexed definitions of `path`, in file order.
    pub fn definitions_of(&self, path: &str) -> Vec<Definition> {
        self.inner.index.definitions_of(path)
    }

    /// Every indexed path, sorted.
    pub fn indexed_files(&self) -> Vec<String> {
        self.inner.index.paths()
    }

    pub fn is_indexed(&self, path: &str) -> bool {
        self.inner.index.contains(path)
    }

    pub fn stats(&self) -> IndexStats {
        self.inner.index.stats()
    }
}
