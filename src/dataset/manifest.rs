//! `manifest.json`: what a data set holds and how it was made (counts per split, kind and span,
//! the files of each split, token totals, seed, source, filters, prompt settings).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{DatasetOptions, Example};
use crate::corpus::walk::head_commit;
use crate::corpus::{Corpus, FilterCounts};

/// Counts for one split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitStats {
    /// The JSONL file, relative to the manifest.
    pub file: String,
    pub files: Vec<String>,
    pub examples: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub by_span: BTreeMap<String, usize>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

impl SplitStats {
    pub fn add(&mut self, example: &Example, prompt_tokens: usize, completion_tokens: usize) {
        self.examples += 1;
        *self.by_kind.entry(example.kind.clone()).or_default() += 1;
        *self.by_span.entry(example.span.clone()).or_default() += 1;
        self.prompt_tokens += prompt_tokens;
        self.completion_tokens += completion_tokens;
    }
}

/// The prompt settings the FIM prompts were built with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptSettings {
    pub max_prefix_tokens: usize,
    pub max_suffix_tokens: usize,
    pub cross_file_context: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Manifest {
    pub source_repo: String,
    pub git_head: Option<String>,
    pub seed: u64,
    pub tokenizer: String,
    pub fim_rate: f64,
    pub lines_per_example: usize,
    pub max_per_file: usize,
    pub prompt: PromptSettings,
    pub format: &'static str,
    pub filters: FilterCounts,
    /// `train` and `heldout`.
    pub splits: BTreeMap<String, SplitStats>,
}

impl Manifest {
    pub fn new(corpus: &Corpus, opts: &DatasetOptions) -> Manifest {
        Manifest {
            source_repo: std::fs::canonicalize(&corpus.root).unwrap_or_else(|_| corpus.root.clone()).display().to_string(),
            git_head: head_commit(&corpus.root),
            seed: opts.seed,
            tokenizer: opts.tokenizer_source.clone(),
            fim_rate: opts.fim_rate,
            lines_per_example: opts.lines_per_example,
            max_per_file: opts.max_per_file,
            prompt: PromptSettings {
                max_prefix_tokens: opts.settings.max_prefix_tokens,
                max_suffix_tokens: opts.settings.max_suffix_tokens,
                cross_file_context: opts.settings.cross_file_context,
            },
            format: "JSONL {prompt, completion, kind: fim|next_token, span, path}. FIM prompts are the server's prompt text \
                     (special tokens written out, ending with the cursor line's head); append <|endoftext|> to the completion \
                     when training. Held-out files appear only in heldout.jsonl.",
            filters: corpus.filters.clone(),
            splits: BTreeMap::new(),
        }
    }
}
