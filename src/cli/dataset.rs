//! `inkling dataset --repo DIR --out DIR [--model PATH]`: fine-tuning data whose prompts are
//! built by the server's own code. Writes `train.jsonl`, `valid.jsonl` (a few training-side
//! files the trainer picks its checkpoint on), `heldout.jsonl` (the most recently changed files,
//! never in train or valid: what `inkling eval` measures) and `manifest.json`; standard output
//! gets one summary line per split.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use candle_core::Device;

use crate::config::Settings;
use crate::dataset::{self, DatasetOptions};
use crate::engine::model::Qwen2;
use crate::models;

#[derive(Debug, clap::Args)]
pub struct DatasetArgs {
    /// The repository to learn from.
    #[arg(long)]
    pub repo: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// The model whose tokenizer builds the prompts (default: the model in the cache).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Seed for span choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// About one example per this many lines of a file.
    #[arg(long, default_value_t = 10)]
    pub lines_per_example: usize,
    /// At most this many examples per file.
    #[arg(long, default_value_t = 64)]
    pub max_per_file: usize,
    /// Share of fill-in-the-middle examples (the rest are next-token examples).
    #[arg(long, default_value_t = 0.9)]
    pub fim_rate: f64,
    /// Prefix token budget (default: the server's setting).
    #[arg(long)]
    pub max_prefix_tokens: Option<usize>,
    /// Suffix token budget (default: the server's setting).
    #[arg(long)]
    pub max_suffix_tokens: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: DatasetArgs) -> Result<ExitCode> {
    let model = args.model.clone().or_else(models::default_model).context("no model given and no cache folder ($HOME unset)")?;
    let (_, tokenizer) = Qwen2::load(&model, &Device::Cpu, 1)
        .with_context(|| format!("cannot load the tokenizer of {}\nhint: {}", model.display(), models::FETCH_HINT))?;
    let mut settings = Settings { cross_file_context: false, ..Settings::default() };
    if let Some(n) = args.max_prefix_tokens {
        settings.max_prefix_tokens = n;
    }
    if let Some(n) = args.max_suffix_tokens {
        settings.max_suffix_tokens = n;
    }
    let opts = DatasetOptions {
        repo: args.repo,
        out: args.out,
        seed: args.seed,
        settings,
        lines_per_example: args.lines_per_example,
        max_per_file: args.max_per_file,
        fim_rate: args.fim_rate.clamp(0.0, 1.0),
        tokenizer_source: model.display().to_string(),
        progress: !args.quiet,
    };
    let manifest = dataset::build(&opts, &tokenizer)?;
    for (name, s) in &manifest.splits {
        println!(
            "{name}: {} files, {} examples {:?}, {} prompt + {} completion tokens → {}",
            s.files.len(),
            s.examples,
            s.by_span,
            s.prompt_tokens,
            s.completion_tokens,
            opts.out.join(&s.file).display()
        );
    }
    eprintln!("manifest: {}", opts.out.join("manifest.json").display());
    Ok(ExitCode::SUCCESS)
}
