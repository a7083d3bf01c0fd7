//! The repository as data, shared by `inkling eval` and `inkling dataset`.
//!
//! * [`walk`]: the tracked source files, with vendored, generated, minified, huge, binary and
//!   duplicate files dropped (and counted).
//! * [`split`]: held-out files = the most recently changed ones (≥ 10%, ≥ 5 files).
//! * [`sample`]: cursor positions of several kinds, each with the text that really followed;
//!   [`cross_file`] finds the uses of names defined in other files.

pub mod cross_file;
pub mod sample;
pub mod split;
pub mod walk;

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

pub use sample::{ParsedFile, Sample, Span, SpanKind};
pub use split::Split;
pub use walk::{FilterCounts, SourceFile};

/// A repository's source files and their split.
#[derive(Clone, Debug)]
pub struct Corpus {
    pub root: PathBuf,
    /// Sorted by path.
    pub files: Vec<SourceFile>,
    pub filters: FilterCounts,
    pub split: Split,
}

impl Corpus {
    /// Lists, filters and splits the repository at `root`.
    pub fn load(root: &Path) -> Result<Corpus> {
        if !root.is_dir() {
            anyhow::bail!("{} is not a folder", root.display());
        }
        let (files, filters) = walk::collect(root).with_context(|| format!("cannot list the source files of {}", root.display()))?;
        let split = split::by_recency(&files);
        Ok(Corpus { root: root.to_path_buf(), files, filters, split })
    }

    pub fn heldout(&self) -> impl Iterator<Item = &SourceFile> {
        self.split.heldout.iter().filter_map(|&i| self.files.get(i))
    }

    pub fn train(&self) -> impl Iterator<Item = &SourceFile> {
        self.split.train.iter().filter_map(|&i| self.files.get(i))
    }

    pub fn heldout_paths(&self) -> Vec<String> {
        self.heldout().map(|f| f.path.clone()).collect()
    }

    pub fn train_paths(&self) -> Vec<String> {
        self.train().map(|f| f.path.clone()).collect()
    }
}
