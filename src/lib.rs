//! inkling: a private code-completion language server.
//!
//! The crate is layered; each layer only calls the ones below it (docs/architecture.md has the
//! picture and the code map, which a test checks against this file):
//! `server` (the only module that speaks LSP) → `pipeline` (one completion end to end, shared
//! with the command line) → `session` (documents), `context` (whether and what to complete) and
//! `crossfile` (code from other files) → `prompt` (FIM layout, tokens) → `engine` (the model
//! thread) → `postprocess` (cutting the output to fit the code); `quality` (the features of a
//! suggestion and the filter that scores them) beside `postprocess`. Beside them: `config` (settings),
//! `syntax` (languages, tree-sitter), `files` (which files are read), `rng`, `sync` (locks), `models` (where the
//! models are cached); `corpus`, `eval` and `dataset` (`inkling eval` and `inkling dataset`);
//! `cli` (the command line, which owns standard output).

pub mod cli;
pub mod config;
pub mod context;
pub mod corpus;
pub mod crossfile;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod files;
pub mod models;
pub mod pipeline;
pub mod postprocess;
pub mod prompt;
pub mod quality;
pub mod rng;
pub mod server;
pub mod session;
pub mod sync;
pub mod syntax;
