//! Where the pipelines come from, switched while the server runs: a git sync
//! built from the environment merged with the stored repository configuration,
//! or `PIPELINES_DIR` as a plain, watched directory. Saving or removing the
//! configuration retires the old source (after its running sync) and starts the
//! new one; until the new one's first sync succeeds, what served keeps serving.

use std::sync::{Arc, PoisonError, RwLock};

use tokio_util::sync::CancellationToken;

use super::repo_config::{self, ChangeProblem, RepoConfigChange, RepoConfigView};
use super::setup::{SyncParts, build};
use super::{GitSync, HandedOut, SyncError, SyncOutcome};
use crate::config::{Config, GitEnv};
use crate::db::{self, Pool, git_repo_config::StoredRepoConfig};
use crate::pipelines::PipelineRegistry;
use crate::runner::Runner;
use crate::secrets::Cipher;

/// Why storing a configuration failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Refused(ChangeProblem),
    #[error("{0}")]
    Unusable(SyncError),
    #[error("the database could not store the configuration: {0}")]
    Database(String),
}

/// The settings in force and what could not be read of them.
struct InForce {
    git: GitEnv,
    stored: bool,
    unreadable: Option<String>,
}

/// The source of the pipelines and its tasks.
pub struct Deployment {
    config: Arc<Config>,
    pool: Pool,
    registry: Arc<PipelineRegistry>,
    runner: Runner,
    cipher: Arc<Cipher>,
    shutdown: CancellationToken,
    current: RwLock<Option<Arc<GitSync>>>,
    /// Cancels the current sync's tasks (its worker and auto-sync).
    tasks: std::sync::Mutex<CancellationToken>,
    /// Cancels the `PIPELINES_DIR` watch (which also ends by itself once the
    /// registry serves something else).
    watch: std::sync::Mutex<CancellationToken>,
    /// Why the configuration in force cannot be used, if it cannot.
    problem: RwLock<Option<String>>,
    /// One switch at a time, in the order they were asked for.
    switching: tokio::sync::Mutex<()>,
    /// One change of the stored configuration at a time (each reads, changes and
    /// writes the row: two at once would lose one's credentials).
    storing: tokio::sync::Mutex<()>,
    handed_out: Arc<HandedOut>,
}

impl Deployment {
    /// Refuses an environment that cannot work (the server should not start so);
    /// a stored configuration that cannot work is shown on the Sync page instead.
    pub fn new(
        config: Arc<Config>,
        pool: Pool,
        registry: Arc<PipelineRegistry>,
        runner: Runner,
        cipher: Arc<Cipher>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, SyncError> {
        let this = Self {
            tasks: std::sync::Mutex::new(shutdown.child_token()),
            watch: std::sync::Mutex::new(shutdown.child_token()),
            config,
            pool,
            registry,
            runner,
            cipher,
            shutdown,
            current: RwLock::new(None),
            problem: RwLock::new(None),
            switching: tokio::sync::Mutex::new(()),
            storing: tokio::sync::Mutex::new(()),
            handed_out: Default::default(),
        };
        this.build(&this.config.git)?;
        if this.env().repo_url.is_none() && repo_config::env_has_credentials(this.env()) {
            tracing::warn!(
                "GIT_SYNC_TOKEN / GIT_SYNC_DEPLOY_KEY / GITHUB_APP_* are set without GIT_REPO_URL: they are not used (environment credentials only go to the environment's repository); set GIT_REPO_URL too, or store the credentials on the Sync page"
            );
        }
        Ok(Arc::new(this))
    }

    /// The git sync in force, `None` when the pipelines come from `PIPELINES_DIR`.
    pub fn current(&self) -> Option<Arc<GitSync>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Why the configuration in force cannot be used.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn env(&self) -> &GitEnv {
        &self.config.git
    }

    fn build(&self, git: &GitEnv) -> Result<Option<GitSync>, SyncError> {
        build(
            git,
            SyncParts {
                config: &self.config,
                pool: self.pool.clone(),
                registry: self.registry.clone(),
                runner: &self.runner,
                handed_out: self.handed_out.clone(),
            },
        )
    }

    /// The settings in force (environment over stored), whether any are stored,
    /// and which stored credentials the key cannot open.
    async fn in_force(&self) -> Result<InForce, SyncError> {
        let stored = db::git_repo_config::get(&self.pool)
            .await
            .map_err(|e| SyncError::Database(e.to_string()))?;
        let Some(stored) = stored else {
            return Ok(InForce {
                git: self.env().clone(),
                stored: false,
                unreadable: None,
            });
        };
        let (decrypted, unreadable) = repo_config::decrypt(&stored, &self.cipher);
        Ok(InForce {
            git: repo_config::merged(self.env(), &decrypted),
            stored: true,
            unreadable: repo_config::unreadable_problem(&unreadable),
        })
    }

    /// The sync the configuration in force asks for; notes what cannot be read.
    async fn build_in_force(&self) -> Result<Option<Arc<GitSync>>, SyncError> {
        let in_force = self.in_force().await?;
        if let Some(problem) = &in_force.unreadable {
            tracing::error!("{problem}");
        }
        self.set_problem(in_force.unreadable);
        Ok(self.build(&in_force.git)?.map(Arc::new))
    }

    /// At start: serves the configuration in force (the last snapshot at once if
    /// it is on disk), or `PIPELINES_DIR`.
    pub async fn start(self: Arc<Self>) {
        let _one = self.switching.lock().await;
        let sync = match self.build_in_force().await {
            Ok(sync) => sync,
            Err(e) => {
                tracing::error!(error = %e, "git sync cannot start; fix it on the Sync page");
                self.set_problem(Some(e.to_string()));
                // Never PIPELINES_DIR's files in place of the repository's.
                self.serve_empty().await;
                return;
            }
        };
        match sync {
            Some(sync) => {
                tracing::info!(repo = %sync.spec().shown_url, branch = %sync.spec().branch, "pipelines come from git");
                self.run_sync_tasks(&sync).await;
                if sync.serve_last_snapshot().await {
                    return;
                }
                if self.env().repo_url.is_some() {
                    sync.first_sync().await;
                    return;
                }
                // Stored from the page and never synced: PIPELINES_DIR served before
                // it was stored, and keeps serving until the repository syncs.
                sync.take_over(None);
                self.follow_directory();
                tokio::spawn(async move { sync.sync("startup").await });
            }
            None => self.follow_directory(),
        }
    }

    /// Switches to the configuration in force now (after it was stored or
    /// removed) and, for a repository and `first_sync`, runs its first sync.
    pub async fn apply(self: &Arc<Self>, first_sync: bool) -> Option<SyncOutcome> {
        let _one = self.switching.lock().await;
        let next = match self.build_in_force().await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "the repository configuration cannot be used");
                self.set_problem(Some(e.to_string()));
                return None;
            }
        };
        // The old sync stays in force (shown, its status honest) until its running
        // sync has ended; then the new source takes over.
        let old = self.current();
        self.stop_tasks();
        let previous = match old {
            Some(old) => {
                old.retire().await;
                Some(old.status())
            }
            None => None,
        };
        match next {
            Some(sync) => {
                sync.take_over(previous.as_ref());
                tracing::info!(repo = %sync.spec().shown_url, branch = %sync.spec().branch, "the repository configuration changed; syncing");
                self.run_sync_tasks(&sync).await;
                if first_sync {
                    Some(sync.sync("config").await)
                } else {
                    None
                }
            }
            None => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = None;
                // No snapshot is active any more: a later restart must not serve one.
                if let Err(e) = db::gitsync::clear_active(&self.pool).await {
                    tracing::error!(error = %e, "forgetting the active git snapshot");
                }
                let git_dir = self.config.data_dir.join("git");
                let _ = tokio::task::spawn_blocking(move || {
                    super::remove_other_mirrors(&git_dir, None)
                })
                .await;
                tracing::info!(dir = %self.config.pipelines_dir.display(), "no repository configured; the pipelines come from PIPELINES_DIR");
                self.registry
                    .switch_source(self.config.pipelines_dir.clone(), None)
                    .await;
                self.follow_directory();
                None
            }
        }
    }

    /// [`apply`](Self::apply) on a task of its own (a request that ends never cuts
    /// it halfway); waits up to `wait`, then `Err(())` while it goes on.
    pub async fn apply_detached(
        self: &Arc<Self>,
        first_sync: bool,
        wait: std::time::Duration,
    ) -> Result<Option<SyncOutcome>, ()> {
        let this = self.clone();
        let task = tokio::spawn(async move { this.apply(first_sync).await });
        match tokio::time::timeout(wait, task).await {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => Err(()),
        }
    }

    fn set_problem(&self, problem: Option<String>) {
        *self.problem.write().unwrap_or_else(PoisonError::into_inner) = problem;
    }

    fn stop_tasks(&self) -> CancellationToken {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.cancel();
        *tasks = self.shutdown.child_token();
        tasks.clone()
    }

    async fn run_sync_tasks(&self, sync: &Arc<GitSync>) {
        let token = self.stop_tasks();
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(sync.clone());
        sync.load_auto_sync(self.env()).await;
        tokio::spawn(sync.clone().serve_requests(token.clone()));
        tokio::spawn(sync.clone().run_auto_sync(token));
    }

    fn follow_directory(&self) {
        let token = {
            let mut watch = self.watch.lock().unwrap_or_else(PoisonError::into_inner);
            watch.cancel();
            *watch = self.shutdown.child_token();
            watch.clone()
        };
        tokio::spawn(crate::pipelines::discover_and_follow(
            self.registry.clone(),
            token,
        ));
    }

    async fn serve_empty(&self) {
        let empty = self.config.data_dir.join("git").join("empty");
        if let Err(e) = std::fs::create_dir_all(&empty) {
            tracing::error!(error = %e, "creating {}", empty.display());
        }
        self.registry.switch_source(empty, None).await;
    }

    /// What `GET /api/sync/repo-config` shows.
    pub async fn view(&self) -> RepoConfigView {
        match self.in_force().await {
            Ok(f) => repo_config::view(self.env(), &f.git, f.stored, self.problem()),
            Err(e) => repo_config::view(self.env(), self.env(), true, Some(e.to_string())),
        }
    }

    /// The stored configuration (without what the key cannot open) with `change` made.
    async fn changed(&self, change: &RepoConfigChange) -> Result<StoredRepoConfig, StoreError> {
        let current = db::git_repo_config::get(&self.pool)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))?;
        let current = current.map(|c| repo_config::without_unreadable(c, &self.cipher));
        repo_config::changed(self.env(), current, change, &self.cipher).map_err(StoreError::Refused)
    }

    /// Checks `change` (against the environment, and that a sync can be built
    /// from the result) and stores it; [`apply`](Self::apply) puts it in force.
    pub async fn store(&self, change: &RepoConfigChange) -> Result<(), StoreError> {
        let _one = self.storing.lock().await;
        let next = self.changed(change).await?;
        self.check_and_put(next).await
    }

    /// A new Ed25519 deploy key for `change`'s SSH URL, stored with the rest of
    /// `change`; returns its public line.
    pub async fn store_new_deploy_key(
        &self,
        change: &RepoConfigChange,
    ) -> Result<String, StoreError> {
        let url = change
            .repo_url
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if !(url.starts_with("git@") || url.starts_with("ssh://")) {
            return Err(StoreError::Refused(ChangeProblem::Invalid(
                "a deploy key needs an SSH repo_url (git@host:owner/repo.git or ssh://…); over HTTPS use a token".into(),
            )));
        }
        if change.token.is_some() || change.deploy_key.is_some() {
            return Err(StoreError::Refused(ChangeProblem::Invalid(
                "a key is being generated: leave token and deploy_key out".into(),
            )));
        }
        let (private, public) =
            super::generate_deploy_key().map_err(|e| StoreError::Unusable(SyncError::Config(e)))?;
        let with_key = RepoConfigChange {
            repo_url: change.repo_url.clone(),
            branch: change.branch.clone(),
            pipelines_subdir: change.pipelines_subdir.clone(),
            deploy_key: Some(private.expose().to_string()),
            webhook_secret: change.webhook_secret.clone(),
            ..RepoConfigChange::default()
        };
        self.store(&with_key).await?;
        Ok(public)
    }

    async fn check_and_put(&self, next: StoredRepoConfig) -> Result<(), StoreError> {
        let (decrypted, _) = repo_config::decrypt(&next, &self.cipher);
        self.build(&repo_config::merged(self.env(), &decrypted))
            .map_err(StoreError::Unusable)?;
        db::git_repo_config::put(&self.pool, &next)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))
    }

    /// Forgets the stored configuration; whether there was one.
    pub async fn remove_stored(&self) -> Result<bool, StoreError> {
        let _one = self.storing.lock().await;
        db::git_repo_config::delete(&self.pool)
            .await
            .map_err(|e| StoreError::Database(e.to_string()))
    }

    /// `git ls-remote` with `change` as if it were stored (nothing is stored):
    /// the branches, or why the remote cannot be used.
    pub async fn test_candidate(
        &self,
        change: &RepoConfigChange,
    ) -> Result<(String, Vec<String>), StoreError> {
        let next = self.changed(change).await?;
        let (decrypted, _) = repo_config::decrypt(&next, &self.cipher);
        let Some(candidate) = self
            .build(&repo_config::merged(self.env(), &decrypted))
            .map_err(StoreError::Unusable)?
        else {
            return Err(StoreError::Refused(ChangeProblem::Invalid(
                "repo_url is required".into(),
            )));
        };
        let branch = candidate.spec().branch.clone();
        let branches = candidate
            .test_connection()
            .await
            .map_err(StoreError::Unusable)?;
        Ok((branch, branches))
    }
}
