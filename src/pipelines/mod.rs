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
pub mod ranges;
mod run_config;
pub mod timing;
pub mod timing_words;
mod units;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

pub use discovery::{Pipeline, Snapshot, is_valid_pipeline_name, scan};
pub use fields::FieldIssue;
pub use host::HostResources;
pub use metadata::PipelineMetadata;
pub use run_config::known_list;
pub use watch::PipelinesWatch;

/// The current view of `PIPELINES_DIR`, swapped whole after each scan.
pub struct PipelineRegistry {
    root: PathBuf,
    /// The engine host's resources, once known (limits are fitted to them).
    host: RwLock<Option<HostResources>>,
    /// Why changes on disk are not picked up by themselves, if they are not.
    watch_problem: RwLock<Option<String>>,
    current: RwLock<Arc<Snapshot>>,
    /// Serialises scans so two refreshes never interleave their writes.
    scan_lock: tokio::sync::Mutex<()>,
    /// Counts published snapshots; the scheduler waits on it to follow pipeline.json.
    generation: tokio::sync::watch::Sender<u64>,
}

impl PipelineRegistry {
    /// Scans once (blocking) and returns the registry.
    pub fn load(root: &Path, host: Option<HostResources>) -> Self {
        let snapshot = scan(root, host.as_ref());
        Self {
            root: root.to_path_buf(),
            host: RwLock::new(host),
            watch_problem: RwLock::new(None),
            current: RwLock::new(Arc::new(snapshot)),
            scan_lock: tokio::sync::Mutex::new(()),
            generation: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes each time a new snapshot is published.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn root(&self) -> &Path {
        &self.root
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
        let _guard = self.scan_lock.lock().await;
        let root = self.root.clone();
        let host = self.host();
        let snapshot = match tokio::task::spawn_blocking(move || scan(&root, host.as_ref())).await {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(error = %e, "pipeline scan panicked; keeping the previous snapshot");
                return self.snapshot();
            }
        };
        let (valid, invalid) = snapshot.pipelines.values().fold((0, 0), |(v, i), p| {
            if p.is_valid() { (v + 1, i) } else { (v, i + 1) }
        });
        tracing::info!(valid, invalid, dir = %self.root.display(), "pipelines discovered");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = snapshot.clone();
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
        snapshot
    }
}
