//! The `inkling` binary: the language server (default) and its command-line tools.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = inkling::cli::Cli::parse();
    inkling::cli::run(cli)
}
