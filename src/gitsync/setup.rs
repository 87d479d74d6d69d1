//! Building the sync from the configuration, and the auto-sync timer.

use std::sync::Arc;

use super::{Credentials, GitSync, RemoteSpec, SyncError};
use crate::db::Pool;
use crate::pipelines::PipelineRegistry;

/// The sync that the configuration asks for, if any (`GIT_REPO_URL`).
pub fn from_config(
    config: &crate::config::Config,
    pool: Pool,
    registry: Arc<PipelineRegistry>,
) -> Result<Option<Arc<GitSync>>, SyncError> {
    let git = &config.git;
    let Some(url) = &git.repo_url else {
        return Ok(None);
    };
    let credentials = match (&git.token, &git.deploy_key) {
        (Some(_), Some(_)) => {
            return Err(SyncError::Config(
                "set GIT_SYNC_TOKEN (HTTPS) or GIT_SYNC_DEPLOY_KEY (SSH), not both".into(),
            ));
        }
        (Some(token), None) => Credentials::Token(token.clone()),
        (None, Some(key)) => Credentials::SshKey(key.clone()),
        (None, None) => Credentials::None,
    };
    let spec = RemoteSpec::new(
        url.expose(),
        git.branch.as_deref().unwrap_or("main"),
        git.pipelines_subdir.as_deref().unwrap_or_default(),
        credentials,
    )?;
    tracing::info!(repo = %spec.shown_url, branch = %spec.branch, "pipelines come from git");
    Ok(Some(Arc::new(GitSync::new(
        spec,
        git.ssh_known_hosts.clone(),
        &config.data_dir,
        pool,
        registry,
    ))))
}

/// Syncs every `AUTO_SYNC_INTERVAL` seconds when `AUTO_SYNC_ENABLED` (default off).
pub fn auto_sync(
    config: &crate::config::Config,
    sync: Option<Arc<GitSync>>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
    let sync = sync?;
    if config.git.auto_sync_enabled != Some(true) {
        return None;
    }
    let every = std::time::Duration::from_secs(
        config
            .git
            .auto_sync_interval
            .unwrap_or(crate::config::git::DEFAULT_AUTO_SYNC_INTERVAL),
    );
    Some(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            sync.request(super::Trigger::Auto);
        }
    })
}
