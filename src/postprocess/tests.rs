//! Output shaping tests: raw model text in, kept text out.

use super::*;
use crate::config::Settings;
use crate::context::{gather, Decision};
use crate::session::{ByteOffset, Document, DocumentLimits};
use crate::syntax::Language;

fn ctx(language: Language, marked: &str) -> CompletionContext {
    let offset = marked.find("$0").expect("needs $0");
    let text = marked.replacen("$0", "", 1);
    let doc = Document::open("t", language, &text, 1, &DocumentLimits::default()).expect("open");
    match gather(&doc.snapshot(), ByteOffset(offset), &Settings::default()) {
        Decision::Complete(c) => c,
        Decision::Skip(r) => panic!("skipped: {r:?}"),
    }
}

#[test]
fn single_line_stops_at_line_end() {
    let c = ctx(Language::Python, "x = $0\n");
    assert_eq!(shape("compute(1)\ny = 2\n", &c).as_deref(), Some("compute(1)"));
    assert!(block_done("compute(1)\n", &c));
    assert!(!block_done("compute(1", &c));
}

#[test]
fn multi_line_body_stops_at_dedent() {
    let c = ctx(Language::Python, "def add(a, b):\n    $0\n");
    let raw = "result = a + b\n    return result\n\n\ndef sub(a, b):\n    return a - b\n";
    assert_eq!(shape(raw, &c).as_deref(), Some("result = a + b\n    return result"));
    assert!(block_done("result = a + b\n    return result\n\ndef sub", &c) || block_done(raw, &c));
}

#[test]
fn after_opener_keeps_the_body_and_stops_at_the_next_sibling() {
    let c = ctx(Language::Python, "def add(a, b):$0\n");
    let raw = "\n    return a + b\n\ndef sub(a, b):\n";
    assert_eq!(shape(raw, &c).as_deref(), Some("\n    return a + b"));
}

#[test]
fn brace_block_keeps_its_closer_unless_already_there() {
    let c = ctx(Language::Rust, "fn f() {$0\n");
    assert_eq!(shape("\n    1\n}\nfn g() {}\n", &c).as_deref(), Some("\n    1\n}"));
    let c = ctx(Language::Rust, "fn f() {$0\n}\n");
    assert_eq!(shape("\n    1\n}\nfn g() {}\n", &c).as_deref(), Some("\n    1"));
}

#[test]
fn does_not_repeat_the_rest_of_the_line() {
    let c = ctx(Language::Python, "print(add($0))\n");
    assert_eq!(shape("1, 2))", &c).as_deref(), Some("1, 2"));
}

#[test]
fn stops_before_text_that_already_follows() {
    let c = ctx(Language::Python, "def f(x):\n    $0\n    return y\n");
    assert_eq!(shape("y = x * 2\n    return y\n", &c).as_deref(), Some("y = x * 2"));
}

#[test]
fn whitespace_only_output_is_nothing() {
    let c = ctx(Language::Python, "x = $0\n");
    assert_eq!(shape("   \n", &c), None);
    assert_eq!(shape("", &c), None);
}

#[test]
fn crlf_output_is_normalised() {
    let c = ctx(Language::Python, "def f():\n    $0\n");
    assert_eq!(shape("a = 1\r\n    b = 2\r\n", &c).as_deref(), Some("a = 1\n    b = 2"));
}

#[test]
fn a_candidate_that_breaks_the_parse_is_cut_to_its_longest_clean_prefix() {
    // Python: the second line is not valid code.
    let c = ctx(Language::Python, "def f(x):\n    $0\n\n\nprint(f(1))\n");
    assert_eq!(shape("y = x * 2\n    return y ) ) (\n", &c).as_deref(), Some("y = x * 2"));
    // Go: a stray closing brace would end the function early.
    let c = ctx(Language::Go, "func f() int {\n\treturn $0\n}\n");
    assert_eq!(shape("1 }}", &c).as_deref(), Some("1"));
    // TypeScript: nothing clean is left.
    let c = ctx(Language::TypeScript, "const a = 1;\n$0\nconst b = 2;\n");
    assert_eq!(shape(")))", &c), None);
}

#[test]
fn one_line_completions_close_what_they_opened() {
    let c = ctx(Language::Rust, "fn f() -> u32 {\n    let total = $0\n    total\n}\n");
    assert_eq!(shape("compute(a, b\n", &c).as_deref(), Some("compute(a, b)"));
    let c = ctx(Language::Python, "values = $0\n");
    assert_eq!(shape("sorted(items, key=len\n", &c).as_deref(), Some("sorted(items, key=len)"));
}

#[test]
fn multi_line_completions_take_the_files_indentation() {
    let c = ctx(Language::Go, "func f() int {\n\tx := 1\n\t$0\n}\n");
    assert_eq!(shape("if x > 0 {\n        return x\n    }\n", &c).as_deref(), Some("if x > 0 {\n\t\treturn x\n\t}"));
}

#[test]
fn stopping_early_keeps_what_shaping_the_whole_output_keeps() {
    // The decode loop stops at the first prefix where `block_done` holds; the evaluation shapes
    // the whole output instead. Both must give the same text, for every possible stop point.
    let cases = [
        (Language::Python, "def add(a, b):\n    $0\n", "result = a + b\n    return result\n\n\ndef sub(a, b):\n    return a - b\n"),
        (Language::Python, "def add(a, b):$0\n\nx = 1\n", "\n    return a + b\n\ndef sub(a, b):\n    pass\n"),
        (Language::Python, "def f(x):\n    $0\n    return y\n", "y = x * 2\n    return y\n    z = 1\n"),
        (Language::Python, "x = $0\n", "compute(1)\ny = 2\n"),
        (Language::Rust, "fn f() {$0\n", "\n    let a = 1;\n    a\n}\nfn g() {}\n"),
        (Language::Rust, "fn f() {\n    match x {$0\n    }\n}\n", "\n        1 => a,\n        _ => b,\n    }\n}\n"),
        (Language::Go, "func f() int {\n\t$0\n}\n", "x := 1\n\treturn x\n}\n\nfunc g() {}\n"),
        (Language::TypeScript, "function f(a: number) {\n  $0\n}\n", "const b = a + 1;\n  return b;\n}\n\nfunction g() {}\n"),
    ];
    for (language, marked, raw) in cases {
        let c = ctx(language, marked);
        let whole = shape(raw, &c);
        let stops: Vec<usize> = raw.char_indices().map(|(i, _)| i).chain([raw.len()]).filter(|&i| block_done(&raw[..i], &c)).collect();
        assert!(!stops.is_empty(), "{marked:?}: the loop never stops early on {raw:?}");
        for i in stops {
            assert_eq!(shape(&raw[..i], &c), whole, "{marked:?}: stopped after {:?}", &raw[..i]);
        }
    }
}

#[test]
fn a_match_arm_does_not_take_the_closer_of_its_match() {
    let c = ctx(Language::Rust, "fn f(n: Option<u32>) -> u32 {\n    match n {\n        Some(v) => v,\n        None => $0\n    }\n}\n");
    assert_eq!(c.mode, Mode::MultiLine);
    assert_eq!(shape("0,\n    }\n}\n", &c).as_deref(), Some("0,"));
}

#[test]
fn a_rust_path_is_not_a_python_block() {
    let c = ctx(Language::Rust, "use std::$0\n");
    assert_eq!(c.mode, Mode::SingleLine);
}
