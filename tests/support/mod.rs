//! Shared test helpers: a stdio LSP client for the real binary, an in-process server, a fake model.
#![allow(dead_code)]

pub mod fake;
pub mod inprocess;
pub mod lsp_client;
pub mod custom_server;
pub mod doc_model;
pub mod proc_client;
