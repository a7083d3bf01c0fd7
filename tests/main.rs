//! Integration tests: one binary, one module per area (see each module's doc).

#![allow(clippy::unwrap_used)] // a test's unwrap is its assertion

mod support;

mod bad_input;
mod faults;
mod fuzz;
mod privacy;
mod protocol;
mod quality;
mod real_model;
mod stress;
mod tidy;
