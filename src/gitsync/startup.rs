//! What a sync serves when the server starts: the last active snapshot (also
//! one of a configuration that changed since), or a first sync.

use std::sync::Arc;

use super::{GitSync, SyncOutcome, snapshot};
use crate::db;

impl GitSync {
    /// At start: serves the last active snapshot if it is on disk — also one of
    /// a configuration that changed since, which serves until this one has
    /// synced, as it would have without the restart — and syncs in the
    /// background; whether it found one.
    pub async fn serve_last_snapshot(self: &Arc<Self>) -> bool {
        let active = match db::gitsync::active(&self.pool).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "reading the active git snapshot");
                None
            }
        };
        let Some(active) = active else {
            return false;
        };
        let dir = snapshot::dir_of(&self.snapshots_dir(), &active.commit_sha);
        if !dir.is_dir() {
            return false;
        }
        let ours = active.branch == self.spec.branch
            && (active.repo_url.is_empty() || active.repo_url == self.spec.shown_url)
            && active
                .pipelines_subdir
                .as_ref()
                .is_none_or(|s| *s == self.spec.subdir);
        self.activate(&dir, &active).await;
        if !ours {
            self.serving_elsewhere
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let this = self.clone();
        tokio::spawn(async move { this.sync("startup").await });
        true
    }

    /// At a first start with nothing to serve: syncs now, so the first scan sees
    /// the repository; if that fails, serves nothing (never `PIPELINES_DIR`'s
    /// files in place of the repository's) and the Sync page says why.
    pub async fn first_sync(self: &Arc<Self>) {
        if let SyncOutcome::Done(entry) = self.sync("startup").await {
            if !entry.success {
                let empty = self.git_dir.join("empty");
                if let Err(e) = std::fs::create_dir_all(&empty) {
                    tracing::error!(error = %e, "creating {}", empty.display());
                }
                self.registry.switch_source(empty, None).await;
            }
        }
    }
}
