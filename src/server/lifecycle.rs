//! `initialize`, `initialized` and `workspace/didChangeConfiguration`: capabilities, position
//! encoding, and settings (validated once; a clear message when they are wrong).

use tower_lsp_server::ls_types::*;

use super::Server;
use crate::config::Options;
use crate::session::PositionEncoding;

/// Characters after which popup-completion clients should ask for a suggestion.
const TRIGGER_CHARACTERS: &[&str] = &[".", "(", "[", "{", ",", ":", "=", " "];

fn negotiate_encoding(params: &InitializeParams) -> PositionEncoding {
    let offered = params.capabilities.general.as_ref().and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(list) if list.contains(&PositionEncodingKind::UTF8) => PositionEncoding::Utf8,
        _ => PositionEncoding::Utf16,
    }
}

fn snippet_support(params: &InitializeParams) -> bool {
    params
        .capabilities
        .text_document
        .as_ref()
        .and_then(|t| t.completion.as_ref())
        .and_then(|c| c.completion_item.as_ref())
        .and_then(|i| i.snippet_support)
        .unwrap_or(false)
}

fn progress_support(params: &InitializeParams) -> bool {
    params.capabilities.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false)
}

impl Server {
    pub(super) fn on_initialize(&self, params: InitializeParams) -> InitializeResult {
        let encoding = negotiate_encoding(&params);
        let snippets = snippet_support(&params);
        let progress = progress_support(&params);
        let options = params.initialization_options.as_ref().map(Options::from_json_lenient);
        let root = Self::workspace_root(&params);
        self.update_config(|c| {
            c.root = root;
            c.encoding = encoding;
            c.snippets = snippets;
            c.progress = progress;
            match options {
                Some(Ok((opts, unknown))) => {
                    if !unknown.is_empty() {
                        tracing::warn!("ignoring unknown settings: {}", unknown.join(", "));
                    }
                    match opts.validate(&c.settings) {
                        Ok(s) => c.settings = s,
                        Err(e) => c.pending_error = Some(e.to_string()),
                    }
                }
                Some(Err(e)) => c.pending_error = Some(e.to_string()),
                None => {}
            }
        });
        let encoding_kind = match encoding {
            PositionEncoding::Utf8 => PositionEncodingKind::UTF8,
            PositionEncoding::Utf16 => PositionEncodingKind::UTF16,
        };
        InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(encoding_kind),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..Default::default()
                })),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(TRIGGER_CHARACTERS.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                }),
                inline_completion_provider: Some(OneOf::Left(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![super::quality::ACCEPTED_COMMAND.into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo { name: "inkling".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
            offset_encoding: None,
        }
    }

    pub(super) async fn on_initialized(&self) {
        let pending = {
            let mut taken = None;
            self.update_config(|c| taken = c.pending_error.take());
            taken
        };
        if let Some(message) = pending {
            self.client.show_message(MessageType::ERROR, format!("{message}. Using the defaults instead.")).await;
        }
        self.documents.set_limits(self.document_limits());
        self.start_model_load(false);
        self.apply_log_setting();
        self.apply_router_setting();
        self.start_cross_file();
    }

    pub(super) async fn on_did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let before = self.config().settings;
        let validated = Options::from_json_lenient(&params.settings).and_then(|(o, unknown)| {
            if !unknown.is_empty() {
                tracing::warn!("ignoring unknown settings: {}", unknown.join(", "));
            }
            o.validate(&before)
        });
        match validated {
            Ok(settings) => {
                // A new path, or the same path again after a failed load (the file was fixed).
                let failed = matches!(self.engine_state(), crate::engine::EngineState::Failed { .. });
                let model_changed = settings.model_path != before.model_path || failed;
                if settings.threads != before.threads {
                    // The thread pools were sized at start (`server::threads_requested`).
                    tracing::info!(threads = ?settings.threads, "the threads setting takes effect when the server next starts");
                }
                let filter_changed = settings.filter_path != before.filter_path;
                self.update_config(|c| c.settings = settings);
                self.documents.set_limits(self.document_limits());
                if model_changed {
                    self.start_model_load(true); // loads the model's filter too
                } else if filter_changed {
                    self.reload_filter();
                }
                self.apply_log_setting();
                self.apply_router_setting();
            }
            Err(e) => {
                self.client.show_message(MessageType::ERROR, format!("{e}. The previous settings stay in force.")).await;
            }
        }
    }
}
