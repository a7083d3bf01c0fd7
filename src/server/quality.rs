//! The quality gate in the server: the filter that goes with the model (or `filterPath`), the
//! router model (`routerModelPath`), and the local suggestion log (`logSuggestions`), with the
//! editor's report that a suggestion was accepted (`workspace/executeCommand inkling.accepted`,
//! the command each item carries while the log is on).
//!
//! A filter that cannot be used is said once and the server serves unfiltered; the gate itself
//! lives in `pipeline::judge`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use dashmap::DashMap;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use super::Server;
use crate::pipeline::{Gate, Judgement};
use crate::quality::filter::{self, Filter};
use crate::quality::log::{Entry, Event, SuggestionLog};
use crate::sync;

/// The command an accepted item runs (its one argument: the suggestion's id).
pub(super) const ACCEPTED_COMMAND: &str = "inkling.accepted";

/// The last suggestion shown in a document, until it is accepted or replaced.
#[derive(Clone, Debug)]
struct Shown {
    id: u64,
    path: String,
    line: u32,
    accepted: bool,
}

/// The server's quality state (shared with the tasks that load models).
pub(super) struct Quality {
    /// Where the log goes (`None`: the default place).
    log_path: Option<PathBuf>,
    filter: RwLock<Option<Arc<Filter>>>,
    /// The router model's path while one is loaded and wanted.
    router_path: RwLock<Option<PathBuf>>,
    log: RwLock<Option<Arc<SuggestionLog>>>,
    shown: DashMap<String, Shown>,
    last_edit: DashMap<String, Instant>,
    next_id: AtomicU64,
}

impl Quality {
    pub(super) fn new(log_path: Option<PathBuf>) -> Quality {
        Quality {
            log_path,
            filter: RwLock::default(),
            router_path: RwLock::default(),
            log: RwLock::default(),
            shown: DashMap::new(),
            last_edit: DashMap::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Notes that `uri` changed now (the `since_edit_ms` feature).
    pub(super) fn edited(&self, uri: &str) {
        self.last_edit.insert(uri.to_string(), Instant::now());
    }

    fn log(&self) -> Option<Arc<SuggestionLog>> {
        sync::read(&self.log).clone()
    }

    fn write(&self, entry: &Entry<'_>) {
        if let Some(log) = self.log() {
            if let Err(e) = log.write(entry) {
                tracing::warn!("cannot write the suggestion log {}: {e}", log.path().display());
            }
        }
    }

    /// Logs that the suggestion shown before in `uri` gave way to another, unless it was accepted.
    fn replaced(&self, uri: &str) {
        if let Some((_, old)) = self.shown.remove(uri) {
            if !old.accepted {
                self.write(&Entry {
                    event: Event::Dismissed,
                    id: old.id,
                    time_ms: Entry::now_ms(),
                    path: &old.path,
                    line: old.line,
                    text: None,
                    confidence: None,
                    routed: false,
                    features: None,
                });
            }
        }
    }
}

/// Loads the filter for `model` (`setting`, the `filterPath` setting, else the file beside the
/// model); one warning when a filter was asked for or found but cannot be used, and the server
/// then serves unfiltered.
pub(super) async fn load_filter(quality: &Quality, client: &Client, setting: Option<PathBuf>, model: Option<PathBuf>) {
    let path = match (&setting, &model) {
        (Some(p), _) => p.clone(),
        (None, Some(m)) => filter::beside(m),
        (None, None) => return,
    };
    if setting.is_none() && !path.exists() {
        *sync::write(&quality.filter) = None;
        return;
    }
    match Filter::load(&path) {
        Ok(f) => {
            let message = format!("inkling: quality filter {} (minConfidence {:.2} by default)", path.display(), f.min_confidence());
            *sync::write(&quality.filter) = Some(Arc::new(f));
            client.log_message(MessageType::INFO, message).await;
        }
        Err(e) => {
            *sync::write(&quality.filter) = None;
            client.show_message(MessageType::WARNING, format!("inkling: {e}. Suggestions are shown unfiltered.")).await;
        }
    }
}

impl Server {
    /// The gate for a request in `uri` with the current settings.
    pub(super) fn gate(&self, uri: &str) -> Gate {
        let settings = self.config().settings;
        let filter = sync::read(&self.quality.filter).clone();
        let min_confidence = settings.min_confidence.or_else(|| filter.as_ref().map(|f| f.min_confidence())).unwrap_or(0.0);
        let router = sync::read(&self.quality.router_path).is_some().then(|| self.router.clone());
        let since_edit_ms = self.quality.last_edit.get(uri).map(|t| t.elapsed().as_secs_f64() * 1e3);
        Gate { filter, min_confidence, router, since_edit_ms }
    }

    /// Starts loading (or forgets) the router model when its setting changed; returns at once.
    pub(super) fn apply_router_setting(&self) {
        let wanted = self.config().settings.router_model_path;
        if *sync::read(&self.quality.router_path) == wanted {
            return;
        }
        *sync::write(&self.quality.router_path) = None;
        let Some(path) = wanted else { return };
        let (router, quality, client) = (self.router.clone(), self.quality.clone(), self.client.clone());
        tokio::spawn(async move {
            match router.load(path.clone()).await {
                Ok(desc) => {
                    *sync::write(&quality.router_path) = Some(path);
                    client.log_message(MessageType::INFO, format!("inkling: router model ready: {desc}")).await;
                }
                Err(e) => {
                    let text = format!("inkling: could not load the router model {}: {e}. Suggestions are not routed.", path.display());
                    client.show_message(MessageType::WARNING, text).await;
                }
            }
        });
    }

    /// Loads the filter again after `filterPath` changed (the model stayed).
    pub(super) fn reload_filter(&self) {
        let (quality, client) = (self.quality.clone(), self.client.clone());
        let (setting, model) = (self.config().settings.filter_path, self.model_path());
        tokio::spawn(async move { load_filter(&quality, &client, setting, model).await });
    }

    /// Turns the log on or off after the settings changed.
    pub(super) fn apply_log_setting(&self) {
        let on = self.config().settings.log_suggestions;
        let mut log = sync::write(&self.quality.log);
        match (on, log.is_some()) {
            (true, false) => match self.quality.log_path.clone().or_else(crate::quality::log::default_path) {
                Some(path) => *log = Some(Arc::new(SuggestionLog::new(path))),
                None => tracing::warn!("logSuggestions: no state folder ($HOME is unset); nothing is logged"),
            },
            (false, true) => *log = None,
            _ => {}
        }
    }

    /// Records a suggestion shown in `uri` at `line`; returns the command an accepting client
    /// runs (none while the log is off: no command for nothing to record).
    pub(super) fn shown(&self, uri: &str, line: u32, text: &str, judged: Option<&Judgement>, typed_through: bool) -> Option<Command> {
        self.quality.log()?;
        let path = crate::session::path_from_uri(uri);
        let id = match self.quality.shown.get(uri).map(|s| s.id) {
            Some(id) if typed_through => id,
            _ => {
                self.quality.replaced(uri);
                let id = self.quality.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                self.quality.shown.insert(uri.to_string(), Shown { id, path: path.clone(), line, accepted: false });
                self.quality.write(&Entry {
                    event: Event::Shown,
                    id,
                    time_ms: Entry::now_ms(),
                    path: &path,
                    line,
                    text: Some(text),
                    confidence: judged.and_then(|j| j.confidence),
                    routed: judged.is_some_and(|j| j.routed),
                    features: judged.map(|j| &j.features),
                });
                id
            }
        };
        Some(Command { title: "inkling: suggestion accepted".into(), command: ACCEPTED_COMMAND.into(), arguments: Some(vec![id.into()]) })
    }

    /// Records a suggestion the filter kept from the user.
    pub(super) fn filtered(&self, uri: &str, line: u32, text: &str, judged: &Judgement) {
        if self.quality.log().is_none() {
            return;
        }
        self.quality.replaced(uri);
        let id = self.quality.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let path = crate::session::path_from_uri(uri);
        self.quality.write(&Entry {
            event: Event::Filtered,
            id,
            time_ms: Entry::now_ms(),
            path: &path,
            line,
            text: Some(text),
            confidence: judged.confidence,
            routed: judged.routed,
            features: Some(&judged.features),
        });
    }

    /// `workspace/executeCommand`: the client ran an accepted item's command.
    pub(super) fn on_execute_command(&self, params: ExecuteCommandParams) -> tower_lsp_server::jsonrpc::Result<Option<LSPAny>> {
        if params.command != ACCEPTED_COMMAND {
            return Err(tower_lsp_server::jsonrpc::Error::invalid_params(format!("inkling: unknown command `{}`", params.command)));
        }
        let Some(id) = params.arguments.first().and_then(serde_json::Value::as_u64) else {
            return Err(tower_lsp_server::jsonrpc::Error::invalid_params(format!("inkling: {ACCEPTED_COMMAND} takes the suggestion's id")));
        };
        let found = self.quality.shown.iter_mut().find(|s| s.id == id).map(|mut s| {
            s.accepted = true;
            (s.path.clone(), s.line)
        });
        if let Some((path, line)) = found {
            self.quality.write(&Entry {
                event: Event::Accepted,
                id,
                time_ms: Entry::now_ms(),
                path: &path,
                line,
                text: None,
                confidence: None,
                routed: false,
                features: None,
            });
        }
        Ok(None)
    }
}
