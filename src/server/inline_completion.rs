//! `textDocument/inlineCompletion` (LSP 3.18): ghost text.

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::Server;

impl Server {
    pub(super) async fn inline_completion(&self, params: InlineCompletionParams) -> Result<Option<InlineCompletionResponse>> {
        let tdp = params.text_document_position;
        // Asked for by the user (not while typing): worth waiting for a model still loading.
        let invoked = params.context.trigger_kind == InlineCompletionTriggerKind::INVOKED;
        let Some(s) = self.suggest(&tdp.text_document, tdp.position, invoked).await? else {
            return Ok(Some(InlineCompletionResponse::List(InlineCompletionList { items: Vec::new() })));
        };
        let item = InlineCompletionItem {
            insert_text: s.text,
            filter_text: None,
            range: Some(Range { start: s.cursor, end: s.cursor }),
            command: s.command,
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        };
        Ok(Some(InlineCompletionResponse::List(InlineCompletionList { items: vec![item] })))
    }
}
