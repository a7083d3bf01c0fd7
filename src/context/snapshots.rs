//! Snapshot tests: every when/how-much rule and the prompt windows, per language, written as
//! source with a `$0` cursor and checked against an inline expectation.

use expect_test::{expect, Expect};

use super::*;
use crate::session::{Document, DocumentLimits};

/// Renders the decision for a marked source: `skip: Reason` or `mode | head | tail`.
fn render(language: Language, marked: &str) -> String {
    let offset = marked.find("$0").expect("a $0 cursor marker");
    let text = marked.replacen("$0", "", 1);
    let doc = Document::open("snap", language, &text, 1, &DocumentLimits::default()).expect("open");
    match gather(&doc.snapshot(), ByteOffset(offset), &Settings::default()) {
        Decision::Skip(reason) => format!("skip: {reason:?}"),
        Decision::Complete(c) => format!("{:?} | head {:?} | tail {:?} | {:?}", c.mode, c.text.line_head, c.line_tail, c.indent_style),
    }
}

fn check(language: Language, cases: &[&str], expected: Expect) {
    let out: Vec<String> = cases.iter().map(|c| render(language, c)).collect();
    expected.assert_eq(&out.join("\n"));
}

#[test]
fn rust_rules() {
    check(
        Language::Rust,
        &[
            "fn f() {\n    $0\n}\n",
            "fn f() {$0\n}\n",
            "fn f() -> u32 {\n    let x = compute($0);\n    x\n}\n",
            "fn f() {\n    let x = 1;$0\n    g();\n}\n",
            "fn f() {\n    let x = 1;$0\n\n}\n",
            "// explain $0\nfn f() {}\n",
            "fn f() { let s = \"ab$0\"; }\n",
            "fn f() { let v = $0value; }\n",
        ],
        expect![[r#"
            MultiLine | head "    " | tail "" | Spaces(4)
            MultiLine | head "fn f() {" | tail "" | Spaces(4)
            SingleLine | head "    let x = compute(" | tail ");" | Spaces(4)
            skip: EndOfStatement
            SingleLine | head "    let x = 1;" | tail "" | Spaces(4)
            skip: InCommentOrString
            skip: InCommentOrString
            skip: TextAfterCursor"#]],
    );
}

#[test]
fn python_rules() {
    check(
        Language::Python,
        &[
            "def f(a):\n    $0\n",
            "def f(a):$0\n",
            "if ready:\n  x = load($0)\n",
            "x = compute(1)$0\ny = 2\n",
            "x = compute(1)$0\n\ny = 2\n",
            "# note $0\n",
            "s = 'ab$0'\n",
            "x = $0y + 1\n",
        ],
        expect![[r#"
            MultiLine | head "    " | tail "" | Spaces(4)
            MultiLine | head "def f(a):" | tail "" | Spaces(4)
            SingleLine | head "  x = load(" | tail ")" | Spaces(2)
            skip: EndOfStatement
            SingleLine | head "x = compute(1)" | tail "" | Spaces(4)
            skip: InCommentOrString
            skip: InCommentOrString
            skip: TextAfterCursor"#]],
    );
}

#[test]
fn typescript_rules() {
    check(
        Language::TypeScript,
        &[
            "function f(): number {\n\t$0\n}\n",
            "const total = items.$0\n",
            "const a = sum(1, 2);$0\nconst b = 3;\n",
            "/* block $0 */\n",
            "const s = `x ${$0}`;\n",
        ],
        expect![[r#"
            MultiLine | head "\t" | tail "" | Tabs
            SingleLine | head "const total = items." | tail "" | Spaces(4)
            skip: EndOfStatement
            skip: InCommentOrString
            SingleLine | head "const s = `x ${" | tail "}`;" | Spaces(4)"#]],
    );
}

#[test]
fn go_rules() {
    check(
        Language::Go,
        &["func f() int {\n\t$0\n}\n", "func f() {$0\n}\n", "func f() {\n\tx := g()$0\n\ty := 2\n}\n", "var s = \"hi $0\"\n"],
        expect![[r#"
            MultiLine | head "\t" | tail "" | Tabs
            MultiLine | head "func f() {" | tail "" | Spaces(4)
            skip: EndOfStatement
            skip: InCommentOrString"#]],
    );
}
