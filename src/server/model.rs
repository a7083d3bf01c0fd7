//! Loading the model in the background, with `$/progress` while it loads and one clear message
//! when it cannot load.

use std::sync::atomic::Ordering;

use tower_lsp_server::ls_types::*;

use super::Server;
use crate::{eval, models};

impl Server {
    /// The model path: the client's setting, else `--model`, else the default in the cache.
    pub(super) fn model_path(&self) -> Option<std::path::PathBuf> {
        self.config().settings.model_path.or_else(|| self.cli_model.clone()).or_else(models::default_model)
    }

    /// Starts loading the model on the engine thread; returns at once.
    pub(super) fn start_model_load(&self, announce: bool) {
        let Some(path) = self.model_path() else {
            let client = self.client.clone();
            tokio::spawn(async move {
                client.show_message(MessageType::ERROR, no_model_message("no model configured and no cache folder ($HOME is unset)")).await;
            });
            return;
        };
        self.told_no_model.store(false, Ordering::Relaxed);
        let engine = self.engine.clone();
        let client = self.client.clone();
        let progress = self.config().progress;
        let told = self.told_no_model.clone();
        let (quality, filter_setting) = (self.quality.clone(), self.config().settings.filter_path);
        tokio::spawn(async move {
            let title = format!("inkling: loading {}", path.file_name().unwrap_or_default().to_string_lossy());
            let ongoing = if progress {
                let token = ProgressToken::String(format!("inkling/load/{}", std::process::id()));
                match client.create_work_done_progress(token.clone()).await {
                    Ok(()) => Some(client.progress(token, title).with_message(path.display().to_string()).begin().await),
                    Err(_) => None,
                }
            } else {
                None
            };
            let result = engine.load(path.clone()).await.map(|desc| with_eval_record(desc, &path));
            match (&result, ongoing) {
                (Ok(desc), Some(p)) => p.finish_with_message(format!("ready: {desc}")).await,
                (Err(_), Some(p)) => p.finish_with_message("failed").await,
                _ => {}
            }
            if result.is_ok() {
                super::quality::load_filter(&quality, &client, filter_setting, Some(path.clone())).await;
            }
            match result {
                Ok(desc) if announce => client.show_message(MessageType::INFO, format!("inkling: now using {desc}")).await,
                Ok(desc) => client.log_message(MessageType::INFO, format!("inkling: ready with {desc}")).await,
                Err(message) => {
                    let text = no_model_message(format!("could not load the model {}: {message}", path.display()));
                    // Marked explained before the message goes out, so a completion request that
                    // arrives right after the client sees it stays quiet; and if such a request
                    // already explained it, this is not said a second time.
                    if !told.swap(true, Ordering::Relaxed) {
                        client.show_message(MessageType::ERROR, text).await;
                    }
                }
            }
        });
    }

    /// Whether the "no model" situation was already explained; marks it explained.
    pub(super) fn first_no_model_notice(&self) -> bool {
        !self.told_no_model.swap(true, Ordering::Relaxed)
    }
}

/// The message for completions that are off for want of a model: what went wrong, and how to
/// get one.
pub(super) fn no_model_message(what: impl std::fmt::Display) -> String {
    format!("inkling: {what}. Completions are off until this is fixed: {}.", models::FETCH_HINT)
}

/// The model's description, with what its evaluation record (`inkling eval --record`) measured
/// when it has one. A record that cannot be read is logged and left out: it never stops a load.
fn with_eval_record(desc: String, model: &std::path::Path) -> String {
    match eval::record::read(model) {
        Ok(Some(record)) => format!("{desc}; fine-tuned, {}", record.summary()),
        Ok(None) => desc,
        Err(e) => {
            tracing::warn!("evaluation record left out: {e:#}");
            desc
        }
    }
}
