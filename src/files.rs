//! Which files of a repository or workspace inkling reads, one rule for everyone who walks one
//! (the workspace indexer in `crossfile/`, `inkling eval` and `inkling dataset` in `corpus/`):
//! one list of folders that hold someone else's code or build output, one walker (`.gitignore`
//! and `.ignore` respected even outside a git repository, hidden files and symlinks skipped),
//! and one rule for reading a source file (size cap, binary, minified).

use std::path::Path;

/// Folders never read: dependencies, vendored code, build output, caches, virtual environments.
pub const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "__pycache__",
    "bower_components",
    "build",
    "dist",
    "node_modules",
    "target",
    "third-party",
    "third_party",
    "vendor",
    "venv",
    ".venv",
];
/// Larger files are data, not code.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Bytes sniffed for NUL when deciding a file is binary.
const SNIFF_BYTES: usize = 8 * 1024;
/// Minified: the average line is longer than this…
const MINIFIED_AVG_LINE: usize = 200;
/// …or one line is longer than this.
const MINIFIED_MAX_LINE: usize = 1000;

/// Whether a folder name is one of [`SKIPPED_DIRS`].
pub fn skipped_dir(name: &str) -> bool {
    SKIPPED_DIRS.contains(&name)
}

/// Whether a relative path (`/`-separated) lies inside a skipped folder.
pub fn in_skipped_dir(path: &str) -> bool {
    path.split('/').rev().skip(1).any(skipped_dir)
}

/// The files under `root`, in path order: ignore files respected (also outside git), hidden
/// files, symlinks and files over `max_file_bytes` left out; skipped folders too when `prune`
/// (a caller that counts what it drops lists them and filters with [`in_skipped_dir`]).
/// Errors (an unreadable folder) are yielded for the caller to count or report.
pub fn walk(root: &Path, max_file_bytes: usize, prune: bool) -> impl Iterator<Item = Result<std::path::PathBuf, ignore::Error>> {
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .standard_filters(true)
        .hidden(true)
        .require_git(false)
        .follow_links(false)
        .max_filesize(Some(max_file_bytes as u64))
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(prune && is_dir && entry.depth() > 0 && entry.file_name().to_str().is_some_and(skipped_dir))
        });
    builder.build().filter_map(|entry| match entry {
        Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => Some(Ok(e.into_path())),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    })
}

/// Why a file is not read as source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    Unreadable,
    TooLarge,
    /// NUL bytes, or not UTF-8.
    Binary,
    /// Very long lines: minified or machine-written.
    Minified,
}

/// The text of a source file, or why it is not read.
pub fn read_source(path: &Path, max_bytes: usize) -> Result<String, Skip> {
    let bytes = std::fs::read(path).map_err(|_| Skip::Unreadable)?;
    source_text(bytes, max_bytes)
}

/// [`read_source`] for bytes already read.
pub fn source_text(bytes: Vec<u8>, max_bytes: usize) -> Result<String, Skip> {
    if bytes.len() > max_bytes {
        return Err(Skip::TooLarge);
    }
    if bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) {
        return Err(Skip::Binary);
    }
    let text = String::from_utf8(bytes).map_err(|_| Skip::Binary)?;
    if text.contains('\0') {
        return Err(Skip::Binary);
    }
    if minified(&text) {
        return Err(Skip::Minified);
    }
    Ok(text)
}

/// Very long lines, on average or anywhere: minified bundles, generated tables.
pub fn minified(text: &str) -> bool {
    let (mut lines, mut longest) = (0usize, 0usize);
    for l in text.lines() {
        lines += 1;
        longest = longest.max(l.len());
    }
    longest > MINIFIED_MAX_LINE || (lines > 0 && text.len() / lines > MINIFIED_AVG_LINE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_skipped_by_name_at_any_depth_but_not_files_of_that_name() {
        assert!(in_skipped_dir("node_modules/x/index.js"));
        assert!(in_skipped_dir("src/vendor/lib.rs"));
        assert!(in_skipped_dir("a/.venv/lib/site.py"));
        assert!(!in_skipped_dir("src/build.rs"));
        assert!(!in_skipped_dir("target"));
        assert!(!in_skipped_dir("src/targets/mod.rs"));
    }

    #[test]
    fn the_walker_and_the_path_rule_agree() {
        let dir = tempfile::tempdir().expect("temp dir");
        for rel in ["src/a.py", "vendor/b.py", "src/node_modules/c.js", ".hidden/d.py", "build.rs", "venv/e.py", "x/dist/f.ts"] {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, "x = 1\n").expect("write");
        }
        let list = |prune| -> Vec<String> {
            walk(dir.path(), MAX_FILE_BYTES, prune)
                .filter_map(Result::ok)
                .map(|p| p.strip_prefix(dir.path()).expect("under root").to_string_lossy().replace('\\', "/"))
                .collect()
        };
        assert_eq!(list(true), ["build.rs", "src/a.py"]);
        let filtered: Vec<String> = list(false).into_iter().filter(|p| !in_skipped_dir(p)).collect();
        assert_eq!(filtered, list(true));
    }

    #[test]
    fn read_rules() {
        let ok = "def f():\n    return 1\n".as_bytes().to_vec();
        assert_eq!(source_text(ok.clone(), 1024).as_deref(), Ok("def f():\n    return 1\n"));
        assert_eq!(source_text(ok, 4), Err(Skip::TooLarge));
        assert_eq!(source_text(b"a\0b".to_vec(), 1024), Err(Skip::Binary));
        assert_eq!(source_text(vec![0xff, 0xfe, b'a'], 1024), Err(Skip::Binary));
        assert_eq!(source_text(format!("x = '{}'\n", "a".repeat(1200)).into_bytes(), 1 << 20), Err(Skip::Minified));
        let bundle = "var a=1;".repeat(40) + "\n";
        assert_eq!(source_text(bundle.repeat(3).into_bytes(), 1 << 20), Err(Skip::Minified));
    }
}
