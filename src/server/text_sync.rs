//! Document notifications. Each mutation is applied before the handler's first `.await`, so
//! edits are applied strictly in the order they arrive.

use tower_lsp_server::ls_types::*;

use super::convert::{line_col_range, uri_key};
use super::Server;
use crate::session::{offset_of, ByteOffset, DocumentLimits, TextChange};

impl Server {
    pub(super) fn document_limits(&self) -> DocumentLimits {
        let max = self.config().settings.max_document_bytes;
        DocumentLimits { max_bytes: max, ..DocumentLimits::default() }
    }

    pub(super) async fn on_did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let key = uri_key(&doc.uri);
        let result = self.documents.open(&key, &doc.language_id, &doc.text, doc.version);
        self.quality.edited(&key);
        if result.is_ok() {
            if let Some(snapshot) = self.documents.snapshot(&key) {
                self.cross_file_opened(snapshot);
            }
        }
        if let Err(e) = result {
            let name = crate::session::path_from_uri(doc.uri.as_str());
            tracing::warn!("not tracking {name}: {e}");
            self.client.show_message(MessageType::WARNING, format!("inkling: not completing in {name}: {e}")).await;
        }
    }

    pub(super) async fn on_did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = uri_key(&params.text_document.uri);
        let changes: Vec<TextChange> =
            params.content_changes.into_iter().map(|c| TextChange { range: c.range.map(line_col_range), text: c.text }).collect();
        let config = self.config();
        let encoding = config.encoding;
        let last_edit = changes.last().and_then(|c| c.range.map(|r| (r.start, c.text.len())));
        let result = self.documents.change(&uri, params.text_document.version, &changes, encoding);
        self.quality.edited(&uri);
        self.activity.touch();
        if let (Ok(()), Some((start, inserted))) = (&result, last_edit) {
            if let Some(snapshot) = self.documents.snapshot(&uri) {
                self.cross_file_edited(&snapshot, start.line as usize);
                // The cursor is most likely where the inserted text ends.
                if let Ok(at) = offset_of(&snapshot.text, start, encoding) {
                    let cursor = ByteOffset(at.0 + inserted);
                    self.activity.schedule(&self.engine, snapshot, cursor, &config.settings, self.cross());
                }
            }
        }
        if let Err(e) = result {
            // The client's text and ours now differ: stop completing in this document rather than
            // complete against the wrong text. Reopening the file starts afresh.
            self.documents.close(&uri);
            tracing::warn!("dropped {uri}: {e}");
            self.client
                .show_message(MessageType::WARNING, format!("inkling: {e} Completions in this file are paused until it is reopened."))
                .await;
        }
    }

    pub(super) fn on_did_close(&self, params: DidCloseTextDocumentParams) {
        self.documents.close(&uri_key(&params.text_document.uri));
    }
}
