//! The engine thread's loop: load models, run jobs, survive panics.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tokio::sync::{oneshot, watch};

use super::{Backend, CancelToken, EngineError, EngineState, GenerateRequest, Generated, Loader, Msg};

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

struct Worker {
    loader: Loader,
    backend: Option<Box<dyn Backend>>,
    path: Option<PathBuf>,
    state: watch::Sender<EngineState>,
}

impl Worker {
    fn load(&mut self, path: PathBuf) -> Result<String, String> {
        self.backend = None; // free the old model first: two may not fit in memory
        self.path = Some(path.clone());
        self.state.send_replace(EngineState::Loading(path.clone()));
        let started = std::time::Instant::now();
        let loaded = catch_unwind(AssertUnwindSafe(|| (self.loader)(&path)));
        let result = match loaded {
            Ok(Ok(backend)) => {
                let description = backend.describe();
                tracing::info!("loaded {description} in {:.1} s", started.elapsed().as_secs_f64());
                self.backend = Some(backend);
                self.state.send_replace(EngineState::Ready { path, description: description.clone() });
                Ok(description)
            }
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(panic) => Err(format!("loading crashed: {}", panic_message(panic.as_ref()))),
        };
        if let Err(message) = &result {
            tracing::error!("could not load the model: {message}");
            self.state.send_replace(EngineState::Failed { path: self.path.clone().unwrap_or_default(), message: message.clone() });
        }
        result
    }

    fn no_model(&self) -> EngineError {
        match &*self.state.borrow() {
            EngineState::Failed { message, .. } => EngineError::NoModel(message.clone()),
            EngineState::Loading(p) => EngineError::NoModel(format!("still loading {}", p.display())),
            _ => EngineError::NoModel("no model is configured".into()),
        }
    }
}

/// Runs messages until every [`super::Engine`] handle is gone; `queued` counts the jobs sent and
/// not yet finished (each is counted down once its answer is sent).
pub(super) fn run(rx: mpsc::Receiver<Msg>, loader: Loader, state: watch::Sender<EngineState>, queued: &AtomicUsize) {
    let mut worker = Worker { loader, backend: None, path: None, state };
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Load { path, reply } => {
                let _ = reply.send(worker.load(path));
            }
            Msg::Generate { request, cancel, reply } => {
                worker.generate(&request, &cancel, reply);
                queued.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Worker {
    /// Runs one job and answers it; a model that panicked is loaded again.
    fn generate(&mut self, request: &GenerateRequest, cancel: &CancelToken, reply: oneshot::Sender<Result<Generated, EngineError>>) {
        if cancel.is_cancelled() || reply.is_closed() {
            let _ = reply.send(Err(EngineError::Cancelled));
            return;
        }
        let Some(backend) = self.backend.as_mut() else {
            let _ = reply.send(Err(self.no_model()));
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| backend.generate(request, cancel)));
        if let Ok(Ok(generated)) = &outcome {
            tracing::debug!(
                background = request.background,
                cancelled = cancel.is_cancelled(),
                prompt = generated.prompt_tokens,
                reused = generated.reused_tokens,
                moved = generated.moved_tokens,
                new = generated.new_tokens,
                prefill_ms = format!("{:.0}", generated.prefill_ms),
                decode_ms = format!("{:.0}", generated.decode_ms),
                stop = ?generated.stop,
                text = ?generated.text,
                "job done"
            );
        }
        let answer = match outcome {
            Ok(Ok(_)) if cancel.is_cancelled() => Err(EngineError::Cancelled),
            Ok(Ok(generated)) => Ok(generated),
            Ok(Err(e)) => {
                // The cache may be half-written: start the next job from scratch.
                backend.reset();
                Err(EngineError::Failed(format!("{e:#}")))
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!("the model panicked: {message}; reloading it");
                self.backend = None;
                Err(EngineError::Crashed(message))
            }
        };
        let crashed = matches!(answer, Err(EngineError::Crashed(_)));
        let _ = reply.send(answer);
        if crashed {
            if let Some(path) = self.path.clone() {
                let _ = self.load(path);
            }
        }
    }
}
