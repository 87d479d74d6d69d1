//! Building the sync from the configuration.

use std::sync::Arc;

use super::{Credentials, GitSync, RemoteSpec, SyncError};
use crate::db::Pool;
use crate::pipelines::PipelineRegistry;

/// The sync that the configuration asks for, if any (`GIT_REPO_URL`).
pub fn from_config(
    config: &crate::config::Config,
    pool: Pool,
    registry: Arc<PipelineRegistry>,
    runner: &crate::runner::Runner,
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
    let sync = GitSync::new(
        spec,
        git.ssh_known_hosts.clone(),
        &config.data_dir,
        pool,
        registry,
    );
    let sync = if git.uv_pre_heat {
        sync.with_preheat(runner.clone())
    } else {
        sync
    };
    Ok(Some(Arc::new(sync)))
}
