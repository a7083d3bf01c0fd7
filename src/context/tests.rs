//! Cursor-marker (`$0`) tests for the when/how-much rules and the windows.

use super::*;
use crate::session::{Document, DocumentLimits};

fn at(language: Language, marked: &str) -> (Snapshot, ByteOffset) {
    let offset = marked.find("$0").expect("test source needs a $0 cursor marker");
    let text = marked.replacen("$0", "", 1);
    let doc = Document::open("test", language, &text, 1, &DocumentLimits::default()).expect("open");
    (doc.snapshot(), ByteOffset(offset))
}

fn decide(language: Language, marked: &str) -> Decision {
    let (snap, offset) = at(language, marked);
    gather(&snap, offset, &Settings::default())
}

fn mode(language: Language, marked: &str) -> Result<Mode, SkipReason> {
    match decide(language, marked) {
        Decision::Complete(c) => Ok(c.mode),
        Decision::Skip(r) => Err(r),
    }
}

#[test]
fn empty_body_line_is_multi_line() {
    assert_eq!(mode(Language::Python, "def add(a, b):\n    $0\n"), Ok(Mode::MultiLine));
    assert_eq!(mode(Language::Rust, "fn f() {\n    $0\n}\n"), Ok(Mode::MultiLine));
}

#[test]
fn after_block_opener_is_multi_line() {
    assert_eq!(mode(Language::Python, "def add(a, b):$0\n"), Ok(Mode::MultiLine));
    assert_eq!(mode(Language::Go, "func f() {$0\n}\n"), Ok(Mode::MultiLine));
}

#[test]
fn unfinished_expression_is_single_line() {
    assert_eq!(mode(Language::Python, "x = compute($0)\n"), Ok(Mode::SingleLine));
    assert_eq!(mode(Language::TypeScript, "const total = items.$0\n"), Ok(Mode::SingleLine));
}

#[test]
fn text_after_cursor_skips() {
    assert_eq!(mode(Language::Python, "x = $0value + 1\n"), Err(SkipReason::TextAfterCursor));
    // Closing brackets and quotes after the cursor are fine.
    assert_eq!(mode(Language::Rust, "let v = f($0);\n"), Ok(Mode::SingleLine));
}

#[test]
fn comments_and_strings_skip_unless_configured() {
    assert_eq!(mode(Language::Python, "# compute the $0\nx = 1\n"), Err(SkipReason::InCommentOrString));
    assert_eq!(mode(Language::Rust, "// compute the $0\nfn f() {}\n"), Err(SkipReason::InCommentOrString));
    assert_eq!(mode(Language::Go, "var s = \"hello $0\"\n"), Err(SkipReason::InCommentOrString));
    // Right after a closed block comment the cursor is in code.
    assert_eq!(mode(Language::C, "int x = 1; /* note */$0\n"), Ok(Mode::SingleLine));
    let (snap, offset) = at(Language::Python, "# compute the $0\n");
    let settings = Settings { complete_in_comments: true, ..Settings::default() };
    assert!(matches!(gather(&snap, offset, &settings), Decision::Complete(_)));
}

#[test]
fn disabled_skips() {
    let (snap, offset) = at(Language::Python, "x = $0\n");
    let settings = Settings { enabled: false, ..Settings::default() };
    assert_eq!(gather(&snap, offset, &settings), Decision::Skip(SkipReason::Disabled));
}

#[test]
fn windows_split_at_the_cursor_line() {
    let Decision::Complete(c) = decide(Language::Python, "import os\n\ndef add(a, b):\n    return $0\n\nprint(add(1, 2))\n") else {
        panic!("expected a completion")
    };
    assert_eq!(c.text.prefix, "import os\n\ndef add(a, b):\n");
    assert_eq!(c.text.line_head, "    return ");
    assert_eq!(c.text.suffix, "\n\nprint(add(1, 2))\n");
    assert_eq!(c.indent, "    ");
    assert_eq!(c.line_tail, "");
}

#[test]
fn windows_start_on_a_line_boundary_when_cut() {
    let long: String = (0..5000).map(|i| format!("line_{i} = {i}\n")).collect();
    let marked = format!("{long}x = $0\n{long}");
    let (snap, offset) = at(Language::Python, &marked);
    let settings = Settings { max_prefix_tokens: 32, max_suffix_tokens: 16, ..Settings::default() };
    let Decision::Complete(c) = gather(&snap, offset, &settings) else { panic!("expected a completion") };
    assert!(c.text.prefix.starts_with("line_"), "{:?}", &c.text.prefix[..20]);
    assert!(c.text.prefix.ends_with('\n'));
    assert!(c.text.prefix.len() <= 32 * 8);
    assert!(c.text.suffix.len() <= 16 * 8 + 1);
    assert!(c.text.suffix.starts_with('\n'));
}

#[test]
fn cursor_at_end_of_file_without_newline() {
    let Decision::Complete(c) = decide(Language::Rust, "fn main() {\n    let x = $0") else { panic!("expected a completion") };
    assert_eq!(c.text.line_head, "    let x = ");
    assert_eq!(c.text.suffix, "");
    assert_eq!(c.mode, Mode::SingleLine);
}
