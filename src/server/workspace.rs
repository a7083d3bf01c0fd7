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

    /// Sets up code from other files with the limits of the settings the client sent (once, when
    /// the client is initialized), and starts indexing the workspace on a background thread;
    /// progress goes to the client.
    pub(super) fn start_cross_file(&self) {
        let config = self.config();
        let cross = self.cross.get_or_init(|| CrossFile::new(CrossFileLimits::from_settings(&config.settings))).clone();
        let (Some(root), true) = (config.root.clone(), config.settings.cross_file_context) else { return };
        if config.settings.max_index_files == 0 {
            return;
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, usize)>();
        let job = cross.index_workspace(root.clone(), move |done, total| {
            let _ = tx.send((done, total));
        });
        if let Err(e) = job {
            tracing::warn!("cannot index {}: {e}", root.display());
            return;
        }
        let client = self.client.clone();
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

    /// A document was opened: its text goes into the index and the recent ring.
    pub(super) fn cross_file_opened(&self, snapshot: Snapshot) {
        let Some(cross) = self.cross().cloned() else { return };
        cross.note_view(&snapshot.path, &snapshot.text, 0);
        tokio::task::spawn_blocking(move || cross.update_file(&snapshot.path, &snapshot.text));
    }

    /// A document was edited at `line`: the edited chunk joins the recent ring.
    pub(super) fn cross_file_edited(&self, snapshot: &Snapshot, line: usize) {
        if let Some(cross) = self.cross() {
            cross.note_edit(&snapshot.path, &snapshot.text, line);
        }
    }

    pub(super) fn on_did_save(&self, params: DidSaveTextDocumentParams) {
        if let (Some(snapshot), Some(cross)) = (self.documents.snapshot(params.text_document.uri.as_str()), self.cross().cloned()) {
            tokio::task::spawn_blocking(move || cross.update_file(&snapshot.path, &snapshot.text));
        }
    }
}
