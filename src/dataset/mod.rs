//! `inkling dataset`: fine-tuning data from a repository, with prompts built by the server's
//! own code.
//!
//! Files come from [`crate::corpus`] (tracked, filtered, deduplicated, split by file: held-out
//! files go to `heldout.jsonl` only). A few training-side files go to `valid.jsonl` instead of
//! `train.jsonl` ([`VALID_FRACTION`]): the trainer picks its checkpoint and stops early on them,
//! so the held-out files `inkling eval` measures a tuned model on never steer training, not even
//! through that choice. About 90% of the examples are fill-in-the-middle: a span
//! (rest of line, whole lines, a tree-sitter node, a block body, a random span) is cut out, the file without
//! it becomes a [`crate::session::Document`], and the prompt is `context::gather` →
//! `pipeline::request_for` → `prompt::render`: byte for byte what the server sends the engine
//! for that cursor *with `crossFileContext` off*. Where they differ: the server (cross-file
//! context on by default) also puts chunks of other files at the top of the prefix, laid out
//! by `prompt::ChunkLayout`; training prompts have none, because the chunks a server would
//! choose depend on an index of the workspace and on what the user recently edited, which a
//! repository on disk does not have. The window budgets, the anchored prefix window, the
//! suffix and the cursor line are the same. The
//! rest are plain next-token examples (a window of code split at a line). Each JSONL line is
//! `{"prompt", "completion", "kind": "fim"|"next_token", "span", "path"}`; the completion does
//! not include the end-of-text token (the trainer appends it).

mod manifest;

#[cfg(test)]
mod tests;

pub use manifest::{Manifest, SplitStats};

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::config::Settings;
use crate::context::Decision;
use crate::corpus::{Corpus, ParsedFile, Sample, SourceFile, SpanKind};
use crate::pipeline;
use crate::prompt::{self, SpecialTokens};
use crate::rng::{stable_hash, Rng};

/// FIM span kinds and their shares among FIM examples.
/// Block bodies are there because the server asks for them (multi-line mode on a blank line):
/// without them a tuned model learns to stop after one line (measured on peft: held-out block
/// EM 0.16 → 0.00).
const FIM_MIX: [(SpanKind, f64); 5] =
    [(SpanKind::RestOfLine, 0.30), (SpanKind::Lines, 0.20), (SpanKind::Node, 0.20), (SpanKind::Block, 0.15), (SpanKind::RandomSpan, 0.15)];
/// Next-token windows: at most this many lines and bytes.
const WINDOW_LINES: usize = 48;
const WINDOW_BYTES: usize = 4000;

/// Share of the training-side files whose examples go to `valid.jsonl` (at least one file).
pub const VALID_FRACTION: f64 = 0.05;
/// With fewer training-side files than this there is no validation split (the trainer then
/// falls back to `heldout.jsonl` and says so).
pub const MIN_FILES_FOR_VALID: usize = 8;

/// The training-side files split into (train, valid), each in corpus order; the validation
/// files are chosen by a seeded hash of their paths, so the choice is stable for a repository.
fn validation_split(corpus: &Corpus, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let train = &corpus.split.train;
    if train.len() < MIN_FILES_FOR_VALID {
        return (train.clone(), Vec::new());
    }
    let k = ((train.len() as f64 * VALID_FRACTION).ceil() as usize).max(1);
    let key = |i: usize| stable_hash(format!("{seed}/{}", corpus.files.get(i).map_or("", |f| f.path.as_str())).as_bytes());
    let mut by_hash = train.clone();
    by_hash.sort_by_key(|&i| (key(i), i));
    let valid: HashSet<usize> = by_hash[..k].iter().copied().collect();
    train.iter().copied().partition(|i| !valid.contains(i))
}

/// How to build the data set.
#[derive(Clone, Debug)]
pub struct DatasetOptions {
    pub repo: PathBuf,
    pub out: PathBuf,
    pub seed: u64,
    /// The server settings the prompts are built with (budgets; cross-file context is not used,
    /// see the module doc).
    pub settings: Settings,
    /// About one example per this many lines of a file…
    pub lines_per_example: usize,
    /// …and at most this many per file.
    pub max_per_file: usize,
    /// Share of FIM examples (the rest are next-token examples).
    pub fim_rate: f64,
    /// Where the tokenizer came from, for the manifest.
    pub tokenizer_source: String,
    pub progress: bool,
}

/// One line of `train.jsonl` / `heldout.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub prompt: String,
    pub completion: String,
    pub kind: String,
    pub span: String,
    pub path: String,
}

/// The FIM example for `sample`, its prompt built exactly as the server builds it; `None` when
/// the server would not complete at that cursor.
pub fn fim_example(sample: &Sample, tokenizer: &Tokenizer, special: &SpecialTokens, settings: &Settings) -> Result<Option<Example>> {
    let Decision::Complete(ctx) = sample.gather(settings)? else { return Ok(None) };
    let request = pipeline::request_for(&ctx, settings);
    let prompt = prompt::render(tokenizer, special, &request.text, request.budget)
        .with_context(|| format!("cannot build the prompt for {}", sample.id))?;
    Ok(Some(Example {
        prompt,
        completion: sample.target.clone(),
        kind: "fim".into(),
        span: sample.kind.name().into(),
        path: sample.path.clone(),
    }))
}

/// A window of whole lines split at a line: the prompt is the first part, the completion the rest.
pub fn next_token_example(file: &SourceFile, rng: &mut Rng) -> Option<Example> {
    let lines: Vec<&str> = file.text.split_inclusive('\n').collect();
    if lines.len() < 2 {
        return None;
    }
    let start = rng.below(lines.len() - 1);
    let mut end = start;
    let mut bytes = 0;
    while end < lines.len() && end - start < WINDOW_LINES && bytes + lines[end].len() <= WINDOW_BYTES {
        bytes += lines[end].len();
        end += 1;
    }
    if end - start < 2 {
        return None;
    }
    let cut = start + 1 + rng.below(end - start - 1);
    let (prompt, completion) = (lines[start..cut].concat(), lines[cut..end].concat());
    (!prompt.trim().is_empty() && !completion.trim().is_empty()).then(|| Example {
        prompt,
        completion,
        kind: "next_token".into(),
        span: "window".into(),
        path: file.path.clone(),
    })
}

fn pick_fim_kind(rng: &mut Rng) -> SpanKind {
    let total: f64 = FIM_MIX.iter().map(|(_, w)| w).sum();
    let mut roll = rng.unit() * total;
    for (kind, weight) in FIM_MIX {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    SpanKind::RestOfLine
}

/// The examples of one file, deterministic for a seed.
pub fn file_examples(file: &SourceFile, opts: &DatasetOptions, tokenizer: &Tokenizer, special: &SpecialTokens) -> Result<Vec<Example>> {
    let parsed = ParsedFile::new(file);
    let mut rng = Rng::derived(opts.seed, &file.path);
    let mut candidates: Vec<(SpanKind, Vec<crate::corpus::Span>)> = FIM_MIX
        .iter()
        .map(|&(kind, _)| {
            let mut spans = parsed.candidates(kind, &mut rng);
            rng.shuffle(&mut spans);
            (kind, spans)
        })
        .collect();
    let lines = file.text.lines().count();
    let want = lines.div_ceil(opts.lines_per_example.max(1)).clamp(1, opts.max_per_file.max(1));
    let (mut out, mut used, mut attempts) = (Vec::new(), HashSet::new(), 0);
    while out.len() < want && attempts < want * 4 {
        attempts += 1;
        if rng.unit() >= opts.fim_rate {
            out.extend(next_token_example(file, &mut rng));
            continue;
        }
        let kind = pick_fim_kind(&mut rng);
        let Some(span) = candidates.iter_mut().find(|(k, _)| *k == kind).and_then(|(_, spans)| spans.pop()) else { continue };
        if !used.insert((span.start, span.end)) {
            continue;
        }
        out.extend(fim_example(&parsed.sample(kind, span), tokenizer, special, &opts.settings)?);
    }
    Ok(out)
}

fn progress_bar(total: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} files {elapsed} ETA {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn token_count(tokenizer: &Tokenizer, text: &str) -> Result<usize> {
    let enc = tokenizer.encode_fast(text, false).map_err(anyhow::Error::msg).context("cannot count tokens")?;
    Ok(enc.get_ids().len())
}

/// Builds `train.jsonl`, `valid.jsonl` (when the repository has enough files), `heldout.jsonl`
/// and `manifest.json` in `opts.out`.
pub fn build(opts: &DatasetOptions, tokenizer: &Tokenizer) -> Result<Manifest> {
    let special = SpecialTokens::from_tokenizer(tokenizer)?;
    let corpus = Corpus::load(&opts.repo)?;
    std::fs::create_dir_all(&opts.out).with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut manifest = Manifest::new(&corpus, opts);
    let bar = progress_bar(corpus.files.len(), opts.progress);
    let (train, valid) = validation_split(&corpus, opts.seed);
    let stale = opts.out.join("valid.jsonl");
    if valid.is_empty() && stale.exists() {
        std::fs::remove_file(&stale).with_context(|| format!("cannot remove the old {}", stale.display()))?;
    }
    for (name, indices) in [("train", &train), ("valid", &valid), ("heldout", &corpus.split.heldout)] {
        if name == "valid" && indices.is_empty() {
            continue;
        }
        let path = opts.out.join(format!("{name}.jsonl"));
        let mut writer = BufWriter::new(File::create(&path).with_context(|| format!("cannot create {}", path.display()))?);
        let mut stats = SplitStats { file: format!("{name}.jsonl"), ..SplitStats::default() };
        bar.set_message(name);
        for file in indices.iter().filter_map(|&i| corpus.files.get(i)) {
            stats.files.push(file.path.clone());
            for example in file_examples(file, opts, tokenizer, &special)? {
                let line = serde_json::to_string(&example).context("cannot serialize an example")?;
                writeln!(writer, "{line}").with_context(|| format!("cannot write {}", path.display()))?;
                stats.add(&example, token_count(tokenizer, &example.prompt)?, token_count(tokenizer, &example.completion)?);
            }
            bar.inc(1);
        }
        writer.flush().with_context(|| format!("cannot write {}", path.display()))?;
        manifest.splits.insert(name.to_string(), stats);
    }
    bar.finish_and_clear();
    let path = opts.out.join("manifest.json");
    let json = serde_json::to_string_pretty(&manifest).context("cannot serialize the manifest")?;
    std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(manifest)
}
