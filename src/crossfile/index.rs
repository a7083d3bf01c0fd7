//! The workspace symbol index: every indexed file's [`Definition`]s, looked up by exact name,
//! by name prefix, and by module name (file stem or folder).
//!
//! One `RwLock` guards it. Writers hold it only to swap a file's already-extracted definitions
//! in (parsing happens before, without the lock), so lookups never wait for a parse. Size is
//! bounded by file count and by the bytes of the kept snippets; an insert that would pass
//! either limit is refused and marks the index `truncated`.
//!
//! Files also keep their text and similar-code windows ([`FileWindows`]) while those fit a
//! separate byte cap; past it, files are indexed with definitions only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::defs::Definition;
use super::similar::{FileWindows, WindowsOfFile};
use super::IndexStats;
use crate::syntax::Language;

/// Bytes counted per definition on top of its name and snippet (the struct, map entries).
const DEF_OVERHEAD: usize = 64;

/// Where an entry came from. Text from the editor is newer than the disk, so the background
/// indexer never replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Disk,
    Editor,
}

/// What [`Index::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    Done,
    /// The file came from the disk, and the editor's newer text is already indexed.
    KeptNewer,
    TooManyFiles,
    OverMemory,
}

/// A definition found by a lookup, with its file.
#[derive(Clone, Debug)]
pub(crate) struct Hit {
    pub path: Arc<str>,
    pub language: Language,
    pub def: Definition,
}

struct FileEntry {
    language: Language,
    defs: Vec<Definition>,
    bytes: usize,
    windows: Option<Arc<FileWindows>>,
    origin: Origin,
}

#[derive(Default)]
struct Inner {
    files: HashMap<Arc<str>, FileEntry>,
    names: BTreeMap<String, Vec<Arc<str>>>,
    modules: HashMap<String, Vec<Arc<str>>>,
    bytes: usize,
    window_bytes: usize,
    definitions: usize,
    truncated: bool,
}

pub(crate) struct Index {
    inner: RwLock<Inner>,
    max_files: usize,
    max_bytes: usize,
    max_window_bytes: usize,
}

/// The lowercase names a file answers to as a module: its stem and its folder's name.
pub(crate) fn module_keys(path: &str) -> Vec<String> {
    let mut parts = path.rsplit(['/', '\\']);
    let file = parts.next().unwrap_or("");
    let stem = file.split('.').next().unwrap_or(file).to_lowercase();
    let folder = parts.next().map(str::to_lowercase);
    let mut keys = vec![stem];
    keys.extend(folder.filter(|f| !f.is_empty() && keys[0] != *f));
    keys.retain(|k| !k.is_empty());
    keys
}

impl Index {
    pub(crate) fn new(max_files: usize, max_bytes: usize, max_window_bytes: usize) -> Index {
        Index { inner: RwLock::new(Inner::default()), max_files, max_bytes, max_window_bytes }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        crate::sync::read(&self.inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        crate::sync::write(&self.inner)
    }

    /// Replaces `path`'s definitions (an empty list still records the file as indexed) and
    /// windows (dropped when they do not fit their cap).
    pub(crate) fn insert(
        &self,
        path: &str,
        language: Language,
        defs: Vec<Definition>,
        windows: Option<FileWindows>,
        origin: Origin,
    ) -> Insert {
        let bytes = path.len() + defs.iter().map(|d| d.name.len() + d.snippet.len() + DEF_OVERHEAD).sum::<usize>();
        let mut inner = self.write();
        let old = inner.files.get(path).map(|e| (e.origin, e.bytes));
        if origin == Origin::Disk && matches!(old, Some((Origin::Editor, _))) {
            return Insert::KeptNewer;
        }
        if old.is_none() && inner.files.len() >= self.max_files {
            inner.truncated = true;
            return Insert::TooManyFiles;
        }
        let old_bytes = old.map_or(0, |(_, b)| b);
        if inner.bytes - old_bytes + bytes > self.max_bytes {
            inner.truncated = true;
            return Insert::OverMemory;
        }
        let key: Arc<str> = match inner.files.get_key_value(path) {
            Some((key, _)) => key.clone(),
            None => Arc::from(path),
        };
        inner.remove_entry(&key);
        let windows = windows.filter(|w| inner.window_bytes + w.bytes() <= self.max_window_bytes).map(Arc::new);
        inner.window_bytes += windows.as_ref().map_or(0, |w| w.bytes());
        for def in &defs {
            let paths = inner.names.entry(def.name.clone()).or_default();
            if paths.last() != Some(&key) {
                paths.push(key.clone());
            }
        }
        for module in module_keys(path) {
            inner.modules.entry(module).or_default().push(key.clone());
        }
        inner.bytes += bytes;
        inner.definitions += defs.len();
        inner.files.insert(key, FileEntry { language, defs, bytes, windows, origin });
        Insert::Done
    }

    /// Forgets `path`; whether it was indexed.
    pub(crate) fn remove(&self, path: &str) -> bool {
        self.write().remove_entry(path)
    }

    pub(crate) fn set_truncated(&self) {
        self.write().truncated = true;
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.read().files.contains_key(path)
    }

    /// Definitions named exactly `name`, at most `limit`.
    pub(crate) fn lookup(&self, name: &str, limit: usize) -> Vec<Hit> {
        let inner = self.read();
        let Some(paths) = inner.names.get(name) else { return Vec::new() };
        inner.hits(paths, |d| d.name == name, limit)
    }

    /// Definitions whose name starts with `prefix` (and is longer), at most `limit`.
    pub(crate) fn lookup_prefix(&self, prefix: &str, limit: usize) -> Vec<Hit> {
        let inner = self.read();
        let mut out = Vec::new();
        let names = inner.names.range::<str, _>((std::ops::Bound::Excluded(prefix), std::ops::Bound::Unbounded));
        for (name, paths) in names.take_while(|(n, _)| n.starts_with(prefix)) {
            out.extend(inner.hits(paths, |d| d.name == *name, limit - out.len()));
            if out.len() >= limit {
                break;
            }
        }
        out
    }

    /// Definitions of the files that answer to module name `key`, at most `limit`.
    pub(crate) fn module_definitions(&self, key: &str, limit: usize) -> Vec<Hit> {
        let inner = self.read();
        let Some(paths) = inner.modules.get(key) else { return Vec::new() };
        inner.hits(paths, |_| true, limit)
    }

    /// The definitions of `path`, in file order.
    pub(crate) fn definitions_of(&self, path: &str) -> Vec<Definition> {
        self.read().files.get(path).map(|e| e.defs.clone()).unwrap_or_default()
    }

    /// The windows of `paths` (those that have them), in that order, then of the other files
    /// in `folder`, in path order; at most `limit` files.
    pub(crate) fn windows(&self, paths: &[Arc<str>], folder: &str, limit: usize) -> Vec<WindowsOfFile> {
        let inner = self.read();
        let mut out: Vec<WindowsOfFile> = Vec::new();
        let push = |path: &Arc<str>, out: &mut Vec<WindowsOfFile>| {
            if out.len() < limit && !out.iter().any(|w| w.path == *path) {
                if let Some(e) = inner.files.get(path) {
                    if let Some(windows) = &e.windows {
                        out.push(WindowsOfFile { path: path.clone(), language: e.language, windows: windows.clone() });
                    }
                }
            }
        };
        for path in paths {
            push(path, &mut out);
        }
        if out.len() < limit {
            let mut near: Vec<&Arc<str>> = inner.files.keys().filter(|p| super::rank::folder(p) == folder).collect();
            near.sort();
            for path in near {
                push(path, &mut out);
            }
        }
        out
    }

    /// Every indexed path, sorted.
    pub(crate) fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.read().files.keys().map(|k| k.to_string()).collect();
        paths.sort();
        paths
    }

    pub(crate) fn stats(&self) -> IndexStats {
        let inner = self.read();
        IndexStats {
            files: inner.files.len(),
            definitions: inner.definitions,
            bytes: inner.bytes,
            window_bytes: inner.window_bytes,
            truncated: inner.truncated,
        }
    }
}

impl Inner {
    fn remove_entry(&mut self, path: &str) -> bool {
        let Some((key, entry)) = self.files.remove_entry(path) else { return false };
        for def in &entry.defs {
            if let Some(paths) = self.names.get_mut(&def.name) {
                paths.retain(|p| *p != key);
                if paths.is_empty() {
                    self.names.remove(&def.name);
                }
            }
        }
        for module in module_keys(path) {
            if let Some(paths) = self.modules.get_mut(&module) {
                paths.retain(|p| *p != key);
                if paths.is_empty() {
                    self.modules.remove(&module);
                }
            }
        }
        self.bytes -= entry.bytes;
        self.window_bytes -= entry.windows.as_ref().map_or(0, |w| w.bytes());
        self.definitions -= entry.defs.len();
        true
    }

    fn hits(&self, paths: &[Arc<str>], keep: impl Fn(&Definition) -> bool, limit: usize) -> Vec<Hit> {
        let mut out = Vec::new();
        for path in paths {
            let Some(entry) = self.files.get(path) else { continue };
            for def in entry.defs.iter().filter(|d| keep(d)) {
                if out.len() >= limit {
                    return out;
                }
                out.push(Hit { path: path.clone(), language: entry.language, def: def.clone() });
            }
        }
        out
    }
}
