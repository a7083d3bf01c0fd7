//! The fitted filter: a logistic regression over the three feature branches, read from the
//! JSON file `python -m inkling_finetune filter` writes. The server only evaluates it: a few
//! thousand multiply-adds per suggestion.
//!
//! The file carries the fitted transforms with the coefficients folded in: per dense feature
//! its mean, scale and coefficient; per lexical unit its idf and coefficient (TF-IDF with
//! sublinear term frequency and L2 norm, as scikit-learn computes it); per numeric feature its
//! mean, scale and coefficient (a missing value is the mean); per category value its
//! coefficient. It also carries `checks`: features with the probability scikit-learn gave
//! them; a file whose checks this code does not reproduce is refused, so the two sides can
//! never silently disagree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::features::Features;

/// The format this code reads.
pub const FORMAT: &str = "inkling-filter/1";
/// How far a check's probability may be from scikit-learn's.
const CHECK_TOLERANCE: f64 = 1e-4;

/// Why a filter file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("cannot read the filter {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a filter file: {detail}")]
    Invalid { path: PathBuf, detail: String },
    #[error("the filter {path} does not reproduce its own checks (check {index}: {got:.6} here, {want:.6} when it was fitted)")]
    Inconsistent { path: PathBuf, index: usize, got: f64, want: f64 },
    #[error("the filter was fitted on a model with {want} dense features, this one gives {got}: fit it again for this model")]
    OtherModel { want: usize, got: usize },
}

#[derive(Debug, Deserialize)]
struct Dense {
    mean: Vec<f64>,
    scale: Vec<f64>,
    coef: Vec<f64>,
}

#[derive(Debug, Deserialize)]
struct Lexical {
    /// unit → (idf, coefficient)
    terms: HashMap<String, (f64, f64)>,
}

#[derive(Debug, Deserialize)]
struct NumericTerm {
    name: String,
    mean: f64,
    scale: f64,
    coef: f64,
}

#[derive(Debug, Deserialize)]
struct CategoricalTerm {
    name: String,
    coef: HashMap<String, f64>,
}

#[derive(Debug, Deserialize)]
struct Check {
    features: Features,
    probability: f64,
}

#[derive(Debug, Deserialize)]
struct File {
    format: String,
    intercept: f64,
    #[serde(default)]
    dense: Option<Dense>,
    #[serde(default)]
    completion_units: Option<Lexical>,
    #[serde(default)]
    context_units: Option<Lexical>,
    #[serde(default)]
    numeric: Vec<NumericTerm>,
    #[serde(default)]
    categorical: Vec<CategoricalTerm>,
    min_confidence: f64,
    #[serde(default)]
    checks: Vec<Check>,
}

/// Where the filter that goes with `model` lives: `model.gguf` → `model.inkling-filter.json`; a
/// Hugging Face folder → `<folder>/inkling-filter.json`.
pub fn beside(model: &Path) -> PathBuf {
    if model.is_dir() {
        model.join("inkling-filter.json")
    } else {
        model.with_extension("inkling-filter.json")
    }
}

/// A loaded, checked filter.
#[derive(Debug)]
pub struct Filter {
    file: File,
    path: PathBuf,
}

fn scaled(x: f64, mean: f64, scale: f64) -> f64 {
    (x - mean) / if scale == 0.0 { 1.0 } else { scale }
}

/// The TF-IDF branch's part of the score: `Σ coef·v / ‖v‖` with `v = (1 + ln tf)·idf` over the
/// units the vocabulary knows.
fn lexical_part(lexical: &Lexical, units: &[String]) -> f64 {
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for u in units {
        if lexical.terms.contains_key(u.as_str()) {
            *counts.entry(u.as_str()).or_default() += 1;
        }
    }
    let (mut dot, mut norm) = (0.0, 0.0);
    for (unit, count) in counts {
        let (idf, coef) = lexical.terms[unit];
        let v = (1.0 + f64::from(count).ln()) * idf;
        dot += coef * v;
        norm += v * v;
    }
    if norm > 0.0 {
        dot / norm.sqrt()
    } else {
        0.0
    }
}

impl Filter {
    /// Reads and checks the filter at `path`.
    pub fn load(path: &Path) -> Result<Filter, FilterError> {
        let text = std::fs::read_to_string(path).map_err(|source| FilterError::Io { path: path.to_path_buf(), source })?;
        Filter::parse(&text, path)
    }

    /// [`Filter::load`] from text already read.
    pub fn parse(text: &str, path: &Path) -> Result<Filter, FilterError> {
        let invalid = |detail: String| FilterError::Invalid { path: path.to_path_buf(), detail };
        let file: File = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if file.format != FORMAT {
            return Err(invalid(format!("format `{}`, this inkling reads `{FORMAT}`", file.format)));
        }
        if let Some(d) = &file.dense {
            if d.mean.len() != d.coef.len() || d.scale.len() != d.coef.len() {
                return Err(invalid("the dense branch's mean, scale and coef differ in length".into()));
            }
        }
        if !(0.0..=1.0).contains(&file.min_confidence) {
            return Err(invalid(format!("min_confidence {} is not a probability", file.min_confidence)));
        }
        let numeric = Features::default().numeric.values().map(|(name, _)| name);
        let categorical = Features::default().categorical.values().map(|(name, _)| name);
        for name in file.numeric.iter().map(|t| &t.name).chain(file.categorical.iter().map(|t| &t.name)) {
            if !numeric.contains(&name.as_str()) && !categorical.contains(&name.as_str()) {
                return Err(invalid(format!("unknown feature `{name}`")));
            }
        }
        let filter = Filter { file, path: path.to_path_buf() };
        for (index, check) in filter.file.checks.iter().enumerate() {
            let got = filter.score(&check.features)?;
            if (got - check.probability).abs() > CHECK_TOLERANCE || !got.is_finite() {
                return Err(FilterError::Inconsistent { path: path.to_path_buf(), index, got, want: check.probability });
            }
        }
        Ok(filter)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many check examples the file carries (all reproduced, or it would not have loaded).
    pub fn checks(&self) -> usize {
        self.file.checks.len()
    }

    /// The threshold chosen when the filter was fitted (the `minConfidence` default).
    pub fn min_confidence(&self) -> f64 {
        self.file.min_confidence
    }

    /// The probability that the suggestion with these features is worth showing.
    pub fn score(&self, f: &Features) -> Result<f64, FilterError> {
        let file = &self.file;
        let mut z = file.intercept;
        if let Some(d) = &file.dense {
            if f.dense.len() != d.coef.len() {
                return Err(FilterError::OtherModel { want: d.coef.len(), got: f.dense.len() });
            }
            for (i, &x) in f.dense.iter().enumerate() {
                z += d.coef[i] * scaled(f64::from(x), d.mean[i], d.scale[i]);
            }
        }
        if let Some(l) = &file.completion_units {
            z += lexical_part(l, &f.completion_units);
        }
        if let Some(l) = &file.context_units {
            z += lexical_part(l, &f.context_units);
        }
        let values = f.numeric.values();
        for term in &file.numeric {
            if let Some((_, Some(x))) = values.iter().find(|(name, _)| *name == term.name) {
                z += term.coef * scaled(*x, term.mean, term.scale);
            }
        }
        let categories = f.categorical.values();
        for term in &file.categorical {
            if let Some((_, value)) = categories.iter().find(|(name, _)| *name == term.name) {
                z += term.coef.get(*value).copied().unwrap_or(0.0);
            }
        }
        Ok(1.0 / (1.0 + (-z).exp()))
    }
}
