//! Tests for `document.rs`: incremental edits against from-scratch parses over seeded random
//! edits, all-or-nothing failures, refusals, parse limits and both position encodings.

use super::*;
use crate::rng::Rng;
use crate::session::position::LineCol;
use crate::session::test_support::reference_line_col;
use PositionEncoding::{Utf16, Utf8};

fn edit(start: (u32, u32), end: (u32, u32), text: &str) -> TextChange {
    TextChange { range: Some(LineColRange::new(LineCol::new(start.0, start.1), LineCol::new(end.0, end.1))), text: text.to_owned() }
}

/// Every node with its kind, byte range and points: stricter than `to_sexp`, since it also
/// checks the points kept up to date through `Tree::edit`.
fn describe(tree: &Tree) -> String {
    let mut out = String::new();
    let mut cursor = tree.walk();
    'walk: loop {
        let node = cursor.node();
        let (start, end) = (node.start_position(), node.end_position());
        out += &format!(
            "{}{} {}..{} {}:{}-{}:{}\n",
            if node.is_missing() { "MISSING " } else { "" },
            node.kind(),
            node.start_byte(),
            node.end_byte(),
            start.row,
            start.column,
            end.row,
            end.column
        );
        if cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    out
}

fn parse_fresh(language: Language, text: &str) -> Tree {
    let mut parser = Parser::new(language).expect("grammar loads");
    parser.parse(&Rope::from_str(text), None).expect("parse succeeds")
}

/// A random char boundary of `text` that an LSP position can name (not inside a CRLF), near
/// `from` when given.
fn random_boundary(rng: &mut Rng, text: &str, from: Option<usize>) -> usize {
    let mut byte = match from {
        None => rng.below(text.len() + 1),
        Some(from) => (from + rng.below(12)).min(text.len()),
    };
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    let bytes = text.as_bytes();
    if byte > 0 && bytes.get(byte) == Some(&b'\n') && bytes[byte - 1] == b'\r' {
        byte -= 1;
    }
    byte
}

fn check_random_edits(language: Language, sample: &str, fragments: &[&str], seed: u32, rounds: i32) {
    let limits = DocumentLimits::default();
    let mut document = Document::open("sample", language, sample, 0, &limits).expect("opens");
    let mut reference = sample.to_owned();
    let mut rng = Rng::new(u64::from(seed));
    for version in 1..=rounds {
        let enc = if rng.below(2) == 0 { Utf8 } else { Utf16 };
        let mut changes = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let mut text = String::new();
            for _ in 0..rng.below(4) {
                text += *rng.pick(fragments).expect("fragments");
            }
            if rng.below(60) == 0 {
                text = sample.to_owned();
                reference.clone_from(&text);
                changes.push(TextChange { range: None, text });
                continue;
            }
            let start = random_boundary(&mut rng, &reference, None);
            let end = random_boundary(&mut rng, &reference, Some(start)).max(start);
            let range = LineColRange::new(reference_line_col(&reference, start, enc), reference_line_col(&reference, end, enc));
            reference.replace_range(start..end, &text);
            changes.push(TextChange { range: Some(range), text });
        }
        document.apply_changes(version, &changes, enc).expect("in-range edits apply");
        assert_eq!(document.text().to_string(), reference, "round {version}");
        assert_eq!(document.version(), version);
        let incremental = document.tree().expect("a tree after every edit");
        let fresh = parse_fresh(language, &reference);
        assert_eq!(incremental.root_node().to_sexp(), fresh.root_node().to_sexp(), "round {version}, text {reference:?}");
        assert_eq!(describe(incremental), describe(&fresh), "round {version}, text {reference:?}");
    }
}

const PYTHON: &str = "import os\r\n\r\ndef greet(name):\r\n    \"\"\"Say hi 😀.\"\"\"\r\n    return f\"こんにちは {name}\"\n\nclass Box:\n\tdef __init__(self, x):\n\t\tself.x = [x, '中文', 0x1F600]\r\n";

const RUST: &str = "use std::fmt;\n\n/// 😀 docs with 漢字\r\nfn main() {\r\n    let s = \"é😀中\";\n    for c in s.chars() {\n\tprintln!(\"{c}\");\n    }\n}\n\nstruct P<T> { x: T }\n";

#[test]
fn incremental_python_edits_match_a_fresh_parse() {
    let fragments =
        ["x", " ", "\n", "\r\n", "\r", "😀", "中文", "(", ")", ":", "def f", "    ", "'", "\"s😀\"", "#", "\t", "return ", "[1, 2]", "="];
    check_random_edits(Language::Python, PYTHON, &fragments, 7, 300);
}

#[test]
fn incremental_rust_edits_match_a_fresh_parse() {
    let fragments =
        ["x", " ", "\n", "\r\n", "\r", "😀", "中", "{", "}", ";", "fn g() ", "let ", "\"é😀\"", "//", "'a", "::", "<T>", "()", "="];
    check_random_edits(Language::Rust, RUST, &fragments, 12345, 300);
}

#[test]
fn a_failed_edit_leaves_the_document_unchanged() {
    let mut document = Document::open("a.py", Language::Python, "x = 1\ny = 2\n", 1, &DocumentLimits::default()).unwrap();
    let before = document.snapshot();
    let sexp = |d: &Document| d.tree().map(|t| t.root_node().to_sexp());
    let before_sexp = sexp(&document);

    let past_the_end = [edit((0, 0), (0, 0), "z"), edit((9, 0), (9, 1), "w")];
    let error = document.apply_changes(2, &past_the_end, Utf16).unwrap_err();
    let line_error = PositionError::LineOutOfRange { line: 9, line_count: 3 };
    assert_eq!(error, DocumentError::RangeOutOfBounds { index: 1, source: line_error });
    assert!(error.to_string().starts_with("change number 1 in the edit does not fit the document: line 9"));

    let inverted = [edit((1, 2), (0, 1), "w")];
    let error = document.apply_changes(3, &inverted, Utf8).unwrap_err();
    assert!(matches!(error, DocumentError::RangeOutOfBounds { index: 0, source: PositionError::InvertedRange { .. } }));

    assert_eq!(document.text().to_string(), before.text.to_string());
    assert_eq!(document.version(), 1);
    assert_eq!(sexp(&document), before_sexp);
}

#[test]
fn binary_and_too_large_documents_are_refused() {
    let limits = DocumentLimits { max_bytes: 10, max_parse_bytes: 10 };
    let binary = Document::open("a.bin", Language::Other, "ab\0cd", 1, &limits);
    assert_eq!(binary.unwrap_err(), DocumentError::Binary);
    let late_nul = format!("{}\0", "a".repeat(BINARY_SNIFF_BYTES));
    assert!(Document::open("a.txt", Language::Other, &late_nul, 1, &DocumentLimits::default()).is_ok());

    let large = Document::open("a.rs", Language::Rust, "fn main() {}", 1, &limits).unwrap_err();
    assert_eq!(large, DocumentError::TooLarge { size: 12, limit: 10 });
    assert!(large.to_string().contains("12 bytes, more than the 10 bytes"));

    let mut document = Document::open("a.rs", Language::Rust, "fn f() {}", 1, &limits).unwrap();
    let grow = document.apply_changes(2, &[edit((0, 9), (0, 9), "\n\n")], Utf16);
    assert_eq!(grow, Err(DocumentError::TooLarge { size: 11, limit: 10 }));
    let replace = document.apply_changes(2, &[TextChange { range: None, text: "x".repeat(11) }], Utf16);
    assert_eq!(replace, Err(DocumentError::TooLarge { size: 11, limit: 10 }));
    assert_eq!((document.text().to_string(), document.version()), ("fn f() {}".to_owned(), 1));
    // Shrinking first makes room within the same call.
    document.apply_changes(3, &[edit((0, 0), (0, 9), ""), edit((0, 0), (0, 0), "fn g(){}\n")], Utf16).unwrap();
    assert_eq!(document.text().to_string(), "fn g(){}\n");
}

#[test]
fn documents_over_the_parse_limit_have_no_tree_until_they_shrink() {
    let limits = DocumentLimits { max_bytes: 100, max_parse_bytes: 20 };
    let mut document = Document::open("a.py", Language::Python, "x = 1\n", 1, &limits).unwrap();
    assert!(document.tree().is_some());
    document.apply_changes(2, &[edit((1, 0), (1, 0), "y = [1, 2, 3, 4, 5, 6]\n")], Utf16).unwrap();
    assert!(document.tree().is_none());
    assert!(document.snapshot().tree.is_none());
    document.apply_changes(3, &[edit((1, 0), (2, 0), "y = 2\n")], Utf16).unwrap();
    let tree = document.tree().expect("parsed again");
    assert_eq!(describe(tree), describe(&parse_fresh(Language::Python, "x = 1\ny = 2\n")));

    let plain = Document::open("notes", Language::Other, "hello", 1, &limits).unwrap();
    assert!(plain.tree().is_none());
}

#[test]
fn edits_in_both_encodings_around_emoji() {
    let limits = DocumentLimits::default();
    let mut document = Document::open("e.js", Language::JavaScript, "a😀b😀c", 1, &limits).unwrap();
    // UTF-16: the emoji is two units.
    document.apply_changes(2, &[edit((0, 1), (0, 3), "X")], Utf16).unwrap();
    assert_eq!(document.text().to_string(), "aXb😀c");
    // UTF-8: the emoji is four bytes.
    document.apply_changes(3, &[edit((0, 3), (0, 7), "")], Utf8).unwrap();
    assert_eq!(document.text().to_string(), "aXbc");

    let mut document = Document::open("e.js", Language::JavaScript, "a😀b\r\nc", 1, &limits).unwrap();
    // Inside the surrogate pair / the UTF-8 sequence: round down to the emoji's start.
    document.apply_changes(2, &[edit((0, 2), (0, 2), "[")], Utf16).unwrap();
    document.apply_changes(3, &[edit((0, 4), (0, 4), "]")], Utf8).unwrap();
    assert_eq!(document.text().to_string(), "a[]😀b\r\nc");
    // Past the end of the line: clamps before the CRLF.
    document.apply_changes(4, &[edit((0, 40), (1, 0), ";")], Utf16).unwrap();
    assert_eq!(document.text().to_string(), "a[]😀b;c");
    let tree = document.tree().unwrap();
    assert_eq!(describe(tree), describe(&parse_fresh(Language::JavaScript, "a[]😀b;c")));
}

#[test]
fn snapshots_are_independent_of_later_edits() {
    let mut document = Document::open("/x/a.go", Language::Go, "package a\n", 1, &DocumentLimits::default()).unwrap();
    let snapshot = document.snapshot();
    document.apply_changes(2, &[edit((1, 0), (1, 0), "func f() {}\n")], Utf16).unwrap();
    assert_eq!(snapshot.text.to_string(), "package a\n");
    assert_eq!((snapshot.version, snapshot.language, &*snapshot.path), (1, Language::Go, "/x/a.go"));
    let old_tree = snapshot.tree.expect("tree");
    assert_eq!(old_tree.root_node().end_byte(), 10);
    assert_eq!(document.snapshot().tree.expect("tree").root_node().end_byte(), 22);
}
