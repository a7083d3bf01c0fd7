//! Per-sample scores (exact match, edit similarity, parse validity, right-to-be-empty) and
//! bootstrap confidence intervals, plain and paired.

use ropey::Rope;
use serde::Serialize;

use crate::corpus::{Sample, SpanKind};
use crate::rng::Rng;
use crate::syntax::{count_errors, Parser};

/// Scores of one prediction against the gold target.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scores {
    /// Exact match: of the first line (whitespace-trimmed) for single-line targets, of the whole
    /// trimmed text for blocks and multi-line targets; for `empty`, whether the prediction is empty.
    pub em: f64,
    /// `1 - lev(pred, gold) / max(len)`, in characters, on the same normalized texts as `em`.
    pub es: f64,
    /// Whether `prefix + pred + suffix` has no more ERROR/MISSING nodes than `prefix + gold +
    /// suffix`; `None` when the language has no grammar or parsing failed.
    pub parse: Option<f64>,
}

/// The metrics, in table order.
pub const METRICS: [&str; 3] = ["EM", "ES", "parse"];

impl Scores {
    pub fn get(&self, metric: &str) -> Option<f64> {
        match metric {
            "EM" => Some(self.em),
            "ES" => Some(self.es),
            "parse" => self.parse,
            _ => None,
        }
    }
}

/// Levenshtein distance in characters (unit costs), two-row dynamic programming.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            row[j + 1] = substitute.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// Edit similarity `1 - lev/max(len)`; 1 for two empty strings.
pub fn edit_similarity(pred: &str, gold: &str) -> f64 {
    let longest = pred.chars().count().max(gold.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(pred, gold) as f64 / longest as f64
}

/// Whether the whole text is compared (block, or a target over several lines).
pub fn whole_text(kind: SpanKind, gold: &str) -> bool {
    kind == SpanKind::Block || gold.trim().contains('\n')
}

/// The text compared: the trimmed first line, or the whole trimmed text.
pub fn normalize(text: &str, whole: bool) -> String {
    if whole {
        let lines: Vec<&str> = text.trim().lines().map(str::trim_end).collect();
        lines.join("\n")
    } else {
        text.lines().next().unwrap_or("").trim().to_string()
    }
}

/// ERROR + MISSING nodes of `text` parsed as the sample's language.
fn errors(sample: &Sample, middle: &str) -> Option<usize> {
    let mut parser = Parser::new(sample.language).ok()?;
    let text = format!("{}{middle}{}", sample.prefix, sample.suffix);
    let tree = parser.parse(&Rope::from_str(&text), None)?;
    Some(count_errors(tree.root_node()))
}

/// Scores `pred` (the text the editor would insert) for `sample`.
pub fn score(sample: &Sample, pred: &str) -> Scores {
    let parse = match (errors(sample, pred), errors(sample, &sample.target)) {
        (Some(p), Some(g)) => Some(if p <= g { 1.0 } else { 0.0 }),
        _ => None,
    };
    if sample.kind == SpanKind::Empty {
        let ok = if pred.trim().is_empty() { 1.0 } else { 0.0 };
        return Scores { em: ok, es: ok, parse };
    }
    let whole = whole_text(sample.kind, &sample.target);
    let (p, g) = (normalize(pred, whole), normalize(&sample.target, whole));
    Scores { em: if p == g { 1.0 } else { 0.0 }, es: edit_similarity(&p, &g), parse }
}

/// A mean with its 95% bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

/// Mean of `values` with a 95% percentile bootstrap interval (`resamples` draws, seeded).
pub fn bootstrap(values: &[f64], resamples: usize, seed: u64) -> Interval {
    let n = values.len();
    if n == 0 {
        return Interval { mean: f64::NAN, lo: f64::NAN, hi: f64::NAN, n };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::new(seed);
    let mut means: Vec<f64> = (0..resamples.max(1)).map(|_| (0..n).map(|_| values[rng.below(n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    Interval { mean, lo: at(0.025), hi: at(0.975), n }
}

/// Paired difference `b - a` (same samples, same order) with a paired bootstrap interval.
/// Pairs where either side is missing are left out.
pub fn paired(a: &[Option<f64>], b: &[Option<f64>], resamples: usize, seed: u64) -> Interval {
    let diffs: Vec<f64> = a.iter().zip(b).filter_map(|(x, y)| Some((*y)? - (*x)?)).collect();
    bootstrap(&diffs, resamples, seed)
}
