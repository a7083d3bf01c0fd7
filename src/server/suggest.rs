//! The completion path both request kinds share: resolve the document and cursor, wait a
//! little for a model still loading when the user asked, run the pipeline, drop answers for
//! stale document versions.

use std::time::Duration;

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::convert::{line_col, position, uri_key};
use super::Server;
use crate::engine::{EngineError, EngineState};
use crate::pipeline::{self, Outcome};
use crate::session::{line_col_of, offset_of, ByteOffset, PositionEncoding, Snapshot};

/// A suggestion ready to be turned into an LSP item.
pub(super) struct Suggestion {
    pub text: String,
    /// The cursor line up to the cursor, as the pipeline read it.
    pub line_head: String,
    /// The cursor, in the negotiated encoding.
    pub cursor: Position,
    pub offset: ByteOffset,
    /// The document the suggestion was made for (for position conversions).
    pub snapshot: Snapshot,
    pub encoding: PositionEncoding,
    pub snippets: bool,
    /// What the client runs when the user accepts it (while the suggestion log is on).
    pub command: Option<Command>,
}

/// Longest wait for a model still loading, for a request the user asked for (an invoked inline
/// completion, the completion popup). Requests made while typing never wait.
pub(super) const LOAD_WAIT: Duration = Duration::from_secs(8);

impl Server {
    /// Waits until the engine leaves `Loading` (or `Empty`, before the first load starts), at
    /// most `limit`; returns the state then.
    async fn settled_state(&self, limit: Duration) -> EngineState {
        let mut states = self.engine.subscribe();
        let settled = async move {
            // `wait_for` fails only when the engine is gone; the state read below says so.
            let _ = states.wait_for(|s| matches!(s, EngineState::Ready { .. } | EngineState::Failed { .. })).await;
        };
        let _ = tokio::time::timeout(limit, settled).await;
        self.engine.state()
    }

    /// The suggestion at `pos`; `invoked`: the user asked for it, so a model still loading is
    /// waited for (at most [`LOAD_WAIT`]).
    pub(super) async fn suggest(&self, doc: &TextDocumentIdentifier, pos: Position, invoked: bool) -> Result<Option<Suggestion>> {
        let uri = uri_key(&doc.uri);
        let Some(snapshot) = self.documents.snapshot(&uri) else {
            return Err(Error::invalid_params(format!("inkling: the document {uri} is not open (send didOpen first)")));
        };
        let config = self.config();
        let offset =
            offset_of(&snapshot.text, line_col(pos), config.encoding).map_err(|e| Error::invalid_params(format!("inkling: {e}")))?;
        if !config.settings.enabled {
            return Ok(None);
        }
        let state = if invoked { self.settled_state(LOAD_WAIT).await } else { self.engine.state() };
        match state {
            EngineState::Ready { .. } => {}
            EngineState::Failed { message, .. } => {
                // Said once (the load itself also reports), never per keystroke.
                if self.first_no_model_notice() {
                    self.client.show_message(MessageType::ERROR, super::model::no_model_message(format!("no model: {message}"))).await;
                }
                return Ok(None);
            }
            _ => return Ok(None),
        }
        self.activity.touch();
        let gate = self.gate(&uri);
        let memory = self.type_through.as_ref();
        let outcome = match pipeline::complete(&self.engine, &snapshot, offset, &config.settings, memory, self.cross(), Some(&gate)).await {
            Ok(o) => o,
            Err(EngineError::Cancelled) => return Err(Error::request_cancelled()),
            Err(EngineError::NoModel(why)) => {
                if self.first_no_model_notice() {
                    self.client.show_message(MessageType::ERROR, format!("inkling: {why}")).await;
                }
                return Ok(None);
            }
            Err(e) => {
                tracing::error!("completion failed: {e}");
                self.client.log_message(MessageType::ERROR, format!("inkling: {e}")).await;
                return Ok(None);
            }
        };
        if let Outcome::Completed { generated, .. } | Outcome::Empty(generated) = &outcome {
            // While the user reads the answer: the full prompt here, for the next keystroke.
            self.activity.schedule(&self.engine, snapshot.clone(), offset, &config.settings, self.cross());
            tracing::debug!(
                line = pos.line,
                prompt = generated.prompt_tokens,
                reused = generated.reused_tokens,
                moved = generated.moved_tokens,
                new = generated.new_tokens,
                prefill_ms = generated.prefill_ms,
                decode_ms = generated.decode_ms,
                stop = ?generated.stop,
                "completion"
            );
        }
        let (text, line_head, judged, typed_through) = match outcome {
            Outcome::Completed { text, line_head, judged, .. } => (text, line_head, judged, false),
            Outcome::TypedThrough { text, line_head } => (text, line_head, None, true),
            Outcome::Filtered { text, judged, .. } => {
                tracing::debug!(confidence = ?judged.confidence, "suggestion filtered");
                self.filtered(&uri, pos.line, &text, &judged);
                return Ok(None);
            }
            Outcome::Skipped(_) | Outcome::Empty(_) => return Ok(None),
        };
        // The user typed while we worked: this answer belongs to an older text.
        let current = self.documents.snapshot(&uri).map(|s| s.version);
        if current != Some(snapshot.version) {
            return Ok(None);
        }
        let cursor = position(line_col_of(&snapshot.text, offset, config.encoding));
        let command = self.shown(&uri, pos.line, &text, judged.as_deref(), typed_through);
        Ok(Some(Suggestion { text, line_head, cursor, offset, snapshot, encoding: config.encoding, snippets: config.snippets, command }))
    }
}
