//! Splitting a repository by file (never by chunk): the most recently changed files are held
//! out for evaluation and never reach training data.

use serde::Serialize;

use super::walk::SourceFile;

/// The smallest held-out share of the files.
pub const HELDOUT_FRACTION: f64 = 0.10;
/// The fewest held-out files (when the repository has that many).
pub const MIN_HELDOUT_FILES: usize = 5;

/// Indices into the corpus files, each list sorted by path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Split {
    pub heldout: Vec<usize>,
    pub train: Vec<usize>,
}

/// How many of `n` files are held out: at least 10% and at least 5 (or all, for tiny repos).
pub fn heldout_count(n: usize) -> usize {
    let share = (n as f64 * HELDOUT_FRACTION).ceil() as usize;
    share.max(MIN_HELDOUT_FILES).min(n)
}

/// Holds out the most recently changed files; ties are broken by path, so the split is
/// deterministic for a given set of change times.
pub fn by_recency(files: &[SourceFile]) -> Split {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| files[b].changed.cmp(&files[a].changed).then_with(|| files[a].path.cmp(&files[b].path)));
    let k = heldout_count(files.len());
    let mut heldout = order[..k].to_vec();
    let mut train = order[k..].to_vec();
    heldout.sort_by(|&a, &b| files[a].path.cmp(&files[b].path));
    train.sort_by(|&a, &b| files[a].path.cmp(&files[b].path));
    Split { heldout, train }
}
