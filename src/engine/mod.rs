//! The engine: ONE thread owns the model and its KV cache; everything else talks to it through
//! [`Engine`], a cheap handle.
//!
//! * Jobs go over a channel; the newest job wins: submitting a job cancels the one before it, and a
//!   cancelled job stops between two tokens.
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
pub use job::{CancelToken, GenerateRequest, Generated, Signals, StopReason};
pub use qwen2_backend::{Qwen2Backend, DEFAULT_MAX_CONTEXT};

use std::path::PathBuf;
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
    latest: Arc<Mutex<Option<CancelToken>>>,
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
        let spawned = std::thread::Builder::new().name("inkling-engine".into()).spawn(move || worker::run(rx, loader, state_tx));
        if let Err(e) = spawned {
            tracing::error!("could not start the engine thread: {e}");
        }
        Engine { tx, latest: Arc::new(Mutex::new(None)), state }
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
        let cancel = CancelToken::new();
        if let Some(old) = crate::sync::lock(&self.latest).replace(cancel.clone()) {
            old.cancel();
        }
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Generate { request: Box::new(request), cancel: cancel.clone(), reply };
        if self.tx.send(msg).is_err() {
            cancel.cancel();
        }
        (cancel, rx)
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
