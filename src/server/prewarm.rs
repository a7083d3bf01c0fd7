//! Pre-warm: when the user pauses, read the prompt the next request will most likely need.
//!
//! Two moments say where that is: an answer was just given (the next request is at the same
//! cursor or a keystroke after it, so its prompt shares all but its last tokens: reading the
//! full prompt now lets the next request use the full context even where a latency target
//! shortened this one), and the document changed (the cursor is most likely at the end of the
//! text just inserted — a new line, an accepted suggestion — and a client that waits before it
//! asks, or does not ask, still finds that prompt read). Each schedules a pre-warm after
//! [`PAUSE`]; any later change or request makes it stale, so it runs only in a real pause. The
//! engine runs it only when idle, and any job interrupts it within one block of the model
//! ([`crate::engine::Engine::prewarm`]); the next request reuses what it read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::context::Decision;
use crate::crossfile::CrossFile;
use crate::engine::Engine;
use crate::pipeline;
use crate::session::{ByteOffset, Snapshot};

/// How long nothing must happen (no change, no request) before a pre-warm starts: longer than
/// the gap between two keys of steady typing, so that it fills pauses, not keystrokes.
pub(super) const PAUSE: Duration = Duration::from_millis(350);

/// Counts what the user does, so that a scheduled pre-warm can tell it is stale.
#[derive(Debug, Default)]
pub(super) struct Activity(Arc<AtomicU64>);

impl Activity {
    /// Something happened (a change, a request): pre-warms scheduled before are stale.
    pub(super) fn touch(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Pre-warms the prompt at `offset` in `snapshot` after [`PAUSE`], if nothing happens in
    /// between (this call counts as activity, so an earlier schedule gives way to it).
    pub(super) fn schedule(&self, engine: &Engine, snapshot: Snapshot, offset: ByteOffset, settings: &Settings, cross: Option<&CrossFile>) {
        if !settings.prewarm || !settings.enabled {
            return;
        }
        let epoch = self.touch();
        let (activity, engine, settings, cross) = (Arc::clone(&self.0), engine.clone(), settings.clone(), cross.cloned());
        tokio::spawn(async move {
            tokio::time::sleep(PAUSE).await;
            if activity.load(Ordering::SeqCst) != epoch || engine.busy() {
                return;
            }
            let Decision::Complete(ctx) = pipeline::prepare(&snapshot, offset, &settings, cross.as_ref()) else { return };
            match engine.prewarm(pipeline::prewarm_request(&ctx, &settings)).await {
                Some(Ok(read)) => tracing::debug!(
                    prompt = read.prompt_tokens,
                    reused = read.reused_tokens,
                    moved = read.moved_tokens,
                    prefill_ms = read.prefill_ms,
                    "pre-warmed"
                ),
                Some(Err(e)) => tracing::debug!("pre-warm stopped: {e}"),
                None => {}
            }
        });
    }
}
