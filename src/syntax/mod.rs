//! Languages and tree-sitter: which language a document is written in ([`Language`]), and
//! parsing a [`ropey::Rope`] incrementally into a syntax tree under a time budget ([`Parser`]).
//!
//! Nothing here knows about LSP; the `session` layer feeds documents in and keeps the trees.

mod language;
mod parse;

pub use language::Language;
pub use parse::{
    count_errors, for_each_node, has_error, ParseError, Parser, SyntaxError, SyntaxTree, DEFAULT_PARSE_BUDGET,
};
