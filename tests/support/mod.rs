//! Shared test helpers: the stdio LSP client for the real binary (`proc_client`), the
//! in-process server (`inprocess`), the fake model (`fake`), and a plain model of documents and
//! edits to check the server against (`doc_model`).
#![allow(dead_code)]

pub mod doc_model;
pub mod fake;
pub mod inprocess;
pub mod proc_client;
