//! What the Sync page and `GET /api/sync/repo-config` show of the repository
//! configuration: never a credential, only whether one is set.

use serde::Serialize;

use super::deploy_key::public_key_of;
use super::remote::strip_userinfo;
use super::repo_config::{is_ssh_url, set_by_environment};
use crate::config::GitEnv;

/// What `GET /api/sync/repo-config` shows: never a credential, only whether one is set.
#[derive(Debug, Clone, Serialize)]
pub struct RepoConfigView {
    pub configured: bool,
    pub repo_url: Option<String>,
    pub branch: String,
    pub pipelines_subdir: Option<String>,
    /// Fast-Flow's: `deploy_key` for an SSH URL, else `pat`.
    pub auth_mode: &'static str,
    /// `token`, `deploy_key`, `github_app` or `none`.
    pub credentials: &'static str,
    pub token_set: bool,
    pub deploy_key_set: bool,
    /// The deploy key's public line, to add at the hosting site.
    pub deploy_key_public: Option<String>,
    pub github_app_id: Option<String>,
    pub github_app_installation_id: Option<String>,
    pub github_app_private_key_set: bool,
    pub webhook_secret_set: bool,
    /// Settings the environment fixes (`repo_url`, `branch`, `pipelines_subdir`, `credentials`, `webhook_secret`).
    pub from_environment: Vec<&'static str>,
    /// Whether anything is stored from the Sync page.
    pub stored: bool,
    /// Why the configuration cannot be used, if it cannot.
    pub error: Option<String>,
}

/// The view of the settings in force.
pub fn view(
    env: &GitEnv,
    in_force: &GitEnv,
    stored: bool,
    error: Option<String>,
) -> RepoConfigView {
    let url = in_force
        .repo_url
        .as_ref()
        .map(|u| u.expose().trim().to_string());
    let credentials = if in_force.github_app_id.is_some() {
        "github_app"
    } else if in_force.deploy_key.is_some() {
        "deploy_key"
    } else if in_force.token.is_some() {
        "token"
    } else {
        "none"
    };
    RepoConfigView {
        configured: url.is_some(),
        auth_mode: if url.as_deref().is_some_and(is_ssh_url) {
            "deploy_key"
        } else {
            "pat"
        },
        repo_url: url.as_deref().map(strip_userinfo),
        branch: in_force.branch.clone().unwrap_or_else(|| "main".into()),
        pipelines_subdir: in_force.pipelines_subdir.clone(),
        credentials,
        token_set: in_force.token.is_some(),
        deploy_key_set: in_force.deploy_key.is_some(),
        deploy_key_public: in_force.deploy_key.as_ref().and_then(public_key_of),
        github_app_id: in_force.github_app_id.clone(),
        github_app_installation_id: in_force.github_app_installation_id.clone(),
        github_app_private_key_set: in_force.github_app_private_key.is_some(),
        webhook_secret_set: in_force.webhook_secret.is_some(),
        from_environment: set_by_environment(env),
        stored,
        error,
    }
}
