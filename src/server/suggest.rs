//! The completion path both request kinds share: resolve the document and cursor, run the
//! pipeline, drop answers for stale document versions.

use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::convert::{line_col, position, uri_key};
use super::Server;
use crate::engine::{EngineError, EngineState};
use crate::pipeline::{self, Outcome};
use crate::session::{line_col_of, offset_of, Snapshot};

/// A suggestion ready to be turned into an LSP item.
pub(super) struct Suggestion {
    pub text: String,
    /// The cursor, in the negotiated encoding.
    pub cursor: Position,
    pub snapshot: Snapshot,
    pub offset: usize,
    pub snippets: bool,
}

impl Server {
    pub(super) async fn suggest(&self, doc: &TextDocumentIdentifier, pos: Position) -> Result<Option<Suggestion>> {
        let uri = uri_key(&doc.uri);
        let Some(snapshot) = self.documents.snapshot(&uri) else {
            return Err(Error::invalid_params(format!("inkling: the document {uri} is not open (send didOpen first)")));
        };
        let config = self.config();
        let offset = offset_of(&snapshot.text, line_col(pos), config.encoding).map_err(|e| Error::invalid_params(format!("inkling: {e}")))?;
        if !config.settings.enabled {
            return Ok(None);
        }
        match self.engine.state() {
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
        let outcome = match pipeline::complete(&self.engine, &snapshot, offset, &config.settings, self.type_through.as_ref(), Some(&self.cross())).await {
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
            tracing::debug!(
                line = pos.line,
                prompt = generated.prompt_tokens,
                reused = generated.reused_tokens,
                new = generated.new_tokens,
                prefill_ms = generated.prefill_ms,
                decode_ms = generated.decode_ms,
                stop = ?generated.stop,
                "completion"
            );
        }
        let text = match outcome {
            Outcome::Completed { text, .. } | Outcome::TypedThrough { text } => text,
            Outcome::Skipped(_) | Outcome::Empty(_) => return Ok(None),
        };
        // The user typed while we worked: this answer belongs to an older text.
        let current = self.documents.snapshot(&uri).map(|s| s.version);
        if current != Some(snapshot.version) {
            return Ok(None);
        }
        let cursor = position(line_col_of(&snapshot.text, offset, config.encoding));
        Ok(Some(Suggestion { text, cursor, offset: offset.0, snapshot, snippets: config.snippets }))
    }
}
