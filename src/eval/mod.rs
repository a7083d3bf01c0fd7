//! `inkling eval`: completion quality on the repository's held-out files, measured through the
//! same code the server runs.
//!
//! Samples come from [`crate::corpus`] (held-out files only, stratified by kind, seeded). Each
//! one becomes a `Document` holding the file without its target, and goes through
//! `pipeline::complete` with real [`Settings`] and a cross-file index of the repository (held-out
//! files removed from it), so the "whether/how much" rules, retrieval and output shaping apply
//! exactly as in the editor. Configurations (`default`, `no-crossfile`, `no-shaping`,
//! `model=PATH`) run on the same samples, for paired comparisons; several comparisons can share
//! one run (each configuration runs once, and configurations that differ only in shaping share
//! one generation).

mod chart;
pub mod metrics;
pub mod record;
mod report;
mod runner;

#[cfg(test)]
mod tests;

pub use chart::write_png;
pub use report::{table, Comparison, ConfigInfo, KindRow, PairedRow, Report, SampleResult};
pub use runner::{Prediction, Runner};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::corpus::{Corpus, ParsedFile, Sample, SpanKind};

/// One configuration under test: a model and the settings it runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub name: String,
    pub model: PathBuf,
    pub settings: Settings,
    /// `false`: the raw model output, cut only at the first line break in single-line mode.
    pub shaping: bool,
}

impl Variant {
    /// `default`, `no-crossfile`, `no-shaping` or `model=PATH`, on top of `model` and `base`.
    pub fn parse(spec: &str, model: &Path, base: &Settings) -> Result<Variant> {
        let mut v = Variant { name: spec.to_string(), model: model.to_path_buf(), settings: base.clone(), shaping: true };
        match spec {
            "default" => {}
            "no-crossfile" => v.settings.cross_file_context = false,
            "no-shaping" => v.shaping = false,
            _ => match spec.strip_prefix("model=") {
                Some(path) if !path.is_empty() => v.model = PathBuf::from(path),
                _ => bail!("unknown configuration `{spec}`: use default, no-crossfile, no-shaping or model=PATH"),
            },
        }
        Ok(v)
    }
}

/// Which files the cursors come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SampleFiles {
    /// The held-out files (the most recently changed ones): what a model is measured on.
    #[default]
    Heldout,
    /// The training-side files: cursors for fitting the quality filter (`finetune/`), which
    /// is then measured on held-out files it never saw. A model fine-tuned on this repository
    /// has seen these files.
    Train,
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub repo: PathBuf,
    pub files: SampleFiles,
    pub per_kind: usize,
    pub seed: u64,
    pub kinds: Vec<SpanKind>,
    /// The configurations to run, with distinct names.
    pub variants: Vec<Variant>,
    /// Pairs `(a, b)` of indices into `variants`: each reports B − A on the same samples.
    pub comparisons: Vec<(usize, usize)>,
    pub resamples: usize,
    /// Show a progress bar on standard error.
    pub progress: bool,
}

/// Up to `per_kind` samples of each kind from the held-out files, at positions where the server
/// would ask the model (any position for `empty`). `cross_file` samples use names defined in the
/// other (not held-out) files.
pub fn held_out_samples(corpus: &Corpus, kinds: &[SpanKind], per_kind: usize, seed: u64, settings: &Settings) -> Vec<Sample> {
    samples(corpus, SampleFiles::Heldout, kinds, per_kind, seed, settings)
}

/// [`held_out_samples`], or the same from the training-side files (`cross_file` names are then
/// those defined in any training-side file).
pub fn samples(corpus: &Corpus, files: SampleFiles, kinds: &[SpanKind], per_kind: usize, seed: u64, settings: &Settings) -> Vec<Sample> {
    let foreign =
        if kinds.contains(&SpanKind::CrossFile) { crate::corpus::cross_file::names_defined_in(corpus.train()) } else { Default::default() };
    let chosen: Vec<&crate::corpus::SourceFile> = match files {
        SampleFiles::Heldout => corpus.heldout().collect(),
        SampleFiles::Train => corpus.train().collect(),
    };
    let parsed: Vec<ParsedFile<'_>> = chosen.into_iter().map(|f| ParsedFile::new(f).with_foreign_names(&foreign)).collect();
    let mut accept = |s: &Sample| s.server_completes(settings);
    kinds.iter().flat_map(|&k| crate::corpus::sample::pick(&parsed, k, per_kind, seed, &mut accept)).collect()
}

/// Progress lines for logs, when standard error is not a terminal (the bar is hidden then).
fn log_progress(show: bool, done: usize, total: usize, started: Instant) {
    use std::io::IsTerminal as _;
    if !show || std::io::stderr().is_terminal() || (!done.is_multiple_of(10) && done != total) {
        return;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let eta = elapsed / done as f64 * (total - done) as f64;
    eprintln!("eval: {done}/{total} completions, {elapsed:.0} s elapsed, ETA {eta:.0} s");
}

fn progress_bar(total: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} {elapsed} ETA {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Configurations that can share one generation: the same model and settings (they differ at
/// most in shaping). Groups are in order of first appearance; each lists indices into `variants`.
fn generation_groups(variants: &[Variant]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        match groups.iter_mut().find(|g| variants[g[0]].model == v.model && variants[g[0]].settings == v.settings) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

fn check(opts: &EvalOptions) -> Result<()> {
    if opts.variants.is_empty() {
        bail!("no configuration to evaluate");
    }
    for (i, v) in opts.variants.iter().enumerate() {
        if opts.variants[..i].iter().any(|w| w.name == v.name) {
            bail!("configuration `{}` is listed twice", v.name);
        }
    }
    for &(a, b) in &opts.comparisons {
        if a == b || a >= opts.variants.len() || b >= opts.variants.len() {
            bail!("a comparison needs two different configurations");
        }
    }
    Ok(())
}

/// Builds the held-out set, runs every configuration on it and scores the answers.
pub fn run(opts: &EvalOptions) -> Result<Report> {
    let started = Instant::now();
    check(opts)?;
    let first = &opts.variants[0];
    let corpus = Corpus::load(&opts.repo)?;
    if corpus.files.is_empty() {
        bail!("no source files in {} (languages inkling knows, after filters: {:?})", opts.repo.display(), corpus.filters);
    }
    let samples = samples(&corpus, opts.files, &opts.kinds, opts.per_kind, opts.seed, &first.settings);
    if samples.is_empty() {
        bail!("no sample positions found in the {:?} files of {}", opts.files, opts.repo.display());
    }
    // Run file by file, cursor by cursor: consecutive prompts then share most of their tokens.
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| (&samples[i].path, samples[i].prefix.len()));
    let groups = generation_groups(&opts.variants);
    let total = samples.len() * groups.len();
    let bar = progress_bar(total, opts.progress);
    let mut done = 0usize;
    let mut answers: Vec<Vec<Option<Prediction>>> = vec![vec![None; samples.len()]; opts.variants.len()];
    let mut runner: Option<(PathBuf, Runner)> = None;
    for group in &groups {
        let members: Vec<&Variant> = group.iter().map(|&v| &opts.variants[v]).collect();
        let model = &members[0].model;
        if runner.as_ref().is_none_or(|(path, _)| path != model) {
            bar.set_message(format!("loading {}", model.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()));
            drop(runner.take()); // free the previous model first
            runner = Some((model.clone(), Runner::new(model, &corpus, &members[0].settings)?));
        }
        let Some((_, r)) = &runner else { bail!("no model") };
        let label = members.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join("+");
        for &i in &order {
            bar.set_message(format!("{label} {}", samples[i].kind.name()));
            for (&v, p) in group.iter().zip(r.predict_shared(&members, &samples[i])) {
                answers[v][i] = Some(p);
            }
            bar.inc(1);
            done += 1;
            log_progress(opts.progress, done, total, started);
        }
    }
    bar.finish_and_clear();
    let predictions: Vec<Vec<Prediction>> = answers.into_iter().map(|a| a.into_iter().flatten().collect()).collect();
    let mut configs: Vec<ConfigInfo> = opts.variants.iter().map(ConfigInfo::from).collect();
    for group in groups.iter().filter(|g| g.len() > 1) {
        for &v in group {
            configs[v].generation_shared_with = group.iter().filter(|&&w| w != v).map(|&w| opts.variants[w].name.clone()).collect();
        }
    }
    let mut report = report::build(&corpus, opts, configs, &samples, &predictions);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes `results.json` and `eval.png` into `out`.
pub fn write_outputs(report: &Report, out: &Path) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let json_path = out.join("results.json");
    let json = serde_json::to_string_pretty(report).context("cannot serialize the results")?;
    std::fs::write(&json_path, json).with_context(|| format!("cannot write {}", json_path.display()))?;
    let png_path = out.join("eval.png");
    write_png(report, &png_path)?;
    Ok((json_path, png_path))
}

/// Predictions of one configuration, keyed by configuration name, for the JSON file.
pub(crate) fn by_config(report_configs: &[ConfigInfo], preds: &[Vec<Prediction>], i: usize) -> BTreeMap<String, Prediction> {
    report_configs.iter().zip(preds).filter_map(|(c, p)| Some((c.name.clone(), p.get(i)?.clone()))).collect()
}
