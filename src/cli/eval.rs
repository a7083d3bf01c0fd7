//! `inkling eval --repo DIR [--model PATH]`: completion quality on the repository's held-out
//! files (the most recently changed ones), through the same code the server runs.
//!
//! Standard output: a table of kinds × metrics (EM, ES, parse validity) with 95% bootstrap
//! intervals; with `--compare A,B`, the paired differences B − A first. Files: `OUT/results.json`
//! (summary and every sample's predictions) and `OUT/eval.png` (bars with error bars).
//! Configurations: `default`, `no-crossfile`, `no-shaping`, `model=PATH`. `--compare` may be
//! given several times; each configuration still runs once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};

use crate::config::Settings;
use crate::corpus::SpanKind;
use crate::eval::{self, record, EvalOptions, Variant};
use crate::models;

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A GGUF file or Hugging Face folder (default: the model in the cache).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The repository to evaluate on.
    #[arg(long)]
    pub repo: PathBuf,
    /// Samples per kind.
    #[arg(long, default_value_t = 40)]
    pub per_kind: usize,
    /// Which files the cursors come from: `heldout` (what a model is measured on) or `train`
    /// (cursors for fitting the quality filter, never for measuring a model tuned on this
    /// repository).
    #[arg(long, value_enum, default_value = "heldout")]
    pub files: eval::SampleFiles,
    /// Seed for sampling and bootstrap.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The configuration to evaluate: default, no-crossfile, no-shaping or model=PATH.
    #[arg(long, default_value = "default", conflicts_with = "compare")]
    pub config: String,
    /// Compare two configurations on the same samples, `A,B` (reports B − A); repeat the flag
    /// for several comparisons in one run (e.g. `--compare no-crossfile,default --compare
    /// no-shaping,default`).
    #[arg(long)]
    pub compare: Vec<String>,
    /// Kinds to sample, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "rest_of_line,node,block,random_span,empty,cross_file")]
    pub kinds: Vec<String>,
    /// Folder for results.json and eval.png.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Most tokens to generate (default: the server's setting).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Prefix token budget (default: the server's setting).
    #[arg(long)]
    pub max_prefix_tokens: Option<usize>,
    /// Suffix token budget (default: the server's setting).
    #[arg(long)]
    pub max_suffix_tokens: Option<usize>,
    /// Token budget for code from other files (default: the server's setting).
    #[arg(long)]
    pub max_context_tokens: Option<usize>,
    /// Time budget per completion in ms; far above the editor's by default, so that results do
    /// not depend on how busy the machine is (`max_new_tokens` still bounds each answer).
    #[arg(long, default_value_t = 600_000)]
    pub time_budget_ms: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Write the result of `--compare A,model=PATH` beside that model (`model.gguf` →
    /// `model.inkling-eval.json`; the first such comparison per model), where the server finds it
    /// and says it when it loads the model.
    #[arg(long)]
    pub record: bool,
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let model = args.model.clone().or_else(models::default_model).context("no model given and no cache folder ($HOME unset)")?;
    // Quality is measured on the full prompt: no latency target.
    let mut settings = Settings { time_budget_ms: args.time_budget_ms, latency_target_ms: 0, ..Settings::default() };
    if let Some(n) = args.max_new_tokens {
        settings.max_new_tokens = n;
    }
    if let Some(n) = args.max_prefix_tokens {
        settings.max_prefix_tokens = n;
    }
    if let Some(n) = args.max_suffix_tokens {
        settings.max_suffix_tokens = n;
    }
    if let Some(n) = args.max_context_tokens {
        settings.max_context_tokens = n;
    }
    let (names, comparisons) = plan(&args.config, &args.compare)?;
    let variants = names.iter().map(|s| Variant::parse(s, &model, &settings)).collect::<Result<Vec<_>>>()?;
    // The first comparison that names a model as B is the one recorded beside it.
    let mut recorded: Vec<(usize, usize)> = Vec::new();
    for &(a, b) in &comparisons {
        if names[b].starts_with("model=") && !recorded.iter().any(|&(_, seen)| seen == b) {
            recorded.push((a, b));
        }
    }
    if args.record && args.files == eval::SampleFiles::Train {
        bail!("--record measures a tuned model on held-out files; drop --files train");
    }
    if args.record && recorded.is_empty() {
        bail!("--record writes the result beside a tuned model: compare it with its base, `--compare default,model=PATH`");
    }
    let kinds =
        args.kinds.iter().map(|k| SpanKind::parse(k.trim()).with_context(|| format!("unknown kind `{k}`"))).collect::<Result<Vec<_>>>()?;
    let opts = EvalOptions {
        files: args.files,
        repo: args.repo,
        per_kind: args.per_kind,
        seed: args.seed,
        kinds,
        variants,
        comparisons,
        resamples: args.resamples,
        progress: !args.quiet,
    };
    let report = eval::run(&opts)?;
    print!("{}", eval::table(&report));
    let (json, png) = eval::write_outputs(&report, &args.out)?;
    eprintln!("{} samples in {:.0} s; wrote {} and {}", report.samples.len(), report.seconds, json.display(), png.display());
    if args.record {
        for (i, &(a, b)) in opts.comparisons.iter().enumerate() {
            if !recorded.contains(&(a, b)) {
                continue;
            }
            let record = record::from_comparison(&report, &report.comparisons[i])?;
            let path = record::write(&record, &opts.variants[b].model)?;
            eprintln!("recorded beside the model: {} ({})", path.display(), record.summary());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Configuration names, each once in order of first mention, and pairs of indices into them.
type Plan = (Vec<String>, Vec<(usize, usize)>);

/// The configurations to run and the pairs to compare.
fn plan(config: &str, compare: &[String]) -> Result<Plan> {
    if compare.is_empty() {
        return Ok((vec![config.to_string()], Vec::new()));
    }
    let mut names: Vec<String> = Vec::new();
    let mut index = |name: &str| match names.iter().position(|n| n == name) {
        Some(i) => i,
        None => {
            names.push(name.to_string());
            names.len() - 1
        }
    };
    let mut pairs = Vec::new();
    for pair in compare {
        let parts: Vec<&str> = pair.split(',').map(str::trim).collect();
        let [a, b] = parts[..] else { bail!("--compare takes two configurations, `A,B` (got `{pair}`)") };
        if a == b {
            bail!("--compare needs two different configurations (got `{pair}`)");
        }
        pairs.push((index(a), index(b)));
    }
    Ok((names, pairs))
}

#[cfg(test)]
mod tests {
    use super::plan;

    #[test]
    fn comparisons_share_configurations() {
        let (names, pairs) = plan("default", &["no-crossfile,default".into(), "no-shaping, default".into()]).unwrap();
        assert_eq!(names, ["no-crossfile", "default", "no-shaping"]);
        assert_eq!(pairs, [(0, 1), (2, 1)]);
        assert_eq!(plan("no-shaping", &[]).unwrap(), (vec!["no-shaping".to_string()], vec![]));
        assert!(plan("default", &["default".into()]).is_err());
        assert!(plan("default", &["a,b,c".into()]).is_err());
        assert!(plan("default", &["default,default".into()]).is_err());
    }
}
