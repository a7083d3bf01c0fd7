//! The evaluation's results: per-kind summaries with bootstrap intervals, paired comparisons,
//! per-sample predictions (the JSON file), and the table printed on standard output.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::metrics::{bootstrap, paired, Interval, METRICS};
use super::{by_config, EvalOptions, Prediction, Variant};
use crate::corpus::{Corpus, FilterCounts, Sample};
use crate::rng::stable_hash;

/// How much of the context around the cursor the JSON file keeps, in characters.
const CONTEXT_CHARS: usize = 300;

/// A configuration as recorded in the results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConfigInfo {
    pub name: String,
    pub model: String,
    pub shaping: bool,
    pub cross_file_context: bool,
    pub max_prefix_tokens: usize,
    pub max_suffix_tokens: usize,
    pub max_new_tokens: usize,
    pub max_context_tokens: usize,
    pub time_budget_ms: u64,
    /// Configurations whose answers came from the same generation as this one's (same model
    /// and settings, shaped differently): the model ran once, without the early stop.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generation_shared_with: Vec<String>,
}

impl From<&Variant> for ConfigInfo {
    fn from(v: &Variant) -> ConfigInfo {
        ConfigInfo {
            name: v.name.clone(),
            model: v.model.display().to_string(),
            shaping: v.shaping,
            cross_file_context: v.settings.cross_file_context,
            max_prefix_tokens: v.settings.max_prefix_tokens,
            max_suffix_tokens: v.settings.max_suffix_tokens,
            max_new_tokens: v.settings.max_new_tokens,
            max_context_tokens: v.settings.max_context_tokens,
            time_budget_ms: v.settings.time_budget_ms,
            generation_shared_with: Vec::new(),
        }
    }
}

/// One row of a configuration's summary: a kind (or `overall`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindRow {
    pub kind: String,
    pub n: usize,
    /// Samples where the server declined to ask the model.
    pub skipped: usize,
    pub errors: usize,
    pub metrics: BTreeMap<String, Interval>,
}

/// One paired difference B − A.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairedRow {
    pub kind: String,
    pub metric: String,
    pub a: f64,
    pub b: f64,
    pub diff: Interval,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rows: Vec<PairedRow>,
}

/// One sample with every configuration's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SampleResult {
    pub id: String,
    pub kind: String,
    pub path: String,
    pub language: String,
    pub target: String,
    /// The last characters before the cursor.
    pub prefix_tail: String,
    /// The first characters after the target.
    pub suffix_head: String,
    pub predictions: BTreeMap<String, Prediction>,
}

/// Everything `results.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub repo: String,
    pub seed: u64,
    pub per_kind: usize,
    pub resamples: usize,
    /// Which files the cursors came from (`heldout` unless `--files train`).
    pub files: super::SampleFiles,
    pub heldout_files: Vec<String>,
    pub filters: FilterCounts,
    pub configs: Vec<ConfigInfo>,
    /// Per configuration: one row per kind, then `overall`.
    pub summary: BTreeMap<String, Vec<KindRow>>,
    /// One per requested pair, B − A.
    pub comparisons: Vec<Comparison>,
    pub samples: Vec<SampleResult>,
    pub seconds: f64,
}

fn tail_chars(s: &str, n: usize) -> String {
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

fn group_seed(seed: u64, kind: &str, metric: &str) -> u64 {
    seed ^ stable_hash(format!("{kind}/{metric}").as_bytes())
}

/// Indices of the samples in each row: one row per kind present, then `overall`.
fn groups(opts: &EvalOptions, samples: &[Sample]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = opts
        .kinds
        .iter()
        .map(|k| (k.name().to_string(), (0..samples.len()).filter(|&i| samples[i].kind == *k).collect::<Vec<_>>()))
        .filter(|(_, idx)| !idx.is_empty())
        .collect();
    out.push(("overall".to_string(), (0..samples.len()).collect()));
    out
}

pub(super) fn build(
    corpus: &Corpus,
    opts: &EvalOptions,
    configs: Vec<ConfigInfo>,
    samples: &[Sample],
    preds: &[Vec<Prediction>],
) -> Report {
    let groups = groups(opts, samples);
    let values =
        |c: usize, idx: &[usize], metric: &str| -> Vec<Option<f64>> { idx.iter().map(|&i| preds[c][i].scores.get(metric)).collect() };
    let mut summary = BTreeMap::new();
    for (c, config) in configs.iter().enumerate() {
        let rows = groups
            .iter()
            .map(|(kind, idx)| KindRow {
                kind: kind.clone(),
                n: idx.len(),
                skipped: idx.iter().filter(|&&i| preds[c][i].skipped.is_some()).count(),
                errors: idx.iter().filter(|&&i| preds[c][i].error.is_some()).count(),
                metrics: METRICS
                    .iter()
                    .map(|m| {
                        let v: Vec<f64> = values(c, idx, m).into_iter().flatten().collect();
                        (m.to_string(), bootstrap(&v, opts.resamples, group_seed(opts.seed, kind, m)))
                    })
                    .collect(),
            })
            .collect();
        summary.insert(config.name.clone(), rows);
    }
    let comparisons = opts
        .comparisons
        .iter()
        .map(|&(ca, cb)| Comparison {
            a: configs[ca].name.clone(),
            b: configs[cb].name.clone(),
            rows: groups
                .iter()
                .flat_map(|(kind, idx)| METRICS.iter().map(move |m| (kind.clone(), idx, *m)))
                .map(|(kind, idx, m)| {
                    let (a, b) = (values(ca, idx, m), values(cb, idx, m));
                    let mean = |v: &[Option<f64>]| {
                        let present: Vec<f64> = v.iter().flatten().copied().collect();
                        present.iter().sum::<f64>() / present.len() as f64
                    };
                    let diff = paired(&a, &b, opts.resamples, group_seed(opts.seed, &kind, m));
                    PairedRow { metric: m.to_string(), a: mean(&a), b: mean(&b), diff, kind }
                })
                .collect(),
        })
        .collect();
    let samples = samples
        .iter()
        .enumerate()
        .map(|(i, s)| SampleResult {
            id: s.id.clone(),
            kind: s.kind.name().to_string(),
            path: s.path.clone(),
            language: s.language.name().to_string(),
            target: s.target.clone(),
            prefix_tail: tail_chars(&s.prefix, CONTEXT_CHARS),
            suffix_head: s.suffix.chars().take(CONTEXT_CHARS).collect(),
            predictions: by_config(&configs, preds, i),
        })
        .collect();
    Report {
        repo: corpus.root.display().to_string(),
        seed: opts.seed,
        per_kind: opts.per_kind,
        resamples: opts.resamples,
        files: opts.files,
        heldout_files: corpus.heldout_paths(),
        filters: corpus.filters.clone(),
        configs,
        summary,
        comparisons,
        samples,
        seconds: 0.0,
    }
}

fn cell(i: &Interval) -> String {
    if i.n == 0 || i.mean.is_nan() {
        return format!("{:<21}", "—");
    }
    format!("{:.3} [{:.3}, {:.3}]", i.mean, i.lo, i.hi)
}

fn signed(i: &Interval) -> String {
    if i.n == 0 || i.mean.is_nan() {
        return "—".to_string();
    }
    format!("{:+.3} [{:+.3}, {:+.3}]", i.mean, i.lo, i.hi)
}

/// The table printed on standard output: kinds × metrics with 95% intervals; for a
/// comparison, A, B and B − A with its paired interval.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for cmp in &report.comparisons {
        let _ = writeln!(out, "A = {}, B = {}", cmp.a, cmp.b);
        let _ = writeln!(out, "{:<13} {:<6} {:>8} {:>8}  B−A [95% paired CI]", "kind", "metric", "A", "B");
        for r in &cmp.rows {
            let _ = writeln!(out, "{:<13} {:<6} {:>8.3} {:>8.3}  {}", r.kind, r.metric, r.a, r.b, signed(&r.diff));
        }
        out.push('\n');
    }
    for config in &report.configs {
        let Some(rows) = report.summary.get(&config.name) else { continue };
        if report.configs.len() > 1 {
            let _ = writeln!(out, "\n[{}]", config.name);
        }
        let _ = write!(out, "{:<13} {:>4} {:>4}", "kind", "n", "skip");
        for m in METRICS {
            let _ = write!(out, "  {m:<21}");
        }
        out.push('\n');
        for row in rows {
            let _ = write!(out, "{:<13} {:>4} {:>4}", row.kind, row.n, row.skipped);
            for m in METRICS {
                let _ = write!(out, "  {}", row.metrics.get(m).map(cell).unwrap_or_default());
            }
            out.push('\n');
        }
    }
    out.push_str("EM: first line (whole text for blocks) exactly right; for `empty`, the answer was empty. ES: 1 − lev/max len. parse: no more syntax errors than the real code. [95% bootstrap CI]\n");
    out
}
