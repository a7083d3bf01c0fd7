//! Test support: a copy of `tests/fixtures/repo/` with fixed change times and a few files each
//! filter must drop, shared by the corpus, eval and dataset tests.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use tempfile::TempDir;

/// The fixture's folder in the source tree.
pub fn fixture_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    let mut entries: Vec<_> = std::fs::read_dir(from).expect("read fixture").filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy fixture file");
        }
    }
}

/// Copies the fixture into a temporary folder; file number `i` in path order gets the change
/// time `1_700_000_000 + 1000 * i` seconds, so the newest files are the last paths. Adds files
/// the filters must drop: ignored, minified, binary, huge, and not source.
pub fn fixture_copy() -> TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_tree(&fixture_dir(), dir.path());
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).expect("write fixture extra");
    write(".gitignore", b"ignored.py\n");
    write("ignored.py", b"def ignored():\n    return 1\n");
    write("notes.txt", b"not source code\n");
    write("js/min.js", format!("var a={};\n", "1+".repeat(700) + "1").as_bytes());
    write("rs/blob.rs", b"fn main() {}\n\0\0\0");
    write("py/huge.py", "x = 1\n".repeat(200_000).as_bytes());
    let mut all: Vec<_> = walk(dir.path());
    all.sort();
    for (i, path) in all.iter().enumerate() {
        let when = UNIX_EPOCH + Duration::from_secs(1_700_000_000 + 1000 * i as u64);
        let file = std::fs::File::options().write(true).open(path).expect("open fixture file");
        file.set_modified(when).expect("set the modification time");
    }
    dir
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read folder").filter_map(Result::ok) {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
