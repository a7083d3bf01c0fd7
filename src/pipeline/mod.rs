//! One completion from start to end, shared by the LSP server and the command line:
//! snapshot + cursor → context → (type-through | engine job) → shaped text.

mod type_through;

pub use type_through::TypeThrough;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::context::{self, CompletionContext, Decision, Mode, SkipReason};
use crate::crossfile::{CrossFile, Cursor};
use crate::engine::{Engine, EngineError, GenerateRequest, Generated, Written};
use crate::postprocess;
use crate::prompt::{Budget, ChunkLayout};
use crate::quality::{Features, Filter};
use crate::session::{ByteOffset, Snapshot};

/// What one completion request came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// No suggestion belongs here; the model was not asked.
    Skipped(SkipReason),
    /// The model was asked, and what it wrote does not fit (empty after shaping).
    Empty(Generated),
    /// A suggestion to show after `line_head`, the cursor line up to the cursor as the pipeline
    /// read it (what a client-side item replaces or filters on). `judged`: what the quality
    /// gate saw, when the caller passed one.
    Completed { text: String, line_head: String, generated: Generated, judged: Option<Box<Judgement>> },
    /// The model wrote a suggestion the quality filter scored under the threshold (and no router
    /// model did better): nothing is shown.
    Filtered { text: String, generated: Generated, judged: Box<Judgement> },
    /// The rest of the suggestion already shown, which the user is typing through.
    TypedThrough { text: String, line_head: String },
}

impl Outcome {
    pub fn text(&self) -> Option<&str> {
        match self {
            Outcome::Completed { text, .. } | Outcome::TypedThrough { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// What the server passes the pipeline so that suggestions are judged before they are shown:
/// the fitted filter (none: every suggestion passes, but its features are still computed, for
/// the suggestion log), its threshold, and a bigger model to ask when a suggestion scores under
/// it.
#[derive(Clone, Default)]
pub struct Gate {
    pub filter: Option<Arc<Filter>>,
    pub min_confidence: f64,
    pub router: Option<Engine>,
    /// Milliseconds since the document last changed (a feature).
    pub since_edit_ms: Option<f64>,
}

impl Gate {
    /// The engine job for `ctx` when this gate is in the way: with a router model, the two
    /// models share `kvCacheMb`.
    fn request_for(&self, ctx: &CompletionContext, settings: &Settings) -> GenerateRequest {
        let mut request = request_for(ctx, settings);
        if self.router.is_some() {
            request.kv_cache_bytes /= 2;
        }
        request
    }
}

/// What the gate saw of one suggestion.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub features: Features,
    /// The filter's score (`None` without a filter, or when the filter could not score it).
    pub confidence: Option<f64>,
    /// The suggestion came from the router model (the first model's scored `confidence`).
    pub routed: bool,
}

/// The engine job for a context.
pub fn request_for(ctx: &CompletionContext, settings: &Settings) -> GenerateRequest {
    let shaping_ctx = ctx.clone();
    GenerateRequest {
        slot: ctx.path.clone(),
        kv_cache_bytes: settings.kv_cache_mb * 1024 * 1024,
        text: ctx.text.clone(),
        budget: Budget {
            max_prefix_tokens: settings.max_prefix_tokens,
            max_suffix_tokens: settings.max_suffix_tokens,
            max_context_tokens: settings.max_context_tokens,
        },
        max_new_tokens: settings.max_new_tokens,
        single_line: ctx.mode == Mode::SingleLine,
        stop_when: Some(Box::new(move |text| postprocess::block_done(text, &shaping_ctx))),
        time_budget: Duration::from_millis(settings.time_budget_ms),
        latency_target: Duration::from_millis(settings.latency_target_ms),
        background: false,
        written: None,
    }
}

/// The pre-warm job for a context: its whole prompt at the full budgets, read into the cache
/// in the background, so that the request that comes for it (or for the next keystroke, which
/// shares all but its last tokens) finds the prompt read.
pub fn prewarm_request(ctx: &CompletionContext, settings: &Settings) -> GenerateRequest {
    GenerateRequest { max_new_tokens: 0, latency_target: Duration::ZERO, background: true, stop_when: None, ..request_for(ctx, settings) }
}

/// What the quality filter reads about the suggestion in `outcome` (one the model wrote for
/// `ctx`): the one place the server and `inkling eval` get features from. `since_edit_ms` is
/// the time since the document last changed, where an editor tells it.
pub fn features_of(ctx: &CompletionContext, outcome: &Outcome, since_edit_ms: Option<f64>) -> Option<Features> {
    match outcome {
        Outcome::Completed { text, generated, .. } => Some(crate::quality::features(ctx, generated, text, since_edit_ms)),
        _ => None,
    }
}

/// Shapes the model's raw output for `ctx` (what the server shows).
pub fn finish(ctx: &CompletionContext, generated: Generated) -> Outcome {
    match postprocess::shape(&generated.text, ctx) {
        Some(text) => Outcome::Completed { text, line_head: ctx.text.line_head.clone(), generated, judged: None },
        None => Outcome::Empty(generated),
    }
}

/// Passes a shaped outcome through `gate`: computes its features and score; a suggestion under
/// the threshold goes to the router model when there is one (its answer is shown if it has
/// one), else becomes [`Outcome::Filtered`].
pub async fn judge(ctx: &CompletionContext, settings: &Settings, gate: &Gate, outcome: Outcome) -> Result<Outcome, EngineError> {
    let Outcome::Completed { text, line_head, generated, .. } = outcome else { return Ok(outcome) };
    let features = crate::quality::features(ctx, &generated, &text, gate.since_edit_ms);
    let confidence = gate.filter.as_ref().and_then(|f| match f.score(&features) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("the quality filter cannot score this suggestion: {e}");
            None
        }
    });
    let judged = Box::new(Judgement { features, confidence, routed: false });
    if confidence.is_none_or(|p| p >= gate.min_confidence) {
        return Ok(Outcome::Completed { text, line_head, generated, judged: Some(judged) });
    }
    let Some(router) = &gate.router else { return Ok(Outcome::Filtered { text, generated, judged }) };
    match finish(ctx, router.generate(gate.request_for(ctx, settings)).await?) {
        Outcome::Completed { text, line_head, generated, .. } => {
            let features = crate::quality::features(ctx, &generated, &text, gate.since_edit_ms);
            Ok(Outcome::Completed { text, line_head, generated, judged: Some(Box::new(Judgement { features, confidence, routed: true })) })
        }
        _ => Ok(Outcome::Filtered { text, generated, judged }),
    }
}

/// Adds code from other files (definitions used near the cursor, recent edits) to `ctx`, laid
/// out for its language.
pub fn add_cross_file(ctx: &mut CompletionContext, snapshot: &Snapshot, cross: &CrossFile, settings: &Settings) {
    if !settings.cross_file_context || settings.max_context_tokens == 0 {
        return;
    }
    let cursor = Cursor {
        path: &ctx.path,
        language: ctx.language,
        prefix: &ctx.text.prefix,
        line_head: &ctx.text.line_head,
        suffix: &ctx.text.suffix,
        file: &snapshot.text,
    };
    ctx.text.chunks = cross.chunks_at(&cursor, settings.max_context_tokens);
    if !ctx.text.chunks.is_empty() {
        ctx.text.layout = ChunkLayout::for_language(ctx.language, cross.repo_name(), cross.display_path(&ctx.path));
    }
}

/// The context for a completion at `offset` in `snapshot`: the windows around the cursor and,
/// with `cross`, code from other files. [`complete`] is `prepare` then [`complete_prepared`];
/// callers that must know what the prompt held (the evaluation) call the two themselves.
pub fn prepare(snapshot: &Snapshot, offset: ByteOffset, settings: &Settings, cross: Option<&CrossFile>) -> Decision {
    let mut decision = context::gather(snapshot, offset, settings);
    if let (Decision::Complete(ctx), Some(cross)) = (&mut decision, cross) {
        add_cross_file(ctx, snapshot, cross, settings);
    }
    decision
}

/// Completes at `offset` in `snapshot`. With `memory`, typing through the last suggestion (or
/// the one being generated) is answered from it, and new suggestions are remembered; with
/// `cross`, code from other files is shown to the model; with `gate`, each suggestion is judged
/// before it is shown ([`judge`]).
pub async fn complete(
    engine: &Engine,
    snapshot: &Snapshot,
    offset: ByteOffset,
    settings: &Settings,
    memory: Option<&Arc<TypeThrough>>,
    cross: Option<&CrossFile>,
    gate: Option<&Gate>,
) -> Result<Outcome, EngineError> {
    match prepare(snapshot, offset, settings, cross) {
        Decision::Skip(reason) => Ok(Outcome::Skipped(reason)),
        Decision::Complete(ctx) => complete_prepared(engine, &ctx, settings, memory, gate).await,
    }
}

/// The second half of [`complete`]: type-through or the model, then shaping, for a context
/// from [`prepare`].
///
/// With `memory`, the generation runs in a task of its own, so that it outlives a request the
/// editor cancels because the user typed on: the next keystroke on the same line joins it
/// (see [`TypeThrough::joinable`]); only a request that cannot join starts another generation,
/// which cancels it.
pub async fn complete_prepared(
    engine: &Engine,
    ctx: &CompletionContext,
    settings: &Settings,
    memory: Option<&Arc<TypeThrough>>,
    gate: Option<&Gate>,
) -> Result<Outcome, EngineError> {
    // Built only when the model runs (not for keystrokes answered from memory).
    let request = || match gate {
        Some(gate) => gate.request_for(ctx, settings),
        None => request_for(ctx, settings),
    };
    let Some(memory) = memory else {
        let outcome = finish(ctx, engine.generate(request()).await?);
        return match gate {
            Some(gate) => judge(ctx, settings, gate, outcome).await,
            None => Ok(outcome),
        };
    };
    if let Some(text) = memory.answer(ctx) {
        return Ok(Outcome::TypedThrough { text, line_head: ctx.text.line_head.clone() });
    }
    if let Some((own, pending)) = memory.joinable(ctx) {
        let outcome = outcome_of(pending).await;
        if own {
            return outcome;
        }
        if let Some(text) = memory.answer(ctx) {
            return Ok(Outcome::TypedThrough { text, line_head: ctx.text.line_head.clone() });
        }
    }
    let (done, pending) = tokio::sync::watch::channel(None);
    let written = Arc::new(Written::default());
    memory.started(ctx, pending.clone(), Arc::clone(&written));
    if let Some(router) = gate.and_then(|g| g.router.as_ref()) {
        router.cancel_running(); // a router answer for an earlier cursor is no longer wanted
    }
    let request = GenerateRequest { written: Some(written), ..request() };
    let (engine, ctx_owned, memory) = (engine.clone(), ctx.clone(), Arc::clone(memory));
    let (settings, gate) = (settings.clone(), gate.cloned());
    tokio::spawn(async move {
        let mut outcome = engine.generate(request).await.map(|generated| finish(&ctx_owned, generated));
        if let (Ok(shaped), Some(gate)) = (&outcome, &gate) {
            outcome = judge(&ctx_owned, &settings, gate, shaped.clone()).await;
        }
        if let Ok(Outcome::Completed { text, .. }) = &outcome {
            memory.remember(&ctx_owned, text);
        }
        let _ = done.send(Some(outcome));
    });
    outcome_of(pending).await
}

/// Waits for a running generation's outcome.
async fn outcome_of(mut pending: type_through::Pending) -> Result<Outcome, EngineError> {
    match pending.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or(Err(EngineError::Gone)),
        Err(_) => Err(EngineError::Gone),
    }
}

/// Blocking form of [`complete`], for the command line.
pub fn complete_blocking(engine: &Engine, snapshot: &Snapshot, offset: ByteOffset, settings: &Settings) -> Result<Outcome, EngineError> {
    let ctx = match prepare(snapshot, offset, settings, None) {
        Decision::Skip(reason) => return Ok(Outcome::Skipped(reason)),
        Decision::Complete(ctx) => ctx,
    };
    let generated = engine.generate_blocking(request_for(&ctx, settings))?;
    Ok(finish(&ctx, generated))
}

#[cfg(test)]
mod tests {
    use super::add_cross_file;
    use crate::config::Settings;
    use crate::context::{gather, Decision};
    use crate::crossfile::{CrossFile, CrossFileLimits};
    use crate::session::{ByteOffset, Document, DocumentLimits};
    use crate::syntax::Language;

    #[test]
    fn other_files_are_shown_as_comments_of_the_current_language() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("billing")).unwrap();
        std::fs::write(dir.path().join("billing/tax.py"), "def compute_tax(amount, rate):\n    return amount * rate\n").unwrap();
        let settings = Settings::default();
        let cross = CrossFile::new(CrossFileLimits::from_settings(&settings));
        cross.index_workspace(dir.path(), |_, _| {}).unwrap().join();
        let path = dir.path().join("billing/report.py").to_string_lossy().into_owned();
        let text = "from billing.tax import compute_tax\n\ndef report(total):\n    return compute_tax(";
        let doc = Document::open(&path, Language::Python, text, 1, &DocumentLimits::default()).unwrap();
        let snapshot = doc.snapshot();
        let Decision::Complete(mut ctx) = gather(&snapshot, ByteOffset(text.len()), &settings) else { panic!("skipped") };
        add_cross_file(&mut ctx, &snapshot, &cross, &settings);
        assert_eq!(ctx.text.chunks.first().map(|c| c.path.as_str()), Some("billing/tax.py"), "{:?}", ctx.text.chunks);
        assert_eq!(ctx.text.layout, crate::prompt::ChunkLayout::Comments { marker: "#" });
        // No other files: the plain FIM prompt.
        let Decision::Complete(mut plain) = gather(&snapshot, ByteOffset(text.len()), &settings) else { panic!("skipped") };
        add_cross_file(&mut plain, &snapshot, &cross, &Settings { cross_file_context: false, ..settings });
        assert!(plain.text.chunks.is_empty() && plain.text.layout == crate::prompt::ChunkLayout::default());
    }
}
