//! Pipelines: discovery from `PIPELINES_DIR`, their metadata, and the in-memory
//! registry that the web layer and the runner read (refreshed on file changes,
//! never rescanned per request).

mod confined;
mod discovery;
mod downstream;
pub mod fields;
pub mod host;
pub mod metadata;
mod metadata_checks;
mod nested;
pub mod notify_spec;
pub mod ranges;
mod run_config;
pub mod source;
pub mod timing;
pub mod timing_words;
mod units;
mod watch;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

pub use discovery::{Found, Pipeline, Snapshot, is_valid_pipeline_name, scan};
pub use fields::FieldIssue;
pub use host::HostResources;
pub use metadata::PipelineMetadata;
pub use run_config::known_list;
pub use watch::{PipelinesWatch, discover_and_follow};

/// The git commit a set of pipeline folders was checked out from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub sha: String,
    pub branch: String,
    /// The commit's subject line.
    pub subject: String,
}

/// Where pipelines are read from: a directory, and the commit it holds (git sync).
struct Source {
    root: PathBuf,
    revision: Option<Arc<Revision>>,
}

/// The current view of `PIPELINES_DIR`, swapped whole after each scan.
pub struct PipelineRegistry {
    source: RwLock<Source>,
    /// The engine host's resources, once known (limits are fitted to them).
    host: RwLock<Option<HostResources>>,
    /// Why changes on disk are not picked up by themselves, if they are not.
    watch_problem: RwLock<Option<String>>,
    current: RwLock<Arc<Snapshot>>,
    /// Each folder's pipeline as loaded on its own, so a change rereads only its folder.
    found: Mutex<Found>,
    /// Whether a first scan has been published (until then the snapshot is empty).
    loaded: AtomicBool,
    /// Serialises scans so two refreshes never interleave their writes.
    scan_lock: tokio::sync::Mutex<()>,
    /// Counts published snapshots; the scheduler waits on it to follow pipeline.json.
    generation: tokio::sync::watch::Sender<u64>,
}

impl PipelineRegistry {
    /// Scans once (blocking) and returns the registry.
    pub fn load(root: &Path, host: Option<HostResources>) -> Self {
        let registry = Self::empty(root, host);
        let (found, dir_error) = discovery::scan_each(root, host.as_ref());
        let snapshot = discovery::assemble(&found, dir_error);
        *registry
            .found
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = found;
        *registry
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
        registry.loaded.store(true, Ordering::Release);
        registry
    }

    /// A registry with nothing discovered yet: the server answers at once while the
    /// first [`refresh`](Self::refresh) runs; [`wait_loaded`](Self::wait_loaded) waits for it.
    pub fn empty(root: &Path, host: Option<HostResources>) -> Self {
        Self {
            source: RwLock::new(Source {
                root: root.to_path_buf(),
                revision: None,
            }),
            host: RwLock::new(host),
            watch_problem: RwLock::new(None),
            current: RwLock::new(Arc::new(Snapshot::default())),
            found: Mutex::new(Found::new()),
            loaded: AtomicBool::new(false),
            scan_lock: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Returns once a first scan is published (at once after that).
    pub async fn wait_loaded(&self) {
        let mut generation = self.subscribe();
        while !self.is_loaded() {
            if generation.changed().await.is_err() {
                return;
            }
        }
    }

    /// Changes each time a new snapshot is published.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// The directory pipelines are read from now.
    pub fn root(&self) -> PathBuf {
        self.read_source().0
    }

    fn read_source(&self) -> (PathBuf, Option<Arc<Revision>>) {
        let source = self.source.read().unwrap_or_else(PoisonError::into_inner);
        (source.root.clone(), source.revision.clone())
    }

    /// Reads pipelines from `root` from now on (a new git snapshot): a full scan,
    /// published whole. Pipelines of the previous root stay valid for whoever holds them.
    pub async fn switch_source(
        self: &Arc<Self>,
        root: PathBuf,
        revision: Option<Arc<Revision>>,
    ) -> Arc<Snapshot> {
        {
            let _guard = self.scan_lock.lock().await;
            *self.source.write().unwrap_or_else(PoisonError::into_inner) =
                Source { root, revision };
        }
        self.rescan(None).await
    }

    /// The latest snapshot; cheap (one `Arc` clone).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Why the directory is not watched (changes then need a refresh); `None` while watched.
    pub fn watch_problem(&self) -> Option<String> {
        self.watch_problem
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_watch_problem(&self, problem: Option<String>) {
        *self
            .watch_problem
            .write()
            .unwrap_or_else(PoisonError::into_inner) = problem;
    }

    pub fn host(&self) -> Option<HostResources> {
        *self.host.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the engine host's resources; rescans when they changed.
    pub async fn set_host(self: &Arc<Self>, host: HostResources) {
        let changed = {
            let mut guard = self.host.write().unwrap_or_else(PoisonError::into_inner);
            let changed = *guard != Some(host);
            *guard = Some(host);
            changed
        };
        if changed {
            self.refresh().await;
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Pipeline>> {
        self.snapshot().pipelines.get(name).cloned()
    }

    /// Rescans the directory off the async threads and publishes the result.
    pub async fn refresh(self: &Arc<Self>) -> Arc<Snapshot> {
        self.rescan(None).await
    }

    /// Rereads only the named folders (a change seen there), keeping the others as
    /// loaded; the checks across pipelines run again over all of them.
    pub async fn refresh_only(self: &Arc<Self>, names: BTreeSet<String>) -> Arc<Snapshot> {
        self.rescan(Some(names)).await
    }

    async fn rescan(self: &Arc<Self>, only: Option<BTreeSet<String>>) -> Arc<Snapshot> {
        let _guard = self.scan_lock.lock().await;
        let this = self.clone();
        let (root, revision) = self.read_source();
        let done = tokio::task::spawn_blocking(move || {
            let host = this.host();
            let root = root.as_path();
            let mut found = this.found.lock().unwrap_or_else(PoisonError::into_inner);
            let dir_error = match only {
                None => {
                    let (mut all, dir_error) = discovery::scan_each(root, host.as_ref());
                    for p in all.values_mut() {
                        if let Some(p) = Arc::get_mut(p) {
                            p.revision = revision.clone();
                        }
                    }
                    *found = all;
                    dir_error
                }
                Some(names) => {
                    for name in names {
                        match discovery::scan_one(root, &name, host.as_ref()) {
                            Some(p) => found.insert(
                                name,
                                Arc::new(Pipeline {
                                    revision: revision.clone(),
                                    ..p
                                }),
                            ),
                            None => found.remove(&name),
                        };
                    }
                    this.snapshot().dir_error.clone()
                }
            };
            discovery::assemble(&found, dir_error)
        });
        let snapshot = match done.await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "pipeline scan panicked; keeping the previous snapshot");
                return self.snapshot();
            }
        };
        let counts =
            |s: &Snapshot| {
                s.pipelines.values().fold((0, 0), |(v, i), p| {
                    if p.is_valid() { (v + 1, i) } else { (v, i + 1) }
                })
            };
        let (valid, invalid) = counts(&snapshot);
        // Start-up scans twice (before and after the watch is set up): say it once.
        if !self.loaded.load(Ordering::Acquire) || counts(&self.snapshot()) != (valid, invalid) {
            tracing::info!(valid, invalid, dir = %self.root().display(), "pipelines discovered");
        } else {
            tracing::debug!(valid, invalid, dir = %self.root().display(), "pipelines rescanned");
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = snapshot.clone();
        self.loaded.store(true, Ordering::Release);
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
        snapshot
    }
}
