//! Running one sample through the server's code: a [`Document`] of the file without its
//! target, then `pipeline::prepare` and `pipeline::complete_prepared` (the server's `complete`
//! in two halves, so the prediction can list the chunks its prompt held) with the cross-file
//! index (training files only: held-out files are never retrieved), or, for `no-shaping`, the
//! same steps with the raw model output.
//!
//! Configurations that differ only in shaping share one generation: the model runs once
//! without the early stop at the end of the block, and its raw output is shaped for one and cut
//! for the other. Shaping the full output gives the same text as shaping the output stopped
//! early, because the decode loop stops only once the kept part cannot grow
//! (`postprocess::block_done`; tested there and in `eval::tests`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::Serialize;

use super::metrics::{self, Scores};
use super::Variant;
use crate::context::{CompletionContext, Decision, Mode};
use crate::corpus::{Corpus, Sample};
use crate::crossfile::{CrossFile, CrossFileLimits};
use crate::engine::{load_backend, Engine, Generated, Loader, StopReason};
use crate::pipeline::{self, Outcome};
use crate::quality::Features;
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
    /// The code from other files the prompt held: each chunk's path and first line, in
    /// layout order (empty without cross-file context).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<String>,
    /// What the quality filter reads about the suggestion (`pipeline::features_of`: the same
    /// as the server computes); none when nothing was suggested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Features>,
}

impl Prediction {
    fn record(&mut self, g: &Generated) {
        (self.stop, self.prompt_tokens, self.reused_tokens, self.new_tokens) =
            (Some(g.stop), g.prompt_tokens, g.reused_tokens, g.new_tokens);
    }

    fn from_outcome(sample: &Sample, outcome: Result<Outcome>, ms: f64) -> Prediction {
        let (mut text, mut skipped, mut error, mut generated) = (String::new(), None, None, None);
        match outcome {
            Ok(Outcome::Completed { text: t, generated: g, .. }) => (text, generated) = (t, Some(g)),
            Ok(Outcome::Empty(g) | Outcome::Filtered { generated: g, .. }) => generated = Some(g),
            Ok(Outcome::TypedThrough { text: t, .. }) => text = t,
            Ok(Outcome::Skipped(reason)) => skipped = Some(format!("{reason:?}")),
            Err(e) => error = Some(format!("{e:#}")),
        }
        // Scored once: the parse-validity check re-parses the file.
        let scores = metrics::score(sample, &text);
        let mut p = Prediction {
            text,
            skipped,
            error,
            ms,
            stop: None,
            prompt_tokens: 0,
            reused_tokens: 0,
            new_tokens: 0,
            scores,
            context: Vec::new(),
            features: None,
        };
        if let Some(g) = &generated {
            p.record(g);
        }
        p
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
        Runner::with_loader(model, corpus, settings, Box::new(load_backend))
    }

    /// [`Runner::new`] with another way to load the model (tests use scripted backends).
    pub fn with_loader(model: &Path, corpus: &Corpus, settings: &crate::config::Settings, loader: Loader) -> Result<Runner> {
        let root = std::fs::canonicalize(&corpus.root).unwrap_or_else(|_| corpus.root.clone());
        let cross = CrossFile::new(CrossFileLimits::from_settings(settings));
        let job = cross.index_workspace(root.clone(), |_, _| {}).with_context(|| format!("cannot index {}", root.display()))?;
        job.join();
        for path in corpus.heldout_paths() {
            cross.remove_file(&root.join(&path).to_string_lossy());
        }
        let engine = Engine::spawn(loader);
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
        self.predict_shared(&[variant], sample).remove(0)
    }

    /// Runs `sample` once for `variants`, which must share the model and the settings (they may
    /// differ in shaping); one prediction per variant, in order. A lone shaped variant takes
    /// exactly the server's path.
    pub fn predict_shared(&self, variants: &[&Variant], sample: &Sample) -> Vec<Prediction> {
        let started = Instant::now();
        let Some(first) = variants.first() else { return Vec::new() };
        let (outcomes, context, features) = match self.prepare(&first.settings, sample) {
            Err(e) => (variants.iter().map(|_| Err(anyhow::anyhow!("{e:#}"))).collect(), Vec::new(), Vec::new()),
            Ok(Decision::Skip(reason)) => (variants.iter().map(|_| Ok(Outcome::Skipped(reason))).collect(), Vec::new(), Vec::new()),
            Ok(Decision::Complete(ctx)) => {
                let outcomes: Vec<Result<Outcome>> = match variants {
                    [v] if v.shaping => vec![self.server_outcome(v, &ctx)],
                    _ => self.raw_outcomes(variants, &ctx),
                };
                let features = outcomes.iter().map(|o| o.as_ref().ok().and_then(|o| pipeline::features_of(&ctx, o, None))).collect();
                (outcomes, shown(&ctx), features)
            }
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let mut features = features.into_iter();
        outcomes
            .into_iter()
            .map(|o| Prediction {
                context: context.clone(),
                features: features.next().flatten(),
                ..Prediction::from_outcome(sample, o, ms)
            })
            .collect()
    }

    /// The server's context for `sample` (its windows and code from other files).
    fn prepare(&self, settings: &crate::config::Settings, sample: &Sample) -> Result<Decision> {
        // The server knows documents by their absolute path; so does the index.
        let path = self.root.join(&sample.path).to_string_lossy().into_owned();
        let doc = Document::open(&path, sample.language, &sample.document_text(), 0, &DocumentLimits::default())?;
        Ok(pipeline::prepare(&doc.snapshot(), ByteOffset(sample.cursor()), settings, Some(&self.cross)))
    }

    fn server_outcome(&self, variant: &Variant, ctx: &CompletionContext) -> Result<Outcome> {
        let run = pipeline::complete_prepared(&self.engine, ctx, &variant.settings, None, None);
        Ok(self.runtime.block_on(run)?)
    }

    /// One generation without the early stop, then each variant's view of it.
    fn raw_outcomes(&self, variants: &[&Variant], ctx: &CompletionContext) -> Vec<Result<Outcome>> {
        let mut request = pipeline::request_for(ctx, &variants[0].settings);
        request.stop_when = None;
        match self.engine.generate_blocking(request) {
            Ok(generated) => variants
                .iter()
                .map(|v| Ok(if v.shaping { pipeline::finish(ctx, generated.clone()) } else { unshaped(ctx, generated.clone()) }))
                .collect(),
            Err(e) => variants.iter().map(|_| Err(anyhow::anyhow!("{e}"))).collect(),
        }
    }
}

/// The chunks from other files in `ctx`'s prompt, as `path: first line`.
fn shown(ctx: &CompletionContext) -> Vec<String> {
    ctx.text.chunks.iter().map(|c| format!("{}: {}", c.path, c.text.lines().next().unwrap_or("").trim())).collect()
}

/// The raw model output, cut only at the first line break in single-line mode.
fn unshaped(ctx: &CompletionContext, generated: Generated) -> Outcome {
    let raw = generated.text.replace('\r', "");
    let text = match ctx.mode {
        Mode::SingleLine => raw.split('\n').next().unwrap_or("").to_string(),
        Mode::MultiLine => raw.trim_end().to_string(),
    };
    if text.trim().is_empty() {
        Outcome::Empty(generated)
    } else {
        Outcome::Completed { text, line_head: ctx.text.line_head.clone(), generated, judged: None }
    }
}
