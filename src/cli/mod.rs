//! Command-line interface: `serve` (the default), `complete`, `eval`, `dataset`, `filter-check`
//! and `options`,
//! with the global `--threads` and `--log-file`; `serve` reads the client's first message before
//! the async runtime starts, so the thread count is set once (see `server::threads_requested`).
//!
//! Standard output belongs to the LSP transport in `serve`, and to each tool's documented output
//! otherwise; logs always go to standard error (or `--log-file`).

// The command line owns standard output: the LSP transport in `serve`, each tool's output otherwise.
#![allow(clippy::print_stdout)]

mod complete;
mod dataset;
mod eval;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::OPTION_DOCS;
use crate::engine::{loader_with, EngineOptions};
use crate::server::transport::read_first_frame;
use crate::server::{serve, threads_requested, ServerOptions};

#[derive(Debug, Parser)]
#[command(name = "inkling", version, about = "A private code-completion language server that runs a code model locally")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// CPU threads for the model (default: all cores). Takes effect at start.
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// Write logs to this file instead of standard error.
    #[arg(long, global = true)]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve LSP over standard input/output (the default).
    Serve {
        /// A GGUF file or Hugging Face folder, used when the client's settings name none.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Recompute every prompt from scratch (for measuring what cache reuse brings).
        #[arg(long)]
        no_reuse: bool,
        /// Plain greedy decoding without prompt-lookup drafts (same output, for measuring).
        #[arg(long)]
        no_speculation: bool,
        /// Always ask the model, even while the user types what the suggestion shows.
        #[arg(long)]
        no_type_through: bool,
        /// Accepted and ignored: standard input/output is the only transport, and many LSP
        /// clients (vscode-languageclient among them) ask for it by this flag.
        #[arg(long)]
        stdio: bool,
    },
    /// Complete from the command line: one position, or a JSONL batch.
    Complete(complete::CompleteArgs),
    /// Measure completion quality on the repository's held-out files.
    Eval(eval::EvalArgs),
    /// Write fine-tuning data (JSONL) from a repository, with the server's prompts.
    Dataset(dataset::DatasetArgs),
    /// Print the server's settings (name, type, default, description) as JSON.
    Options,
    /// Check a quality filter file (`python -m inkling_finetune filter`): it loads and this
    /// build scores its check examples as scikit-learn did.
    FilterCheck {
        /// The filter file (filter.json, or MODEL.inkling-filter.json).
        path: PathBuf,
    },
}

fn init_logging(log_file: Option<&PathBuf>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("INKLING_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            builder.with_writer(std::sync::Mutex::new(file)).init();
        }
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    let default = Command::Serve { model: None, no_reuse: false, no_speculation: false, no_type_through: false, stdio: true };
    let command = cli.command.unwrap_or(default);
    // The server's `threads` setting arrives in `initialize`: read that first message now, so
    // the thread count is set once, here, before any other thread exists.
    let (read_already, first) = match command {
        Command::Serve { .. } => read_first_frame(&mut std::io::stdin().lock()),
        _ => (Vec::new(), None),
    };
    let from_client = first.as_ref().and_then(threads_requested).filter(|_| std::env::var_os("CANDLE_NUM_THREADS").is_none());
    if let Some(n) = cli.threads.or(from_client) {
        // candle sizes its thread pools from these when it first uses them. Set before any
        // thread starts: nothing else can be reading the environment.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    }
    if let Err(e) = init_logging(cli.log_file.as_ref()) {
        eprintln!("inkling: cannot open the log file: {e:#}");
        return ExitCode::FAILURE;
    }
    match command {
        Command::Serve { model, no_reuse, no_speculation, no_type_through, stdio: _ } => {
            let engine = EngineOptions { reuse: !no_reuse, speculate: !no_speculation, ..EngineOptions::default() };
            let options = ServerOptions {
                model,
                loader: loader_with(engine),
                router_loader: loader_with(engine),
                type_through: !no_type_through,
                suggestion_log: None,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("inkling: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // What was read before the runtime started is served first, then the rest of stdin.
            let input = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(read_already), tokio::io::stdin());
            runtime.block_on(serve(options, input, tokio::io::stdout()));
            // The engine thread may be mid-token; do not wait for it.
            runtime.shutdown_background();
            ExitCode::SUCCESS
        }
        Command::FilterCheck { path } => match crate::quality::Filter::load(&path) {
            Ok(filter) => {
                println!(
                    "{}: reproduces its {} checks; minConfidence {:.3} by default",
                    path.display(),
                    filter.checks(),
                    filter.min_confidence()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("inkling: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Eval(args) => match eval::run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("inkling: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Dataset(args) => match dataset::run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("inkling: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Complete(args) => match complete::run(args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("inkling: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Options => {
            match serde_json::to_string_pretty(&*OPTION_DOCS) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("inkling: {e}"),
            }
            ExitCode::SUCCESS
        }
    }
}
