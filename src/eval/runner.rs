//! Running one sample through the server's code: a [`Document`] of the file without its
//! target, `pipeline::complete` with the cross-file index (training files only: held-out files
//! are never retrieved), or, for `no-shaping`, the same steps with the raw model output.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::metrics::{self, Scores};
use super::Variant;
use crate::context::{self, Decision, Mode};
use crate::corpus::{Corpus, Sample};
use crate::crossfile::{CrossFile, CrossFileLimits};
use crate::engine::{load_backend, Engine, Generated, StopReason};
use crate::pipeline::{self, Outcome};
use crate::session::{ByteOffset, Document, DocumentLimits};

/// What one configuration answered for one sample.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The text the editor would insert ("" when nothing is shown).
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: f64,
    pub stop: Option<StopReason>,
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused from the previous sample.
    pub reused_tokens: usize,
    pub new_tokens: usize,
    pub scores: Scores,
}

impl Prediction {
    fn record(&mut self, g: &Generated) {
        (self.stop, self.prompt_tokens, self.reused_tokens, self.new_tokens) = (Some(g.stop), g.prompt_tokens, g.reused_tokens, g.new_tokens);
    }
}

/// The model, the workspace index and a small async runtime for the server's `complete`.
pub struct Runner {
    engine: Engine,
    cross: CrossFile,
    runtime: tokio::runtime::Runtime,
    root: PathBuf,
}

impl Runner {
    /// Loads `model` and indexes the repository like the server does, minus the held-out files.
    pub fn new(model: &Path, corpus: &Corpus, settings: &crate::config::Settings) -> Result<Runner> {
        let root = std::fs::canonicalize(&corpus.root).unwrap_or_else(|_| corpus.root.clone());
        let cross = CrossFile::new(CrossFileLimits::from_settings(settings));
        let job = cross.index_workspace(root.clone(), |_, _| {}).with_context(|| format!("cannot index {}", root.display()))?;
        job.join();
        for path in corpus.heldout_paths() {
            cross.remove_file(&root.join(&path).to_string_lossy());
        }
        let engine = Engine::spawn(Box::new(load_backend));
        engine.load_blocking(model.to_path_buf()).map_err(|e| anyhow::anyhow!("cannot load the model {}: {e}", model.display()))?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start an async runtime")?;
        Ok(Runner { engine, cross, runtime, root })
    }

    /// The files retrieval may show the model (absolute paths).
    pub fn indexed_files(&self) -> Vec<String> {
        self.cross.indexed_files()
    }

    /// Runs `sample` through the server's code with `variant`'s settings.
    pub fn predict(&self, variant: &Variant, sample: &Sample) -> Prediction {
        let started = Instant::now();
        let mut p = Prediction { text: String::new(), skipped: None, error: None, ms: 0.0, stop: None, prompt_tokens: 0, reused_tokens: 0, new_tokens: 0, scores: metrics::score(sample, "") };
        match self.outcome(variant, sample) {
            Ok(Outcome::Completed { text, generated }) => {
                p.text = text;
                p.record(&generated);
            }
            Ok(Outcome::Empty(generated)) => p.record(&generated),
            Ok(Outcome::TypedThrough { text }) => p.text = text,
            Ok(Outcome::Skipped(reason)) => p.skipped = Some(format!("{reason:?}")),
            Err(e) => p.error = Some(format!("{e:#}")),
        }
        p.ms = started.elapsed().as_secs_f64() * 1e3;
        p.scores = metrics::score(sample, &p.text);
        p
    }

    fn outcome(&self, variant: &Variant, sample: &Sample) -> Result<Outcome> {
        // The server knows documents by their absolute path; so does the index.
        let path = self.root.join(&sample.path).to_string_lossy().into_owned();
        let doc = Document::open(&path, sample.language, &sample.document_text(), 0, &DocumentLimits::default())?;
        let snapshot = doc.snapshot();
        let offset = ByteOffset(sample.cursor());
        let settings = &variant.settings;
        if variant.shaping {
            let run = pipeline::complete(&self.engine, &snapshot, offset, settings, None, Some(&self.cross));
            return Ok(self.runtime.block_on(run)?);
        }
        let mut ctx = match context::gather(&snapshot, offset, settings) {
            Decision::Skip(reason) => return Ok(Outcome::Skipped(reason)),
            Decision::Complete(ctx) => ctx,
        };
        pipeline::add_cross_file(&mut ctx, &snapshot, &self.cross, settings);
        let mut request = pipeline::request_for(&ctx, settings);
        request.stop_when = None;
        let generated = self.engine.generate_blocking(request)?;
        let raw = generated.text.replace('\r', "");
        let text = match ctx.mode {
            Mode::SingleLine => raw.split('\n').next().unwrap_or("").to_string(),
            Mode::MultiLine => raw.trim_end().to_string(),
        };
        Ok(if text.trim().is_empty() { Outcome::Empty(generated) } else { Outcome::Completed { text, generated } })
    }
}
