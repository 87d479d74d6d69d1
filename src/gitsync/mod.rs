//! Git sync: the pipelines come from a branch of a git repository. Each new
//! commit is fetched into a bare mirror, written out into its own snapshot
//! directory and then made active in one step (the registry rescans it); runs
//! keep the snapshot they started with. One sync at a time: a second request
//! while one runs is told so instead of waiting.

mod auto;
mod changes;
mod deploy_key;
pub mod deployment;
mod error;
mod fetch;
pub mod github_app;
pub mod host_keys;
mod mirror;
pub mod remote;
pub mod repo_config;
mod repo_config_view;
mod setup;
mod snapshot;
mod startup;
mod trust;
pub mod webhook;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::gitsync::{ActiveCommit, NewSyncLogEntry, SyncLogEntry};
use crate::db::{self, Pool};
use crate::pipelines::{PipelineRegistry, Revision};
pub use auto::{AutoSync, AutoSyncChange};
use changes::pipeline_changes;
pub use deploy_key::{generate_deploy_key, public_key_of};
pub use deployment::Deployment;
pub use error::SyncError;
use host_keys::HostKeyPolicy;
use mirror::{mirror_name, remove_other_mirrors};
pub use remote::{Credentials, RemoteSpec};

/// What asked for a sync in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Webhook,
    Auto,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Auto => "auto",
        }
    }
}

/// What `sync` did.
pub enum SyncOutcome {
    /// Another sync was running; nothing was done.
    AlreadyRunning,
    /// The sync ran (successfully or not) and was logged.
    Done(Box<SyncLogEntry>),
    /// The repository configuration changed meanwhile; this sync's settings are gone.
    Replaced,
}

/// The state shown on the Sync page and `GET /api/sync/status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub repo_url: String,
    pub branch: String,
    pub pipelines_subdir: String,
    pub commit: Option<String>,
    pub subject: Option<String>,
    pub commit_time: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_sync_ok: Option<bool>,
    pub last_error: Option<String>,
    pub running: bool,
    /// `commit` is the previous configuration's: this one has not synced successfully yet.
    pub from_previous_configuration: bool,
}

pub(crate) type FolderIds = std::collections::BTreeMap<String, git2::Oid>;

/// Revisions handed to pipelines, shared by the syncs of successive configurations:
/// a snapshot whose revision is still alive (a run or the registry holds it) stays.
pub(crate) type HandedOut = std::sync::Mutex<Vec<(String, Weak<Revision>)>>;

/// The git sync of one server.
pub struct GitSync {
    spec: RemoteSpec,
    /// `GIT_SSH_KNOWN_HOSTS`: when set, host keys are checked strictly against it.
    known_hosts: Option<String>,
    /// `DATA_DIR/git`: `mirror.git` and `snapshots/`.
    git_dir: PathBuf,
    pool: Pool,
    registry: Arc<PipelineRegistry>,
    busy: tokio::sync::Mutex<()>,
    /// Wakes the worker for a requested sync; requests made while it syncs
    /// coalesce into one more sync after it.
    requested: tokio::sync::Notify,
    requested_by: std::sync::Mutex<Option<Trigger>>,
    /// Warms changed requirements after a sync (`UV_PRE_HEAT`); `None` when off.
    preheat: Option<crate::runner::Runner>,
    /// Auto-sync as in force now, and a wake-up when it changes.
    auto: RwLock<AutoSync>,
    auto_changed: tokio::sync::Notify,
    status: RwLock<SyncStatus>,
    handed_out: Arc<HandedOut>,
    /// `GIT_WEBHOOK_SECRET` or the stored one; `None`: the push webhook is off.
    webhook_secret: Option<crate::secrets::SecretString>,
    /// Set when another configuration takes over: no more syncs from this one.
    retired: std::sync::atomic::AtomicBool,
    /// The registry serves another configuration's pipelines: the first good sync
    /// activates its commit even if it is the same one (the folder may differ).
    serving_elsewhere: std::sync::atomic::AtomicBool,
}

impl GitSync {
    pub fn new(
        spec: RemoteSpec,
        known_hosts: Option<String>,
        data_dir: &Path,
        pool: Pool,
        registry: Arc<PipelineRegistry>,
        handed_out: Arc<HandedOut>,
    ) -> Self {
        let status = SyncStatus {
            repo_url: spec.shown_url.clone(),
            branch: spec.branch.clone(),
            pipelines_subdir: spec.subdir.clone(),
            ..SyncStatus::default()
        };
        Self {
            spec,
            known_hosts,
            git_dir: data_dir.join("git"),
            pool,
            registry,
            busy: tokio::sync::Mutex::new(()),
            requested: tokio::sync::Notify::new(),
            requested_by: std::sync::Mutex::new(None),
            preheat: None,
            auto: RwLock::new(AutoSync::default()),
            auto_changed: tokio::sync::Notify::new(),
            status: RwLock::new(status),
            handed_out,
            webhook_secret: None,
            retired: Default::default(),
            serving_elsewhere: Default::default(),
        }
    }

    /// Takes over from `previous` (the configuration this one replaces): its
    /// commit is what serves until this one's first sync succeeds.
    pub(crate) fn take_over(&self, previous: Option<&SyncStatus>) {
        if let Some(previous) = previous {
            let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
            status.commit = previous.commit.clone();
            status.subject = previous.subject.clone();
            status.commit_time = previous.commit_time;
        }
        self.serving_elsewhere
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Verifies push webhooks with `secret`.
    pub fn with_webhook_secret(mut self, secret: Option<crate::secrets::SecretString>) -> Self {
        self.webhook_secret = secret;
        self
    }

    pub fn webhook_secret(&self) -> Option<&crate::secrets::SecretString> {
        self.webhook_secret.as_ref()
    }

    /// Stops this sync for good, once the one running (if any) has ended.
    pub(crate) async fn retire(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _running = self.busy.lock().await;
    }

    fn is_retired(&self) -> bool {
        self.retired.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Pre-heats through `runner` after each sync that changes requirements.
    pub fn with_preheat(mut self, runner: crate::runner::Runner) -> Self {
        self.preheat = Some(runner);
        self
    }

    /// The warm-ups' states by pipeline (empty when pre-heating is off).
    pub fn preheat_states(
        &self,
    ) -> std::collections::BTreeMap<String, crate::runner::preheat::WarmState> {
        self.preheat
            .as_ref()
            .map(|r| r.deps().preheat.states())
            .unwrap_or_default()
    }

    pub fn spec(&self) -> &RemoteSpec {
        &self.spec
    }

    pub fn status(&self) -> SyncStatus {
        let mut status = self
            .status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        status.running = self.busy.try_lock().is_err();
        status.from_previous_configuration = self
            .serving_elsewhere
            .load(std::sync::atomic::Ordering::SeqCst);
        status
    }

    fn snapshots_dir(&self) -> PathBuf {
        self.git_dir.join("snapshots")
    }

    /// This repository's own bare mirror (`DATA_DIR/git/mirror-<hash of the URL>.git`):
    /// repositories never share objects or refs, and a replaced one's is removed.
    fn mirror_dir(&self) -> PathBuf {
        self.git_dir.join(mirror_name(&self.spec.shown_url))
    }

    /// The folder of a snapshot that holds the pipeline folders.
    fn pipelines_root(snapshot: &Path, subdir: &str) -> PathBuf {
        if subdir.is_empty() {
            snapshot.to_path_buf()
        } else {
            snapshot.join(subdir)
        }
    }

    /// Makes `dir` (the snapshot of `active`) the pipelines' source.
    async fn activate(&self, dir: &Path, active: &ActiveCommit) {
        let revision = Arc::new(Revision {
            sha: active.commit_sha.clone(),
            branch: active.branch.clone(),
            subject: active.subject.clone(),
        });
        self.handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((active.commit_sha.clone(), Arc::downgrade(&revision)));
        // The status names the commit before pipelines are served from it, so whoever
        // sees the new pipelines also sees their commit.
        {
            let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
            status.commit = Some(active.commit_sha.clone());
            status.subject = Some(active.subject.clone());
            status.commit_time = active.commit_time;
        }
        let subdir = active
            .pipelines_subdir
            .as_deref()
            .unwrap_or(&self.spec.subdir);
        self.registry
            .switch_source(Self::pipelines_root(dir, subdir), Some(revision))
            .await;
    }

    /// Asks for a sync soon, without waiting for it. If one is running, one more
    /// follows it (the push may have come after its fetch); many requests meanwhile
    /// make one sync.
    pub fn request(&self, trigger: Trigger) {
        *self
            .requested_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(trigger);
        self.requested.notify_one();
    }

    /// Runs the requested syncs, one after another, until shutdown.
    pub async fn serve_requests(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.requested.notified() => {}
            }
            let trigger = self
                .requested_by
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or(Trigger::Auto);
            let guard = self.busy.lock().await;
            if self.is_retired() {
                return;
            }
            self.sync_locked(guard, trigger.as_str()).await;
        }
    }

    /// [`sync`](Self::sync) on a task of its own, so a request that ends (its
    /// timeout, a client that leaves) never cuts a sync halfway; waits up to `wait`
    /// for the outcome, `None` if the sync goes on in the background.
    pub async fn sync_detached(
        self: &Arc<Self>,
        trigger: &'static str,
        wait: std::time::Duration,
    ) -> Option<SyncOutcome> {
        let this = self.clone();
        let task = tokio::spawn(async move { this.sync(trigger).await });
        tokio::time::timeout(wait, task)
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Fetches the branch and, when it moved, switches to the new commit; logs the
    /// sync. While another sync runs, returns at once with `AlreadyRunning`.
    pub async fn sync(self: &Arc<Self>, trigger: &str) -> SyncOutcome {
        let Ok(guard) = self.busy.try_lock() else {
            return SyncOutcome::AlreadyRunning;
        };
        if self.is_retired() {
            return SyncOutcome::Replaced;
        }
        self.sync_locked(guard, trigger).await
    }

    async fn sync_locked(
        self: &Arc<Self>,
        _guard: tokio::sync::MutexGuard<'_, ()>,
        trigger: &str,
    ) -> SyncOutcome {
        let started_at = Utc::now();
        let clock = Instant::now();
        let old = self
            .status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .commit
            .clone();
        let before = self.registry.snapshot();
        let result = self.fetch_and_switch(old.as_deref()).await;
        let after = self.registry.snapshot();
        if let (Some(runner), Ok(_)) = (&self.preheat, &result) {
            runner.preheat(changes::requirements_changed(&before, &after));
        }
        let (success, new_commit, subject, error, (added, changed, removed)) = match &result {
            Ok((active, ids)) => (
                true,
                Some(active.commit_sha.clone()),
                Some(active.subject.clone()),
                None,
                pipeline_changes(&before, &after, ids),
            ),
            Err(e) => (false, None, None, Some(e.to_string()), Default::default()),
        };
        if let Some(e) = &error {
            tracing::warn!(trigger, error = %e, "git sync failed; the previous snapshot keeps serving");
        }
        crate::prometheus::metrics().git_synced(success);
        let entry = NewSyncLogEntry {
            started_at,
            duration_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            trigger,
            success,
            branch: &self.spec.branch,
            old_commit: old.as_deref(),
            new_commit: new_commit.as_deref().or(old.as_deref()),
            subject: subject.as_deref(),
            added: &added,
            changed: &changed,
            removed: &removed,
            error: error.as_deref(),
        };
        {
            let mut status = self.status.write().unwrap_or_else(PoisonError::into_inner);
            status.last_sync_at = Some(started_at);
            status.last_sync_ok = Some(success);
            status.last_error = error.clone();
        }
        let logged = match db::gitsync::add_log(&self.pool, &entry).await {
            Ok(logged) => logged,
            Err(e) => {
                tracing::error!(error = %e, "recording the git sync log entry");
                SyncLogEntry {
                    id: 0,
                    started_at,
                    duration_ms: entry.duration_ms,
                    trigger: trigger.to_string(),
                    success,
                    branch: self.spec.branch.clone(),
                    old_commit: old.clone(),
                    new_commit,
                    subject,
                    added: sqlx::types::Json(added),
                    changed: sqlx::types::Json(changed),
                    removed: sqlx::types::Json(removed),
                    error,
                }
            }
        };
        // The previous scan's pipelines hold its revision: let go of them first, or
        // its snapshot would stay until the next sync.
        drop((before, after));
        self.collect_garbage().await;
        if success {
            let git_dir = self.git_dir.clone();
            let keep = mirror_name(&self.spec.shown_url);
            let _ =
                tokio::task::spawn_blocking(move || remove_other_mirrors(&git_dir, Some(&keep)))
                    .await;
        }
        SyncOutcome::Done(Box::new(logged))
    }

    async fn fetch_and_switch(
        &self,
        old: Option<&str>,
    ) -> Result<(ActiveCommit, (FolderIds, FolderIds)), SyncError> {
        let spec = self.spec.with_fresh_token().await?;
        let mirror_dir = self.mirror_dir();
        let snapshots = self.snapshots_dir();
        let old = old.map(str::to_string);
        let policy = self.host_key_policy().await?;
        let pin = matches!(policy, HostKeyPolicy::Pinned(None));
        let (written, presented) = tokio::task::spawn_blocking(move || {
            let session = fetch::Session::new(&spec, &policy);
            let written = write::fetch_and_write(&session, &mirror_dir, &snapshots, old);
            (written, session.presented.into_inner())
        })
        .await
        .map_err(|e| SyncError::Repository(format!("the sync task failed: {e}")))?;
        if pin {
            self.pin(presented).await?;
        }
        let (tip, sha, dir, old, ids) = written?;
        let active = ActiveCommit {
            repo_url: self.spec.shown_url.clone(),
            pipelines_subdir: Some(self.spec.subdir.clone()),
            commit_sha: sha.clone(),
            branch: self.spec.branch.clone(),
            subject: tip.subject.clone(),
            commit_time: DateTime::from_timestamp(tip.time, 0),
            synced_at: Utc::now(),
        };
        // Recorded before it is served: after a restart the same snapshot serves.
        db::gitsync::set_active(&self.pool, &active)
            .await
            .map_err(|e| SyncError::Database(e.to_string()))?;
        let elsewhere = self
            .serving_elsewhere
            .swap(false, std::sync::atomic::Ordering::SeqCst);
        if elsewhere || old.as_deref() != Some(sha.as_str()) {
            self.activate(&dir, &active).await;
        }
        Ok((active, ids))
    }
}
