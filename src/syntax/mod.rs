//! Languages and tree-sitter: which language a document is written in ([`Language`]), and
//! parsing a [`ropey::Rope`] incrementally into a syntax tree under a time budget ([`Parser`]),
//! and the one textual rule for what a line opens where it ends ([`opener`]).
//!
//! Nothing here knows about LSP; the `session` layer feeds documents in and keeps the trees.

mod language;
mod parse;

pub use language::Language;
pub use parse::{count_errors, for_each_node, has_error, ParseError, Parser, SyntaxError, SyntaxTree, DEFAULT_PARSE_BUDGET};

/// The kind of the syntax node the cursor at `offset` sits in: the first named node around the
/// character before the cursor that is not a lone token or an error (`argument_list`, `block`,
/// `assignment`, …); `"none"` at the start of the file or when nothing qualifies.
pub fn cursor_node_kind(tree: &tree_sitter::Tree, offset: usize) -> &'static str {
    let Some(offset) = offset.checked_sub(1) else { return "none" };
    let mut node = tree.root_node().descendant_for_byte_range(offset, offset);
    while let Some(n) = node {
        if n.is_named() && !n.is_error() && n.child_count() > 0 {
            return n.kind();
        }
        node = n.parent();
    }
    "none"
}

/// What the end of a line opens, judged from its text: the one rule for "this line opens a
/// block", which both the multi-line decision (`context/`) and the cut at the end of a block
/// (`postprocess/`) ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opener {
    /// `{`
    Brace,
    /// `(`
    Paren,
    /// `[`
    Bracket,
    /// `:` at the end of a Python header (not a `::` path).
    Colon,
    /// `=>`: a match arm or an arrow function whose body follows.
    Arrow,
}

impl Opener {
    /// A body follows on the next lines (rather than the rest of an expression): a completion
    /// here may span lines.
    pub fn starts_body(self) -> bool {
        matches!(self, Opener::Brace | Opener::Colon | Opener::Arrow)
    }

    /// A closing line at the opener's indentation belongs to what was opened (for `=>` it
    /// belongs to the enclosing block).
    pub fn owns_closer(self) -> bool {
        self != Opener::Arrow
    }
}

/// What the line `line_head` opens where it ends (trailing spaces ignored), if anything.
pub fn opener(line_head: &str) -> Option<Opener> {
    let h = line_head.trim_end();
    if h.ends_with("=>") {
        Some(Opener::Arrow)
    } else if h.ends_with("::") {
        None
    } else {
        match h.chars().last()? {
            '{' => Some(Opener::Brace),
            '(' => Some(Opener::Paren),
            '[' => Some(Opener::Bracket),
            ':' => Some(Opener::Colon),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{opener, Opener};

    #[test]
    fn openers() {
        let cases = [
            ("def f(a):", Some(Opener::Colon)),
            ("fn f() {", Some(Opener::Brace)),
            ("if x {  ", Some(Opener::Brace)),
            ("    foo(", Some(Opener::Paren)),
            ("x = [", Some(Opener::Bracket)),
            ("(a) =>", Some(Opener::Arrow)),
            ("None => ", Some(Opener::Arrow)),
            ("return a", None),
            ("foo()", None),
            ("x = 1;", None),
            ("a =", None),
            ("", None),
            ("}", None),
            ("use std::", None),
        ];
        for (head, want) in cases {
            assert_eq!(opener(head), want, "{head:?}");
        }
    }
}
