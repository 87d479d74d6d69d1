//! Watches `PIPELINES_DIR` for changes and refreshes the registry after a short
//! quiet period, so a `git pull` that touches many files causes one rescan.

use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use super::PipelineRegistry;

/// Changes closer together than this are folded into one rescan.
const QUIET_PERIOD: Duration = Duration::from_millis(250);

/// Runs until `shutdown`. If the directory cannot be watched (e.g. it does not
/// exist yet), logs why; refreshing from the UI still works.
pub async fn watch_pipelines_dir(registry: Arc<PipelineRegistry>, shutdown: CancellationToken) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    }) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot create a file watcher; pipelines refresh only on demand");
            return;
        }
    };
    if let Err(e) = watcher.watch(registry.root(), RecursiveMode::Recursive) {
        tracing::warn!(error = %e, dir = %registry.root().display(), "cannot watch PIPELINES_DIR; pipelines refresh only on demand");
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            got = rx.recv() => if got.is_none() { return },
        }
        // Debounce: wait until no event arrived for QUIET_PERIOD.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(QUIET_PERIOD) => break,
                got = rx.recv() => if got.is_none() { return },
            }
        }
        registry.refresh().await;
    }
}
