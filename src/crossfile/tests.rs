//! Tests of indexing: the fixture workspace (`fixture`) on disk, the files and definitions
//! found, snippets, limits, and single-file updates.

use std::sync::{Arc, Mutex};

use super::fixture::{indexed_fixture, path_in, write_fixture};
use super::*;

fn listing(cross: &CrossFile, dir: &tempfile::TempDir) -> Vec<String> {
    let root = dir.path().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for path in cross.indexed_files() {
        let relative = path.strip_prefix(&root).unwrap_or(&path).trim_start_matches('/').to_owned();
        for def in cross.definitions_of(&path) {
            out.push(format!("{relative}:{}-{} {} {}", def.start_line, def.end_line, def.kind.name(), def.name));
        }
    }
    out
}

#[test]
fn indexes_exactly_the_expected_files_and_definitions() {
    let (dir, cross, report) = indexed_fixture();
    let root = dir.path().to_string_lossy().into_owned();
    let files: Vec<String> = cross.indexed_files().iter().map(|p| p.strip_prefix(&root).unwrap_or(p).to_owned()).collect();
    assert_eq!(
        files,
        vec![
            "/billing/report.py",
            "/billing/tax.py",
            "/cpp/vec.hpp",
            "/go/main.go",
            "/go/shapes/shapes.go",
            "/java/Money.java",
            "/src/geometry.rs",
            "/src/main.rs",
            "/web/app.ts",
            "/web/format.ts",
        ]
    );
    // blob.c (binary), bundle.js (minified), latin1.py (not UTF-8) were found but skipped.
    assert_eq!((report.found, report.indexed, report.skipped), (13, 10, 3), "{report:?}");
    assert!(!report.truncated && !report.cancelled);
    expect_test::expect![[r#"
        billing/report.py:3-5 function report
        billing/tax.py:0-0 const RATE
        billing/tax.py:4-6 function compute_tax
        billing/tax.py:9-20 class Invoice
        billing/tax.py:14-15 method __init__
        billing/tax.py:17-20 method total
        cpp/vec.hpp:1-1 const VEC_DIM
        cpp/vec.hpp:4-8 class Vec3
        cpp/vec.hpp:7-7 method dot
        cpp/vec.hpp:10-10 function norm
        cpp/vec.hpp:12-12 struct handle_t
        go/main.go:8-8 function main
        go/shapes/shapes.go:3-3 const MaxSide
        go/shapes/shapes.go:6-8 struct Rect
        go/shapes/shapes.go:11-13 interface Shape
        go/shapes/shapes.go:16-18 method Area
        go/shapes/shapes.go:21-23 function NewRect
        java/Money.java:2-16 class Money
        java/Money.java:9-11 method cents
        java/Money.java:13-15 interface Rounder
        java/Money.java:14-14 method round
        src/geometry.rs:3-3 const MAX_POINTS
        src/geometry.rs:7-10 struct Point
        src/geometry.rs:12-21 impl Point
        src/geometry.rs:13-15 method new
        src/geometry.rs:18-20 method distance
        src/geometry.rs:23-28 trait Shape
        src/geometry.rs:24-24 method area
        src/geometry.rs:25-27 method name
        src/geometry.rs:30-32 function origin
        src/geometry.rs:34-38 macro point
        web/app.ts:2-2 const price
        web/format.ts:0-3 interface Money
        web/format.ts:5-5 const DEFAULT_CURRENCY
        web/format.ts:7-7 type Cents
        web/format.ts:9-12 enum Rounding
        web/format.ts:15-17 function formatMoney
        web/format.ts:19-29 class Formatter
        web/format.ts:22-24 method constructor
        web/format.ts:26-28 method format
        web/format.ts:31-31 function toCents"#]]
    .assert_eq(&listing(&cross, &dir).join("\n"));
    let stats = cross.stats();
    assert_eq!((stats.files, stats.definitions, stats.truncated), (10, 41, false));
    assert!(stats.bytes > 0);
}

#[test]
fn snippets_are_compact() {
    let (dir, cross, _) = indexed_fixture();
    let defs = cross.definitions_of(&path_in(&dir, "src/geometry.rs"));
    let snippet =
        |name: &str, kind: DefKind| defs.iter().find(|d| d.name == name && d.kind == kind).map(|d| d.snippet.clone()).unwrap_or_default();
    expect_test::expect![[r#"
        impl Point {
            pub fn new(x: f64, y: f64) -> Point { ... }
            pub fn distance(&self, other: &Point) -> f64 { ... }
        }
    "#]]
    .assert_eq(&snippet("Point", DefKind::Impl));
    expect_test::expect![[r#"
        impl Point {
            /// Euclidean distance.
            pub fn distance(&self, other: &Point) -> f64 {
                ((self.x - other.x).powi(2) + (self.y - other.y).powi(2)).sqrt()
            }
        }
    "#]]
    .assert_eq(&snippet("distance", DefKind::Method));
    let py = cross.definitions_of(&path_in(&dir, "billing/tax.py"));
    let invoice = py.iter().find(|d| d.name == "Invoice").map(|d| d.snippet.as_str()).unwrap_or("");
    expect_test::expect![[r#"
        class Invoice:
            currency = "EUR"
            def __init__(self, lines): ...
            @property
            def total(self) -> float: ...
    "#]]
    .assert_eq(invoice);
}

#[test]
fn file_and_memory_limits_truncate() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_fixture(dir.path());
    let limits = CrossFileLimits { max_index_files: 3, ..CrossFileLimits::default() };
    let cross = CrossFile::new(limits);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let report = cross
        .index_workspace(dir.path(), move |done, total| seen.lock().map(|mut c| c.push((done, total))).unwrap_or(()))
        .expect("indexer thread")
        .join();
    assert!(report.truncated, "{report:?}");
    assert_eq!(cross.stats().files, 3);
    assert!(cross.stats().truncated);
    let calls = calls.lock().map(|c| c.clone()).unwrap_or_default();
    assert_eq!(calls.first(), Some(&(0, 3)));
    assert_eq!(calls.last(), Some(&(3, 3)));

    let limits = CrossFileLimits { max_index_bytes: 2_000, ..CrossFileLimits::default() };
    let cross = CrossFile::new(limits);
    let report = cross.index_workspace(dir.path(), |_, _| {}).expect("indexer thread").join();
    assert!(report.truncated && report.memory_cap_hit, "{report:?}");
    let stats = cross.stats();
    assert!(stats.truncated && stats.bytes <= 2_000 && stats.files < 10, "{stats:?}");
    // A single file that does not fit is refused too.
    cross.update_file("/elsewhere/big.py", &"def f():\n    pass\n".repeat(400));
    assert!(!cross.is_indexed("/elsewhere/big.py"));
    assert!(cross.stats().bytes <= 2_000);
}

#[test]
fn similar_code_windows_stay_within_their_own_cap() {
    let (dir, full, _) = indexed_fixture();
    let everything = full.stats();
    assert!(everything.window_bytes > 0, "{everything:?}");
    let cap = everything.window_bytes / 2;
    let cross = CrossFile::new(CrossFileLimits { max_window_bytes: cap, ..CrossFileLimits::default() });
    let report = cross.index_workspace(dir.path(), |_, _| {}).expect("indexer thread").join();
    let stats = cross.stats();
    // Past the cap, files are still indexed, with definitions only.
    assert!(!report.memory_cap_hit && !stats.truncated, "{report:?}");
    assert_eq!((stats.files, stats.definitions), (everything.files, everything.definitions));
    assert!(stats.window_bytes > 0 && stats.window_bytes <= cap, "{stats:?}");
    for path in cross.indexed_files() {
        cross.remove_file(&path);
    }
    assert_eq!(cross.stats().window_bytes, 0);
}

#[test]
fn update_file_replaces_and_remove_file_forgets() {
    let (dir, cross, _) = indexed_fixture();
    let tax = path_in(&dir, "billing/tax.py");
    cross.update_file(&tax, "def compute_vat(amount):\n    return amount * 0.2\n");
    let names: Vec<String> = cross.definitions_of(&tax).into_iter().map(|d| d.name).collect();
    assert_eq!(names, vec!["compute_vat"]);
    let before = cross.stats();
    assert_eq!(before.definitions, 41 - 5 + 1);
    // The indexer does not overwrite the editor's newer text.
    cross.index_workspace(dir.path(), |_, _| {}).expect("indexer thread").join();
    assert_eq!(cross.definitions_of(&tax).len(), 1);
    // A rope works as well as a string; a file without a grammar is dropped.
    let rope = ropey::Rope::from_str("fn later() {}\n");
    cross.update_file(&path_in(&dir, "src/later.rs"), &rope);
    assert_eq!(cross.definitions_of(&path_in(&dir, "src/later.rs"))[0].name, "later");
    cross.update_file(&path_in(&dir, "notes.txt"), "def nope(): pass");
    assert!(!cross.is_indexed(&path_in(&dir, "notes.txt")));
    cross.remove_file(&tax);
    assert!(!cross.is_indexed(&tax));
    assert_eq!(cross.stats().definitions, before.definitions - 1 + 1);
}

#[test]
fn odd_input_does_not_panic() {
    let cross = CrossFile::new(CrossFileLimits::default());
    for (path, text) in [
        ("a.rs", "fn (((( {{{{ impl for <"),
        ("b.py", "class :\n  def (:\n\0\0"),
        ("c.cpp", "template <> struct { int (*f)(int); };;; #define"),
        ("d.go", "func (r *) () {"),
        ("e.ts", "export default class { m() }\nconst = => ;"),
        ("f.java", "class { void () {} }"),
        ("g.c", "typedef; struct; int (*(*x)(void))[3];"),
        ("h.tsx", "const C = () => <div>{</div>;"),
        ("i.js", ""),
    ] {
        cross.update_file(path, text);
        cross.note_edit(path, text, 3);
    }
    let query = Query::new("z.rs", Language::Rust, "fn main() { x.", "", 4_000);
    let _ = cross.retrieve(&query);
    let report = cross.index_workspace("/definitely/not/here", |_, _| {}).expect("thread").join();
    assert_eq!(report.found, 0);
}

/// Parses `code` and says whether tree-sitter finds ERROR or MISSING nodes in it.
fn parses_clean(language: Language, code: &str) -> bool {
    let mut parser = crate::syntax::Parser::new(language).expect("parser");
    let tree = parser.parse(&ropey::Rope::from_str(code), None).expect("tree");
    !crate::syntax::has_error(&tree)
}

#[test]
fn long_definitions_are_cut_between_statements_and_keep_whole_headers() {
    let cross = CrossFile::new(CrossFileLimits::default());
    let py = "/ws/streams.py";
    let body: String = (0..6).map(|i| format!("        self.step{i}()\n")).collect();
    let text = format!(
        "class StreamProtocol(FlowControl,\n                     Protocol):\n    def connection_made(self, transport):\n        self._transport = transport\n{body}        if transport is not None:\n            self.log(\n                'made',\n                'now',\n                transport)\n        return None\n"
    );
    cross.update_file(py, text.as_str());
    let defs = cross.definitions_of(py);
    let made = defs.iter().find(|d| d.name == "connection_made").map(|d| d.snippet.as_str()).unwrap_or("");
    // The 12-line head would end inside `self.log(`: it ends after the statement before the
    // `if` instead, and the class header is whole.
    expect_test::expect![[r#"
        class StreamProtocol(FlowControl,
                             Protocol):
            def connection_made(self, transport):
                self._transport = transport
                self.step0()
                self.step1()
                self.step2()
                self.step3()
                self.step4()
                self.step5()
                ...
    "#]]
    .assert_eq(made);
    let outline = defs.iter().find(|d| d.name == "StreamProtocol").map(|d| d.snippet.as_str()).unwrap_or("");
    assert!(outline.starts_with("class StreamProtocol(FlowControl,\n                     Protocol):\n"), "{outline}");
    for def in &defs {
        assert!(parses_clean(Language::Python, &def.snippet), "{}:\n{}", def.name, def.snippet);
    }

    let rs = "/ws/lib.rs";
    let lines: String = (0..14).map(|i| format!("    let v{i} = {i};\n")).collect();
    cross.update_file(rs, format!("pub fn long_one(\n    a: u32,\n) -> u32 {{\n{lines}    a\n}}\n").as_str());
    let long = cross.definitions_of(rs).into_iter().find(|d| d.name == "long_one").map(|d| d.snippet).unwrap_or_default();
    assert!(long.ends_with("    let v8 = 8;\n    // ...\n}\n"), "{long}");
    assert!(parses_clean(Language::Rust, &long), "{long}");
}

#[test]
fn chunks_that_only_repeat_the_window_are_dropped() {
    let window = "def add(a, b):\n    return \n\nprint(add(1, 2))\n";
    assert!(repeats_window("def add(a, b):\n    return\n", window));
    assert!(!repeats_window("def sub(a, b):\n    return a - b\n", window));
    assert!(!repeats_window("\n\n", window));
}
