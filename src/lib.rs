//! inkling: a private code-completion language server.
//!
//! The crate is layered; each layer only talks to the ones below it (see README, "Architecture"):
//! `server` (the only module that speaks LSP) → `session` (documents) → `context` (what the model
//! sees) → `prompt` (FIM layout, tokens) → `engine` (the model thread) → `postprocess` (cutting
//! the output to fit the code).

pub mod cli;
pub mod config;
pub mod context;
pub mod crossfile;
pub mod corpus;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod files;
pub mod models;
pub mod pipeline;
pub mod postprocess;
pub mod prompt;
pub mod rng;
pub mod server;
pub mod session;
pub mod syntax;
