//! The engine: ONE thread owns the model and its KV cache; everything else talks to it through
//! [`Engine`], a cheap handle.
//!
//! * Jobs go over a channel; the newest job wins: submitting a job cancels the one before it, and a
//!   cancelled job stops between two tokens.
//! * A pre-warm ([`Engine::prewarm`]) is the lowest priority: it starts only when no job is
//!   queued or running, and any job after it interrupts it within one block of the model.
//! * The async runtime never blocks on the model: [`Engine::generate`] awaits a oneshot reply.
//!   Dropping that future (for example on `$/cancelRequest`) cancels the job.
//! * A panic inside the model is caught: the job gets [`EngineError::Crashed`] and the model is
//!   loaded again from the same path.

mod backend;
mod job;
pub mod kernels;
pub mod model;
mod qwen2_backend;
mod reuse;
mod slots;
mod speculate;
pub mod testing;
mod vocab;
mod worker;

pub use backend::{default_device, load_backend, loader_with, Backend, EngineOptions, Loader};
pub use job::{CancelToken, GenerateRequest, Generated, Signals, StopReason, Written};
pub use qwen2_backend::{Qwen2Backend, DEFAULT_MAX_CONTEXT};

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, watch};

/// What the engine is doing with its model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineState {
    /// No model was asked for yet.
    Empty,
    /// Loading the model at this path.
    Loading(PathBuf),
    /// Ready; the string describes the model.
    Ready { path: PathBuf, description: String },
    /// The last load failed; the message says why and what to do.
    Failed { path: PathBuf, message: String },
}

/// Why a generation produced no result.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("no model is loaded: {0}")]
    NoModel(String),
    #[error("the request was cancelled by a newer one")]
    Cancelled,
    #[error("the model failed: {0}")]
    Failed(String),
    #[error("the model crashed ({0}); it is being reloaded")]
    Crashed(String),
    #[error("the engine thread is gone")]
    Gone,
}

pub(crate) enum Msg {
    Load { path: PathBuf, reply: oneshot::Sender<Result<String, String>> },
    Generate { request: Box<GenerateRequest>, cancel: CancelToken, reply: oneshot::Sender<Result<Generated, EngineError>> },
}

/// A handle to the engine thread. Clone it freely.
#[derive(Clone)]
pub struct Engine {
    tx: mpsc::Sender<Msg>,
    /// The newest job's token; also the lock under which jobs are counted into `queued`.
    latest: Arc<Mutex<Option<CancelToken>>>,
    /// Jobs sent and not yet finished by the engine thread.
    queued: Arc<AtomicUsize>,
    state: watch::Receiver<EngineState>,
}

/// Cancels the job when the waiting future is dropped before its answer arrived.
struct CancelOnDrop(Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(token) = self.0.take() {
            token.cancel();
        }
    }
}

impl Engine {
    /// Starts the engine thread. `loader` turns a model path into a backend (the real Qwen2
    /// backend, or a fake one in tests).
    pub fn spawn(loader: Loader) -> Engine {
        let (tx, rx) = mpsc::channel();
        let (state_tx, state) = watch::channel(EngineState::Empty);
        let queued = Arc::new(AtomicUsize::new(0));
        let done = Arc::clone(&queued);
        let spawned = std::thread::Builder::new().name("inkling-engine".into()).spawn(move || worker::run(rx, loader, state_tx, &done));
        if let Err(e) = spawned {
            tracing::error!("could not start the engine thread: {e}");
        }
        Engine { tx, latest: Arc::new(Mutex::new(None)), queued, state }
    }

    /// The engine's current state.
    pub fn state(&self) -> EngineState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn subscribe(&self) -> watch::Receiver<EngineState> {
        self.state.clone()
    }

    /// Loads (or replaces) the model. Resolves with its description, or why it failed.
    pub async fn load(&self, path: PathBuf) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Load { path, reply }).map_err(|_| EngineError::Gone.to_string())?;
        rx.await.map_err(|_| EngineError::Gone.to_string())?
    }

    /// Cancels the running job (if any) and queues this one.
    fn submit(&self, request: GenerateRequest) -> (CancelToken, oneshot::Receiver<Result<Generated, EngineError>>) {
        let mut latest = crate::sync::lock(&self.latest);
        self.send(&mut latest, request)
    }

    /// Queues `request` as the newest job, cancelling the one before it; `latest` is the
    /// locked [`Engine::latest`].
    fn send(
        &self,
        latest: &mut Option<CancelToken>,
        request: GenerateRequest,
    ) -> (CancelToken, oneshot::Receiver<Result<Generated, EngineError>>) {
        let cancel = CancelToken::new();
        if let Some(old) = latest.replace(cancel.clone()) {
            old.cancel();
        }
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Generate { request: Box::new(request), cancel: cancel.clone(), reply };
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.tx.send(msg).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            cancel.cancel();
        }
        (cancel, rx)
    }

    /// Reads `request`'s prompt into the cache in the background (its `background` flag is
    /// set here) when the engine is idle: no job queued or running. Returns `None` when it was
    /// not started, else what it read once it ends; any later job interrupts it within one
    /// block of the model and keeps what it read.
    pub async fn prewarm(&self, mut request: GenerateRequest) -> Option<Result<Generated, EngineError>> {
        request.background = true;
        let rx = {
            let mut latest = crate::sync::lock(&self.latest);
            if self.queued.load(Ordering::SeqCst) > 0 {
                return None;
            }
            self.send(&mut latest, request).1
        };
        Some(rx.await.unwrap_or(Err(EngineError::Gone)))
    }

    /// Whether a job is queued or running (a pre-warm counts).
    pub fn busy(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
    }

    /// Cancels the running job, if any (it stops between two tokens or prefill steps).
    pub fn cancel_running(&self) {
        if let Some(token) = crate::sync::lock(&self.latest).as_ref() {
            token.cancel();
        }
    }

    /// Generates a completion. Newer calls cancel older ones; dropping the future cancels this one.
    pub async fn generate(&self, request: GenerateRequest) -> Result<Generated, EngineError> {
        let (cancel, rx) = self.submit(request);
        let mut guard = CancelOnDrop(Some(cancel));
        let result = rx.await.map_err(|_| EngineError::Gone)?;
        guard.0 = None;
        result
    }

    /// Blocking form of [`Engine::generate`] for command-line use outside an async runtime.
    pub fn generate_blocking(&self, request: GenerateRequest) -> Result<Generated, EngineError> {
        let (_cancel, rx) = self.submit(request);
        rx.blocking_recv().map_err(|_| EngineError::Gone)?
    }

    /// Blocking form of [`Engine::load`].
    pub fn load_blocking(&self, path: PathBuf) -> Result<String, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Msg::Load { path, reply }).map_err(|_| EngineError::Gone.to_string())?;
        rx.blocking_recv().map_err(|_| EngineError::Gone.to_string())?
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::prompt::{Budget, PromptText};

    /// Works until cancelled (or for a second), and says whether it ran a pre-warm.
    struct UntilCancelled;

    impl Backend for UntilCancelled {
        fn describe(&self) -> String {
            "until cancelled".into()
        }
        fn reset(&mut self) {}
        fn generate(&mut self, request: &GenerateRequest, cancel: &CancelToken) -> anyhow::Result<Generated> {
            let started = Instant::now();
            while !cancel.is_cancelled() && started.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(Duration::from_millis(2));
            }
            let text = if request.background { "background" } else { "request" };
            Ok(Generated {
                text: text.into(),
                stop: StopReason::MaxTokens,
                prompt_tokens: 0,
                reused_tokens: 0,
                moved_tokens: 0,
                new_tokens: 0,
                prefill_ms: 0.0,
                decode_ms: 0.0,
                draft_tokens: 0,
                draft_accepted: 0,
                signals: Signals::default(),
            })
        }
    }

    fn request() -> GenerateRequest {
        GenerateRequest {
            slot: "a.py".into(),
            kv_cache_bytes: 0,
            text: PromptText::default(),
            budget: Budget { max_prefix_tokens: 8, max_suffix_tokens: 8, max_context_tokens: 0 },
            max_new_tokens: 4,
            single_line: false,
            stop_when: None,
            time_budget: Duration::from_secs(1),
            latency_target: Duration::ZERO,
            background: false,
            written: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pre_warm_waits_for_idle_and_gives_way_to_any_request() {
        let engine = Engine::spawn(Box::new(|_: &std::path::Path| Ok(Box::new(UntilCancelled) as Box<dyn Backend>)));
        engine.load("m".into()).await.unwrap();
        // While a request runs, a pre-warm does not start (and cancels nothing).
        let running = tokio::spawn({
            let engine = engine.clone();
            async move { engine.generate(request()).await }
        });
        while !engine.busy() {
            tokio::task::yield_now().await;
        }
        assert!(engine.prewarm(request()).await.is_none());
        engine.cancel_running();
        assert!(matches!(running.await.unwrap(), Err(EngineError::Cancelled)));
        while engine.busy() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Idle: it starts, marked as a pre-warm, and the next request interrupts it at once.
        let warming = tokio::spawn({
            let engine = engine.clone();
            async move { engine.prewarm(request()).await }
        });
        while !engine.busy() {
            tokio::task::yield_now().await;
        }
        let asked = Instant::now();
        let real = tokio::spawn({
            let engine = engine.clone();
            async move { engine.generate(request()).await }
        });
        assert!(matches!(warming.await.unwrap(), Some(Err(EngineError::Cancelled))));
        assert!(asked.elapsed() < Duration::from_millis(500), "the pre-warm did not give way at once");
        assert_eq!(real.await.unwrap().map(|g| g.text), Ok("request".to_string()));
    }
}
