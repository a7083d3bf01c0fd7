//! Integration tests: one binary, one module per area (see each module's doc).

mod support;

mod bad_input;
mod faults;
mod fuzz;
mod privacy;
mod protocol;
mod real_model;
mod stress;
