//! The git sync settings as the environment gives them (Fast-Flow's names).
//! Each one that is set wins over what the Sync page stored in the database.

use std::collections::HashMap;

use super::ConfigError;
use super::values::{err, in_range, parse_bool};
use crate::secrets::SecretString;

/// Shortest auto-sync interval, seconds (as in Fast-Flow).
pub const MIN_AUTO_SYNC_INTERVAL: u64 = 60;
/// Auto-sync interval when `AUTO_SYNC_ENABLED` is on and `AUTO_SYNC_INTERVAL` unset (Fast-Flow
/// then did not sync at all; 15 minutes is what enabling it should mean).
pub const DEFAULT_AUTO_SYNC_INTERVAL: u64 = 900;
/// Longest auto-sync interval, seconds (one week).
pub const MAX_AUTO_SYNC_INTERVAL: u64 = 7 * 24 * 3600;

/// `GIT_TIMEOUT` default, range: seconds a remote may take to accept a connection
/// and, once connected, to send or take the next data (HTTP(S) remotes).
pub const DEFAULT_GIT_TIMEOUT: u64 = 120;
pub const MIN_GIT_TIMEOUT: u64 = 5;
pub const MAX_GIT_TIMEOUT: u64 = 3600;

/// `GIT_*`, `PIPELINES_SUBDIR`, `AUTO_SYNC_*`, `UV_PRE_HEAT`.
#[derive(Debug, Clone, Default)]
pub struct GitEnv {
    /// `GIT_REPO_URL`; may carry credentials, so it is kept secret and shown stripped.
    pub repo_url: Option<SecretString>,
    pub branch: Option<String>,
    /// `GIT_SYNC_TOKEN`: an HTTPS token.
    pub token: Option<SecretString>,
    /// `GIT_SYNC_DEPLOY_KEY`: an OpenSSH private key.
    pub deploy_key: Option<SecretString>,
    /// `GIT_SSH_KNOWN_HOSTS`: known_hosts lines; when set, host keys are checked strictly.
    pub ssh_known_hosts: Option<String>,
    pub pipelines_subdir: Option<String>,
    pub auto_sync_enabled: Option<bool>,
    /// Seconds, `MIN_AUTO_SYNC_INTERVAL..=MAX_AUTO_SYNC_INTERVAL`.
    pub auto_sync_interval: Option<u64>,
    /// `GIT_WEBHOOK_SECRET`: GitHub's HMAC secret or GitLab's token.
    pub webhook_secret: Option<SecretString>,
    /// `UV_PRE_HEAT` (default on): warm changed requirements after a sync.
    pub uv_pre_heat: bool,
    /// `GITHUB_APP_ID`, `GITHUB_APP_PRIVATE_KEY` (PEM), `GITHUB_APP_INSTALLATION_ID`:
    /// authenticate as a GitHub App installation instead of a token or key.
    pub github_app_id: Option<String>,
    pub github_app_private_key: Option<SecretString>,
    pub github_app_installation_id: Option<String>,
    /// `GITHUB_API_URL` (GitHub Enterprise); GitHub's API by default.
    pub github_api_url: Option<String>,
    /// `GIT_TIMEOUT`, seconds (`MIN_GIT_TIMEOUT..=MAX_GIT_TIMEOUT`).
    pub timeout_secs: u64,
}

impl GitEnv {
    pub(super) fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let secret = |k: &str| get(k).map(SecretString::new);
        let auto_sync_interval = match get("AUTO_SYNC_INTERVAL") {
            None => None,
            raw => Some(in_range(
                raw,
                "AUTO_SYNC_INTERVAL",
                MIN_AUTO_SYNC_INTERVAL,
                MIN_AUTO_SYNC_INTERVAL,
                MAX_AUTO_SYNC_INTERVAL,
                "seconds",
            )?),
        };
        let timeout_secs = in_range(
            get("GIT_TIMEOUT"),
            "GIT_TIMEOUT",
            DEFAULT_GIT_TIMEOUT,
            MIN_GIT_TIMEOUT,
            MAX_GIT_TIMEOUT,
            "seconds",
        )?;
        let auto_sync_enabled = match get("AUTO_SYNC_ENABLED") {
            None => None,
            raw => Some(parse_bool(raw, "AUTO_SYNC_ENABLED")?),
        };
        let uv_pre_heat = match get("UV_PRE_HEAT") {
            None => true,
            raw => parse_bool(raw, "UV_PRE_HEAT")?,
        };
        if let Some(subdir) = get("PIPELINES_SUBDIR") {
            if subdir.split('/').any(|p| p == "..") || subdir.starts_with('/') {
                return Err(err(
                    "PIPELINES_SUBDIR",
                    &subdir,
                    "must be a folder inside the repository (no `..`, not absolute)",
                ));
            }
        }
        Ok(Self {
            repo_url: secret("GIT_REPO_URL"),
            branch: get("GIT_BRANCH"),
            token: secret("GIT_SYNC_TOKEN"),
            // A key pasted into an env file often has literal `\n`s.
            deploy_key: get("GIT_SYNC_DEPLOY_KEY")
                .map(|k| SecretString::new(k.replace("\\n", "\n"))),
            ssh_known_hosts: get("GIT_SSH_KNOWN_HOSTS").map(|k| k.replace("\\n", "\n")),
            pipelines_subdir: get("PIPELINES_SUBDIR"),
            auto_sync_enabled,
            auto_sync_interval,
            webhook_secret: secret("GIT_WEBHOOK_SECRET"),
            uv_pre_heat,
            github_app_id: get("GITHUB_APP_ID"),
            github_app_private_key: secret("GITHUB_APP_PRIVATE_KEY"),
            github_app_installation_id: get("GITHUB_APP_INSTALLATION_ID"),
            github_api_url: get("GITHUB_API_URL"),
            timeout_secs,
        })
    }
}
