//! Languages and tree-sitter: which language a document is written in ([`Language`]), and
//! parsing a [`ropey::Rope`] incrementally into a syntax tree under a time budget ([`Parser`]),
//! and the one textual rule for a line that opens a block ([`opens_block`]).
//!
//! Nothing here knows about LSP; the `session` layer feeds documents in and keeps the trees.

mod language;
mod parse;

pub use language::Language;
pub use parse::{
    count_errors, for_each_node, has_error, ParseError, Parser, SyntaxError, SyntaxTree, DEFAULT_PARSE_BUDGET,
};

/// Whether a line that ends here opens a block or a bracket continued on the next lines: it ends
/// (before trailing spaces) in `{`, `(`, `[`, `:` (Python; not a `::` path) or `=>` (an arrow
/// body). Deciding whether a completion may span lines and cutting one at the end of its block
/// both ask this.
pub fn opens_block(line_head: &str) -> bool {
    let h = line_head.trim_end();
    h.ends_with(['{', '(', '[']) || h.ends_with("=>") || (h.ends_with(':') && !h.ends_with("::"))
}

#[cfg(test)]
mod tests {
    use super::opens_block;

    #[test]
    fn openers() {
        for head in ["def f(a):", "fn f() {", "    foo(", "x = [", "(a) =>", "if x {  "] {
            assert!(opens_block(head), "{head:?}");
        }
        for head in ["return a", "foo()", "x = 1;", "a =", "", "}", "a::"] {
            assert!(!opens_block(head), "{head:?}");
        }
    }
}
