//! The language server: the only module that speaks LSP.
//!
//! It turns LSP positions into byte offsets (through `session::position`), hands plain Rust
//! values to the layers below, and turns their answers back into LSP items. One file per concern:
//! `lifecycle` (initialize/shutdown, capabilities, settings), `text_sync` (document
//! notifications), `suggest` (the shared completion path), `inline_completion` and `completion`
//! (the two ways a client asks), `model` (loading the model with progress), `quality` (the
//! filter, the router model, the suggestion log and accepted items), `workspace` (code from
//! other files: indexing with progress, keeping the index in step with the documents),
//! `prewarm` (reading the next prompt while the user pauses), `convert` (types), `transport`
//! (the stdio framing guard).

mod completion;
mod convert;
mod inline_completion;
mod lifecycle;
mod model;
mod prewarm;
mod quality;
mod suggest;
mod text_sync;
pub mod transport;
mod workspace;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::sync::{OnceLock, RwLock};

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server as Transport};

use crate::config::Settings;
use crate::crossfile::CrossFile;
use crate::engine::{load_backend, Engine, Loader};
use crate::pipeline::TypeThrough;
use crate::session::{Documents, PositionEncoding};
use crate::sync;

/// How the server was started (command line), before any client settings.
pub struct ServerOptions {
    /// `--model PATH`: used when the client's settings name no model.
    pub model: Option<PathBuf>,
    /// Builds the model backend; the real Qwen2 loader unless a test swaps it.
    pub loader: Loader,
    /// Builds the router model's backend (`routerModelPath`).
    pub router_loader: Loader,
    /// Answer from the visible suggestion while the user types through it.
    pub type_through: bool,
    /// Where the suggestion log goes when `logSuggestions` is on (default:
    /// [`crate::quality::log::default_path`]).
    pub suggestion_log: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            model: None,
            loader: Box::new(load_backend),
            router_loader: Box::new(load_backend),
            type_through: true,
            suggestion_log: None,
        }
    }
}

/// Per-session state negotiated at `initialize` and changed by configuration.
#[derive(Clone, Debug)]
pub(crate) struct SessionConfig {
    pub settings: Settings,
    pub encoding: PositionEncoding,
    pub snippets: bool,
    pub progress: bool,
    /// The workspace folder, from `initialize`.
    pub root: Option<PathBuf>,
    /// A settings error found at `initialize`, shown once the client is ready.
    pub pending_error: Option<String>,
}

pub struct Server {
    client: Client,
    documents: Documents,
    engine: Engine,
    /// The bigger model suggestions that score low go to (idle until `routerModelPath` is set).
    router: Engine,
    /// The filter, the router's state and the suggestion log.
    quality: Arc<quality::Quality>,
    cli_model: Option<PathBuf>,
    type_through: Option<Arc<TypeThrough>>,
    /// Definitions and recent chunks from other files, with their indexer: set once, when the
    /// client is initialized (its limits come from the client's settings).
    cross: OnceLock<CrossFile>,
    config: RwLock<SessionConfig>,
    /// Set once the user was told why the model is unavailable (said once, not per keystroke).
    told_no_model: Arc<AtomicBool>,
    /// Changes and requests, which make a scheduled pre-warm stale.
    activity: prewarm::Activity,
}

impl Server {
    fn new(client: Client, options: ServerOptions) -> Server {
        Server {
            client,
            documents: Documents::default(),
            engine: Engine::spawn(options.loader),
            router: Engine::spawn(options.router_loader),
            quality: Arc::new(quality::Quality::new(options.suggestion_log)),
            cli_model: options.model,
            type_through: options.type_through.then(|| Arc::new(TypeThrough::default())),
            cross: OnceLock::new(),
            config: RwLock::new(SessionConfig {
                settings: Settings::default(),
                encoding: PositionEncoding::Utf16,
                snippets: false,
                progress: false,
                root: None,
                pending_error: None,
            }),
            told_no_model: Arc::new(AtomicBool::new(false)),
            activity: prewarm::Activity::default(),
        }
    }

    /// A copy of the current configuration (the lock is never held across an `.await`).
    pub(crate) fn config(&self) -> SessionConfig {
        sync::read(&self.config).clone()
    }

    /// The engine's state (for tests and status reporting).
    pub fn engine_state(&self) -> crate::engine::EngineState {
        self.engine.state()
    }

    /// The server's current text of an open document (for tests that compare it with a
    /// reference model of the client's edits).
    #[doc(hidden)]
    pub fn document_text(&self, uri: &str) -> Option<String> {
        self.documents.snapshot(uri).map(|s| s.text.to_string())
    }

    /// Code from other files; `None` until the client is initialized.
    pub(crate) fn cross(&self) -> Option<&CrossFile> {
        self.cross.get()
    }

    pub(crate) fn update_config(&self, f: impl FnOnce(&mut SessionConfig)) {
        f(&mut sync::write(&self.config));
    }
}

/// Builds the service; `textDocument/inlineCompletion` (LSP 3.18) is routed as a custom method.
pub fn build_service(options: ServerOptions) -> (LspService<Server>, tower_lsp_server::ClientSocket) {
    LspService::build(|client| Server::new(client, options))
        .custom_method("textDocument/inlineCompletion", Server::inline_completion)
        .finish()
}

/// The CPU threads an `initialize` request asks for (`threads` in its initialization options,
/// validated as the server validates it; 0 = all cores = `None`). The model's thread pools are
/// sized once, from the environment, before any thread starts: the command line reads this
/// before it builds the runtime, and later changes take effect at the next start.
pub fn threads_requested(first: &serde_json::Value) -> Option<usize> {
    if first.get("method").and_then(serde_json::Value::as_str) != Some("initialize") {
        return None;
    }
    let options = first.get("params")?.get("initializationOptions")?;
    let (options, _) = crate::config::Options::from_json_lenient(options).ok()?;
    options.validate(&crate::config::Settings::default()).ok()?.threads
}

/// Serves LSP over `input`/`output` (the process's stdin and stdout, which the command line owns)
/// until the client says `exit` or closes its input.
pub async fn serve<I, O>(options: ServerOptions, input: I, output: O)
where
    I: tokio::io::AsyncRead + Unpin + Send + 'static,
    O: tokio::io::AsyncWrite + Unpin,
{
    let (service, socket) = build_service(options);
    transport::serve_guarded(input, output, |input, output| async move {
        // Completion requests cancel each other quickly; a high limit keeps document
        // notifications from ever queueing behind them.
        Transport::new(input, output, socket).concurrency_level(64).serve(service).await;
    })
    .await;
}

impl LanguageServer for Server {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        Ok(self.on_initialize(params))
    }

    async fn initialized(&self, _: InitializedParams) {
        self.on_initialized().await;
    }

    async fn shutdown(&self) -> Result<()> {
        if let Some(cross) = self.cross() {
            cross.stop_indexing();
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        self.on_did_open(params).await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        self.on_did_change(params).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.on_did_close(params);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.on_did_save(params);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        self.on_did_change_configuration(params).await;
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        self.on_completion(params).await
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        self.on_execute_command(params)
    }
}
