//! The evaluation a fine-tuned model carries with it: `inkling eval --record` writes it beside
//! the model compared against its base (`--compare BASE,model=PATH`), and the server reads it
//! when it loads that model, so the user sees what the tuning measured with the model's name.
//!
//! The record sits next to the model: `model.gguf` → `model.inkling-eval.json`; a Hugging Face
//! folder → `<folder>/inkling-eval.json`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};

use super::report::{Comparison, Report};

/// The metrics a record keeps, in the order a summary says them.
const RECORDED: [&str; 3] = ["EM", "ES", "parse"];

/// One metric of the whole held-out set, base and tuned, with the paired difference's 95%
/// bootstrap interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedMetric {
    pub metric: String,
    pub base: f64,
    pub tuned: f64,
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
}

/// What `inkling-eval.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// The repository whose held-out files were evaluated.
    pub repo: String,
    /// The model compared against (configuration A).
    pub base: String,
    pub samples: usize,
    pub seed: u64,
    pub metrics: Vec<RecordedMetric>,
}

/// Where the record of `model` lives.
pub fn record_path(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join("inkling-eval.json")
    } else {
        model.with_extension("inkling-eval.json")
    }
}

/// The record of `comparison` (B − A over the whole held-out set) in `report`.
pub fn from_comparison(report: &Report, comparison: &Comparison) -> Result<EvalRecord> {
    let base = report.configs.iter().find(|c| c.name == comparison.a).map(|c| c.model.clone()).unwrap_or_else(|| comparison.a.clone());
    let mut metrics = Vec::new();
    for name in RECORDED {
        let row = comparison
            .rows
            .iter()
            .find(|r| r.kind == "overall" && r.metric == name)
            .with_context(|| format!("the comparison {},{} has no overall {name}", comparison.a, comparison.b))?;
        metrics.push(RecordedMetric {
            metric: name.to_string(),
            base: rounded(row.a),
            tuned: rounded(row.b),
            diff: rounded(row.diff.mean),
            lo: rounded(row.diff.lo),
            hi: rounded(row.diff.hi),
        });
    }
    Ok(EvalRecord { repo: report.repo.clone(), base, samples: report.samples.len(), seed: report.seed, metrics })
}

/// `x` to six decimals: a record reads back equal to what was written (JSON keeps a number of
/// up to 15 significant digits exactly), and a summary shows three.
pub fn rounded(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Writes `record` beside `model`; returns the file written.
pub fn write(record: &EvalRecord, model: &Path) -> Result<PathBuf> {
    let path = record_path(model);
    let json = serde_json::to_string_pretty(record).context("cannot serialize the evaluation record")?;
    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The record beside `model`: `Ok(None)` when there is none, an error naming the file when it
/// cannot be read or parsed.
pub fn read(model: &Path) -> Result<Option<EvalRecord>> {
    let path = record_path(model);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let record: EvalRecord = serde_json::from_str(&text).with_context(|| format!("{} is not an evaluation record", path.display()))?;
    if record.metrics.is_empty() {
        bail!("{} records no metric", path.display());
    }
    Ok(Some(record))
}

impl EvalRecord {
    /// One line for the user, e.g. `held-out EM 0.310 → 0.420 (+0.110, 95% CI +0.050…+0.170),
    /// ES 0.610 → 0.660, parse 0.950 → 0.950 on 120 cursors of peft`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let interval = if i == 0 { format!(" ({:+.3}, 95% CI {:+.3}…{:+.3})", m.diff, m.lo, m.hi) } else { String::new() };
                format!("{} {:.3} → {:.3}{interval}", m.metric, m.base, m.tuned)
            })
            .collect();
        let repo = Path::new(&self.repo).file_name().map_or_else(|| self.repo.clone(), |n| n.to_string_lossy().into_owned());
        format!("held-out {} on {} cursors of {repo}", parts.join(", "), self.samples)
    }
}
