//! The workspace side of cross-file context: indexing the workspace folder in the background
//! (with `$/progress`), and keeping the index and the recent-chunks ring in step with the
//! documents the editor opens, edits and saves.

use tokio::sync::mpsc;
use tower_lsp_server::ls_types::*;

use super::Server;
use crate::crossfile::{CrossFile, CrossFileLimits};
use crate::session::{path_from_uri, Snapshot};

impl Server {
    /// The workspace folder a client names at `initialize`.
    pub(super) fn workspace_root(params: &InitializeParams) -> Option<std::path::PathBuf> {
        #[allow(deprecated)]
        let uri = params.workspace_folders.as_ref().and_then(|f| f.first()).map(|f| f.uri.clone()).or_else(|| params.root_uri.clone())?;
        let path = std::path::PathBuf::from(path_from_uri(uri.as_str()));
        path.is_dir().then_some(path)
    }

    /// Starts indexing the workspace on a background thread; progress goes to the client.
    pub(super) fn start_indexing(&self) {
        let config = self.config();
        let (Some(root), true) = (config.root.clone(), config.settings.cross_file_context) else { return };
        if config.settings.max_index_files == 0 {
            return;
        }
        // The index's limits come from the settings the client sent.
        let fresh = CrossFile::new(CrossFileLimits::from_settings(&config.settings));
        match self.cross.write() {
            Ok(mut c) => *c = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, usize)>();
        let job = self.cross().index_workspace(root.clone(), move |done, total| {
            let _ = tx.send((done, total));
        });
        match job {
            Ok(job) => {
                if let Ok(mut slot) = self.index_job.lock() {
                    if let Some(old) = slot.replace(job) {
                        old.cancel();
                    }
                }
            }
            Err(e) => {
                tracing::warn!("cannot index {}: {e}", root.display());
                return;
            }
        }
        let client = self.client.clone();
        let cross = self.cross();
        let progress = config.progress;
        tokio::spawn(async move {
            let mut ongoing = None;
            if progress {
                let token = ProgressToken::String(format!("inkling/index/{}", std::process::id()));
                if client.create_work_done_progress(token.clone()).await.is_ok() {
                    ongoing = Some(client.progress(token, "inkling: indexing definitions").with_percentage(0).begin().await);
                }
            }
            while let Some((done, total)) = rx.recv().await {
                if let Some(p) = &ongoing {
                    let pct = (done * 100).checked_div(total).map_or(100, |p| p as u32);
                    p.report_with_message(format!("{done}/{total} files"), pct).await;
                }
            }
            let stats = cross.stats();
            let summary = format!(
                "{} files, {} definitions{}",
                stats.files,
                stats.definitions,
                if stats.truncated { " (limit reached: raise maxIndexFiles to index more)" } else { "" }
            );
            tracing::info!("workspace index: {summary}");
            if let Some(p) = ongoing {
                p.finish_with_message(summary).await;
            }
        });
    }

    pub(super) fn stop_indexing(&self) {
        if let Ok(mut slot) = self.index_job.lock() {
            if let Some(job) = slot.take() {
                job.cancel();
            }
        }
    }

    /// A document was opened: its text goes into the index and the recent ring.
    pub(super) fn cross_file_opened(&self, snapshot: Snapshot) {
        let cross = self.cross();
        cross.note_view(&snapshot.path, &snapshot.text, 0);
        tokio::task::spawn_blocking(move || cross.update_file(&snapshot.path, &snapshot.text));
    }

    /// A document was edited at `line`: the edited chunk joins the recent ring.
    pub(super) fn cross_file_edited(&self, snapshot: &Snapshot, line: usize) {
        self.cross().note_edit(&snapshot.path, &snapshot.text, line);
    }

    pub(super) fn on_did_save(&self, params: DidSaveTextDocumentParams) {
        if let Some(snapshot) = self.documents.snapshot(params.text_document.uri.as_str()) {
            let cross = self.cross();
            tokio::task::spawn_blocking(move || cross.update_file(&snapshot.path, &snapshot.text));
        }
    }
}
