//! Watches `PIPELINES_DIR` for changes and rereads the folders that changed after
//! a short quiet period, so a `git pull` that touches many files causes one pass,
//! and a new folder among thousands is read alone.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::PipelineRegistry;

/// Changes closer together than this are folded into one pass...
const QUIET_PERIOD: Duration = Duration::from_millis(100);
/// ...but a steady trickle of changes never postpones a pass longer than this.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// More changed folders than this between two passes: rescan everything instead
/// (the set of names stays bounded whatever happens on disk).
const MAX_CHANGED_FOLDERS: usize = 1024;

/// What changed since the last pass.
#[derive(Default)]
struct Changes {
    folders: BTreeSet<String>,
    everything: bool,
}

impl Changes {
    fn note(&mut self, root: &Path, event: &notify::Event) {
        if event.need_rescan() || event.paths.is_empty() {
            self.everything = true;
        }
        for path in &event.paths {
            match top_folder(root, path) {
                Some(name) if self.folders.len() < MAX_CHANGED_FOLDERS => {
                    self.folders.insert(name);
                }
                _ => self.everything = true,
            }
        }
        if self.everything {
            self.folders.clear();
        }
    }
}

/// The folder of `root` that `path` is in (its first component), if it is a plain name.
fn top_folder(root: &Path, path: &Path) -> Option<String> {
    match path.strip_prefix(root).ok()?.components().next()? {
        Component::Normal(name) => name.to_str().map(str::to_string),
        _ => None,
    }
}

/// A registered watch. Create it before the scan it must not miss changes after.
pub struct PipelinesWatch {
    root: PathBuf,
    _watcher: RecommendedWatcher,
    changes: Arc<(Mutex<Changes>, Notify)>,
}

impl PipelinesWatch {
    /// Starts watching `root` (blocking: it walks the tree). If that is impossible
    /// (e.g. it does not exist yet), logs why and returns the reason; refreshing
    /// from the UI still works.
    pub fn start(root: &Path) -> Result<Self, String> {
        let changes: Arc<(Mutex<Changes>, Notify)> = Arc::default();
        let root_seen: PathBuf = root.to_path_buf();
        let shared = changes.clone();
        let handler = move |event: notify::Result<notify::Event>| {
            let (pending, wake) = &*shared;
            let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
            match event {
                // Reading files (our own scans included) raises access events; only changes count.
                Ok(event) if matches!(event.kind, notify::EventKind::Access(_)) => return,
                Ok(event) => pending.note(&root_seen, &event),
                // A watch error (e.g. the kernel's queue overflowed): assume anything changed.
                Err(_) => pending.everything = true,
            }
            wake.notify_one();
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
            root: root.to_path_buf(),
            _watcher: watcher,
            changes,
        })
    }

    /// Rereads what changed after each burst of changes, until `shutdown`.
    pub async fn run(self, registry: Arc<PipelineRegistry>, shutdown: CancellationToken) {
        let (pending, wake) = &*self.changes;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => {}
            }
            let deadline = tokio::time::Instant::now() + MAX_DELAY;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(QUIET_PERIOD) => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = wake.notified() => {}
                }
            }
            let changes =
                std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
            // The registry serves another source now (a git snapshot): this watch is done.
            if registry.root() != self.root {
                return;
            }
            if changes.everything {
                registry.refresh().await;
            } else if !changes.folders.is_empty() {
                registry.refresh_only(changes.folders).await;
            }
        }
    }
}

/// Scans the pipelines, then sets up the watch (which walks every folder) and scans
/// once more for changes made while it was being set up; then follows changes.
pub async fn discover_and_follow(registry: Arc<PipelineRegistry>, shutdown: CancellationToken) {
    let snapshot = registry.refresh().await;
    if let Some(e) = &snapshot.dir_error {
        tracing::error!("{e}: no pipelines can run until it exists");
    }
    let root = registry.root().to_path_buf();
    let watch = match tokio::task::spawn_blocking(move || PipelinesWatch::start(&root)).await {
        Ok(watch) => watch,
        Err(e) => Err(format!("setting up the file watcher failed: {e}")),
    };
    match watch {
        Ok(watch) => {
            registry.refresh().await;
            watch.run(registry, shutdown).await;
        }
        Err(problem) => registry.set_watch_problem(Some(problem)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(notify::EventKind::Any);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn changes_name_their_folders_or_ask_for_everything() {
        let root = Path::new("/srv/pipelines");
        let mut c = Changes::default();
        c.note(
            root,
            &event(&["/srv/pipelines/etl/main.py", "/srv/pipelines/new"]),
        );
        assert_eq!(c.folders.iter().collect::<Vec<_>>(), ["etl", "new"]);
        assert!(!c.everything);
        // The root itself, or a path outside it: everything is read again.
        c.note(root, &event(&["/srv/pipelines"]));
        assert!(c.everything && c.folders.is_empty());
        let mut c = Changes::default();
        c.note(root, &event(&["/elsewhere/x"]));
        assert!(c.everything);
        let mut c = Changes::default();
        for i in 0..=MAX_CHANGED_FOLDERS {
            c.note(root, &event(&[&format!("/srv/pipelines/p{i}/main.py")]));
        }
        assert!(c.everything, "too many folders becomes one full rescan");
        assert!(c.folders.is_empty());
    }
}
