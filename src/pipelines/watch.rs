//! Watches `PIPELINES_DIR` for changes and refreshes the registry after a short
//! quiet period, so a `git pull` that touches many files causes one rescan.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use super::PipelineRegistry;

/// Changes closer together than this are folded into one rescan...
const QUIET_PERIOD: Duration = Duration::from_millis(250);
/// ...but a steady trickle of changes never postpones a rescan longer than this.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// A registered watch. Create it before the first scan so no change falls between the two.
pub struct PipelinesWatch {
    _watcher: RecommendedWatcher,
    changes: UnboundedReceiver<()>,
}

impl PipelinesWatch {
    /// Starts watching `root`. If that is impossible (e.g. it does not exist yet),
    /// logs why and returns the reason; refreshing from the UI still works.
    pub fn start(root: &Path) -> Result<Self, String> {
        let (tx, changes) = tokio::sync::mpsc::unbounded_channel::<()>();
        let handler = move |event: notify::Result<notify::Event>| {
            // Reading files (our own scans included) raises access events; only changes count.
            if let Ok(event) = event
                && !matches!(event.kind, notify::EventKind::Access(_))
            {
                let _ = tx.send(());
            }
        };
        // Not through symbolic links: a link to `/` (refused by discovery anyway) must not
        // make the watcher walk and watch the whole file system.
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut watcher = match RecommendedWatcher::new(handler, config) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a file watcher; pipelines refresh only on demand");
                return Err(format!("cannot create a file watcher: {e}"));
            }
        };
        if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
            tracing::error!(error = %e, dir = %root.display(), "cannot watch PIPELINES_DIR; pipelines refresh only on demand");
            return Err(format!("cannot watch {}: {e}", root.display()));
        }
        Ok(Self {
            _watcher: watcher,
            changes,
        })
    }

    /// Rescans after each burst of changes, until `shutdown`.
    pub async fn run(mut self, registry: Arc<PipelineRegistry>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = self.changes.recv() => if got.is_none() { return },
            }
            let deadline = tokio::time::Instant::now() + MAX_DELAY;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(QUIET_PERIOD) => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                    got = self.changes.recv() => if got.is_none() { return },
                }
            }
            registry.refresh().await;
        }
    }
}
