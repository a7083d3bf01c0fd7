//! `textDocument/completion`: one popup item, for clients without ghost text (Helix, Neovim
//! 0.11, Emacs). The item replaces the identifier being typed so that client-side filtering
//! keeps it, and is sent as a snippet when the client supports snippets (plain-text items are
//! cut at the first space by some clients).

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::convert::position;
use super::Server;
use crate::session::{line_col_of, ByteOffset};

const LABEL_MAX_CHARS: usize = 80;

/// Escapes text for a snippet body: `\`, `$` and `}` are literal.
fn snippet_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '$' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The identifier characters right before the cursor on its line.
fn word_before(line_head: &str) -> &str {
    let start =
        line_head.char_indices().rev().take_while(|(_, c)| c.is_alphanumeric() || *c == '_').last().map_or(line_head.len(), |(i, _)| i);
    &line_head[start..]
}

fn label(text: &str) -> String {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let mut label: String = first.chars().take(LABEL_MAX_CHARS).collect();
    if first.chars().count() > LABEL_MAX_CHARS || text.trim().lines().count() > 1 {
        label.push('…');
    }
    label
}

impl Server {
    pub(super) async fn on_completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let tdp = params.text_document_position;
        let Some(s) = self.suggest(&tdp.text_document, tdp.position, true).await? else {
            return Ok(Some(CompletionResponse::List(CompletionList { is_incomplete: true, items: Vec::new() })));
        };
        let word = word_before(&s.line_head);
        let start = position(line_col_of(&s.snapshot.text, ByteOffset(s.offset.0.saturating_sub(word.len())), s.encoding));
        let full = format!("{word}{}", s.text);
        let (new_text, format) =
            if s.snippets { (snippet_escape(&full), InsertTextFormat::SNIPPET) } else { (full.clone(), InsertTextFormat::PLAIN_TEXT) };
        let language = s.snapshot.language.name();
        let item = CompletionItem {
            label: label(&full),
            kind: Some(CompletionItemKind::TEXT),
            detail: Some("inkling".into()),
            documentation: Some(Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: format!("```{language}\n{full}\n```"),
            })),
            preselect: Some(true),
            sort_text: Some("0".into()),
            filter_text: Some(full.lines().next().unwrap_or_default().to_string()),
            insert_text_format: Some(format),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit { range: Range { start, end: s.cursor }, new_text })),
            command: s.command,
            ..Default::default()
        };
        Ok(Some(CompletionResponse::List(CompletionList { is_incomplete: true, items: vec![item] })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_escape_keeps_text_literal() {
        assert_eq!(snippet_escape(r"a $b } \c"), r"a \$b \} \\c");
    }

    #[test]
    fn word_before_cursor() {
        assert_eq!(word_before("    ret"), "ret");
        assert_eq!(word_before("    x = foo_bar"), "foo_bar");
        assert_eq!(word_before("    x = "), "");
        assert_eq!(word_before("naïve_ü"), "naïve_ü");
    }

    #[test]
    fn label_is_first_line_with_ellipsis_for_more() {
        assert_eq!(label("return a + b"), "return a + b");
        assert_eq!(label("\n    if x:\n        y"), "if x:…");
    }
}
