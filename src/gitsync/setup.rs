//! Building a sync from git settings (the environment's, or those merged with
//! the stored repository configuration).

use std::sync::Arc;

use super::github_app::GitHubApp;
use super::{Credentials, GitSync, HandedOut, RemoteSpec, SyncError};
use crate::config::GitEnv;
use crate::db::Pool;
use crate::pipelines::PipelineRegistry;

/// What a sync is built with besides its settings.
pub(super) struct SyncParts<'a> {
    pub config: &'a crate::config::Config,
    pub pool: Pool,
    pub registry: Arc<PipelineRegistry>,
    pub runner: &'a crate::runner::Runner,
    pub handed_out: Arc<HandedOut>,
}

/// The sync `git` asks for, `None` without a repository URL; checks everything
/// that can be checked without the network.
pub(super) fn build(git: &GitEnv, parts: SyncParts<'_>) -> Result<Option<GitSync>, SyncError> {
    let Some(url) = &git.repo_url else {
        return Ok(None);
    };
    super::fetch::set_network_timeouts(git.timeout_secs);
    let app = match (
        &git.github_app_id,
        &git.github_app_private_key,
        &git.github_app_installation_id,
    ) {
        (None, None, None) => None,
        (Some(id), Some(key), Some(installation)) => Some(Arc::new(GitHubApp::new(
            id,
            key,
            installation,
            git.github_api_url.as_deref(),
        )?)),
        _ => {
            return Err(SyncError::Config(
                "a GitHub App needs all of GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID".into(),
            ));
        }
    };
    let given = [git.token.is_some(), git.deploy_key.is_some(), app.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(SyncError::Config(
            "set one of GIT_SYNC_TOKEN (HTTPS), GIT_SYNC_DEPLOY_KEY (SSH) or a GitHub App, not several".into(),
        ));
    }
    let credentials = match (&git.token, &git.deploy_key, app) {
        (Some(token), _, _) => Credentials::Token(token.clone()),
        (_, Some(key), _) => Credentials::SshKey(key.clone()),
        (_, _, Some(app)) => Credentials::GitHubApp(app),
        (None, None, None) => Credentials::None,
    };
    let spec = RemoteSpec::new(
        url.expose(),
        git.branch.as_deref().unwrap_or("main"),
        git.pipelines_subdir.as_deref().unwrap_or_default(),
        credentials,
    )?;
    let sync = GitSync::new(
        spec,
        git.ssh_known_hosts.clone(),
        &parts.config.data_dir,
        parts.pool,
        parts.registry,
        parts.handed_out,
    )
    .with_webhook_secret(git.webhook_secret.clone());
    Ok(Some(if git.uv_pre_heat {
        sync.with_preheat(parts.runner.clone())
    } else {
        sync
    }))
}
