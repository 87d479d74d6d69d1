//! The repository configuration: what the environment sets, what the Sync page
//! stored (credentials as Fernet tokens), and the two merged into the settings
//! in force. Each environment variable that is set wins; the credentials count
//! as one setting, so an environment token is never mixed with a stored key.

use serde::Deserialize;

use super::deploy_key::check_deploy_key;
use super::remote::{check_subdir, is_supported_url, origin, strip_userinfo};
use crate::config::GitEnv;
use crate::db::git_repo_config::StoredRepoConfig;
use crate::secrets::{Cipher, SecretString};

/// Longest credential accepted (an RSA-4096 PEM is about 3.3 KiB).
pub(super) const MAX_SECRET_LEN: usize = 16 * 1024;
/// Longest id, branch or folder accepted.
const MAX_FIELD_LEN: usize = 512;

/// `POST /api/sync/repo-config` (Fast-Flow's fields, and ours for the GitHub App
/// and the webhook secret). URL, branch and folder are replaced as given; a
/// credential left out or empty stays as stored, a new one replaces the other kinds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfigChange {
    pub repo_url: Option<String>,
    pub branch: Option<String>,
    pub pipelines_subdir: Option<String>,
    pub token: Option<String>,
    pub deploy_key: Option<String>,
    pub github_app_id: Option<String>,
    pub github_app_installation_id: Option<String>,
    pub github_app_private_key: Option<String>,
    pub webhook_secret: Option<String>,
    /// Forget the stored credentials (a public repository).
    #[serde(default)]
    pub remove_credentials: bool,
    #[serde(default)]
    pub remove_webhook_secret: bool,
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeProblem {
    /// The environment sets this; it wins, so storing it would have no effect.
    SetByEnvironment(String),
    Invalid(String),
}

impl std::fmt::Display for ChangeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SetByEnvironment(m) | Self::Invalid(m) => f.write_str(m),
        }
    }
}

/// The stored configuration with its credentials decrypted. A credential the
/// key cannot open (the key was changed) is left out and named, so the rest
/// still works: the last snapshot serves, and the page asks for it again.
pub fn decrypt(stored: &StoredRepoConfig, cipher: &Cipher) -> (GitEnv, Vec<&'static str>) {
    let mut unreadable = Vec::new();
    let mut open = |v: &Option<String>, name: &'static str| {
        let token = v.as_deref()?;
        cipher
            .decrypt(token)
            .map_err(|_| unreadable.push(name))
            .ok()
    };
    let token = open(&stored.token_encrypted, "token");
    let deploy_key = open(&stored.deploy_key_encrypted, "deploy_key");
    let app_key = open(
        &stored.github_app_private_key_encrypted,
        "github_app_private_key",
    );
    let webhook_secret = open(&stored.webhook_secret_encrypted, "webhook_secret");
    // An app without its key is no credential at all.
    let app = |v: &Option<String>| app_key.as_ref().and(v.clone());
    let git = GitEnv {
        repo_url: stored.repo_url.clone().map(SecretString::new),
        branch: stored.branch.clone(),
        pipelines_subdir: stored.pipelines_subdir.clone(),
        token,
        deploy_key,
        github_app_id: app(&stored.github_app_id),
        github_app_installation_id: app(&stored.github_app_installation_id),
        github_app_private_key: app_key.clone(),
        webhook_secret,
        ..GitEnv::default()
    };
    (git, unreadable)
}

/// Why `unreadable` fields are missing, for the Sync page.
pub fn unreadable_problem(unreadable: &[&str]) -> Option<String> {
    (!unreadable.is_empty()).then(|| {
        format!(
            "the stored {} cannot be decrypted with the current ENCRYPTION_KEY (was the key changed?): enter {} again and save",
            unreadable.join(", "),
            if unreadable.len() == 1 { "it" } else { "them" }
        )
    })
}

/// `stored` without the credentials the key cannot open (saving drops them).
pub fn without_unreadable(mut stored: StoredRepoConfig, cipher: &Cipher) -> StoredRepoConfig {
    let readable = |v: &mut Option<String>| {
        if v.as_deref().is_some_and(|t| cipher.decrypt(t).is_err()) {
            *v = None;
        }
    };
    readable(&mut stored.token_encrypted);
    readable(&mut stored.deploy_key_encrypted);
    readable(&mut stored.webhook_secret_encrypted);
    readable(&mut stored.github_app_private_key_encrypted);
    if stored.github_app_private_key_encrypted.is_none() {
        stored.github_app_id = None;
        stored.github_app_installation_id = None;
    }
    stored
}

/// Credentials from the environment go with the environment's `GIT_REPO_URL`
/// only: never to a URL stored from the page, which anyone who may change the
/// configuration could point at their own host.
pub fn env_credentials_apply(env: &GitEnv) -> bool {
    env.repo_url.is_some() && env_has_credentials(env)
}

pub fn env_has_credentials(env: &GitEnv) -> bool {
    env.token.is_some()
        || env.deploy_key.is_some()
        || env.github_app_id.is_some()
        || env.github_app_private_key.is_some()
        || env.github_app_installation_id.is_some()
}

/// The settings in force: `env`'s where set, else `stored`'s.
pub fn merged(env: &GitEnv, stored: &GitEnv) -> GitEnv {
    let mut out = env.clone();
    out.repo_url = env.repo_url.clone().or_else(|| stored.repo_url.clone());
    out.branch = env.branch.clone().or_else(|| stored.branch.clone());
    out.pipelines_subdir = env
        .pipelines_subdir
        .clone()
        .or_else(|| stored.pipelines_subdir.clone());
    out.webhook_secret = env
        .webhook_secret
        .clone()
        .or_else(|| stored.webhook_secret.clone());
    if !env_credentials_apply(env) {
        out.token = stored.token.clone();
        out.deploy_key = stored.deploy_key.clone();
        out.github_app_id = stored.github_app_id.clone();
        out.github_app_installation_id = stored.github_app_installation_id.clone();
        out.github_app_private_key = stored.github_app_private_key.clone();
    }
    out
}

/// The settings the environment fixes, by their API field names.
pub fn set_by_environment(env: &GitEnv) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut add = |set: bool, name| {
        if set {
            out.push(name)
        }
    };
    add(env.repo_url.is_some(), "repo_url");
    add(env.branch.is_some(), "branch");
    add(env.pipelines_subdir.is_some(), "pipelines_subdir");
    add(env_credentials_apply(env), "credentials");
    add(env.webhook_secret.is_some(), "webhook_secret");
    out
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub(super) fn is_ssh_url(url: &str) -> bool {
    url.starts_with("ssh://") || url.starts_with("git@")
}

/// `current` (as stored, encrypted) with `change` made; refuses what the
/// environment fixes and values that cannot work.
pub fn changed(
    env: &GitEnv,
    current: Option<StoredRepoConfig>,
    change: &RepoConfigChange,
    cipher: &Cipher,
) -> Result<StoredRepoConfig, ChangeProblem> {
    let mut next = current.unwrap_or_default();
    let previous_url = next
        .repo_url
        .clone()
        .or_else(|| env.repo_url.as_ref().map(|u| u.expose().trim().to_string()));
    let fixed = |set: bool, field: &str, var: &str| -> Result<(), ChangeProblem> {
        if set {
            return Err(ChangeProblem::SetByEnvironment(format!(
                "{field} is set by the environment ({var}), which wins; change it there"
            )));
        }
        Ok(())
    };
    match given(&change.repo_url) {
        Some(url) => {
            let env_url = env.repo_url.as_ref().map(|u| u.expose().trim());
            if env_url.is_some_and(|e| e != url) {
                fixed(true, "repo_url", "GIT_REPO_URL")?;
            }
            check_field("repo_url", url, 2048)?;
            if (strip_userinfo(url) != url && !is_ssh_url(url)) || has_password(url) {
                return Err(ChangeProblem::Invalid(
                    "repo_url (Repository URL): put the token in the token field, not in the URL (URLs are shown and stored unencrypted)".into(),
                ));
            }
            if url.contains(['?', '#']) {
                return Err(ChangeProblem::Invalid(
                    "repo_url (Repository URL) cannot have a query (`?…`) or fragment (`#…`): they would be shown and stored unencrypted; put a token in the token field".into(),
                ));
            }
            if !is_supported_url(url) {
                return Err(ChangeProblem::Invalid(
                    "repo_url (Repository URL) must start with https://, http://, ssh://, git@host: or file://"
                        .into(),
                ));
            }
            next.repo_url = (env_url.is_none()).then(|| url.to_string());
        }
        None if env.repo_url.is_some() => next.repo_url = None,
        None => {
            return Err(ChangeProblem::Invalid(
                "repo_url (Repository URL) is required".into(),
            ));
        }
    }
    for (value, env_set, field, var, slot) in [
        (
            &change.branch,
            env.branch.as_deref(),
            "branch",
            "GIT_BRANCH",
            &mut next.branch,
        ),
        (
            &change.pipelines_subdir,
            env.pipelines_subdir.as_deref(),
            "pipelines_subdir",
            "PIPELINES_SUBDIR",
            &mut next.pipelines_subdir,
        ),
    ] {
        *slot = match (given(value), env_set) {
            // The environment's own value is no change (its field is not stored).
            (Some(v), Some(e)) if v == e.trim() => None,
            (Some(v), _) => {
                fixed(env_set.is_some(), field, var)?;
                check_field(field, v, MAX_FIELD_LEN)?;
                Some(v.to_string())
            }
            (None, _) => None,
        };
    }
    if let Some(subdir) = &next.pipelines_subdir {
        let refused = || {
            ChangeProblem::Invalid(format!(
                "pipelines_subdir (Pipelines folder) `{}` must be a folder inside the repository: no `..`, not starting with /",
                crate::pipelines::fields::shown(subdir)
            ))
        };
        if subdir.starts_with('/') {
            return Err(refused());
        }
        let subdir = check_subdir(subdir).map_err(|_| refused())?;
        next.pipelines_subdir = (!subdir.is_empty()).then_some(subdir);
    }
    let new_url = next
        .repo_url
        .clone()
        .or_else(|| env.repo_url.as_ref().map(|u| u.expose().trim().to_string()));
    let moved = previous_url.is_some()
        && previous_url.as_deref().map(origin) != new_url.as_deref().map(origin);
    if moved {
        // Credentials go only to the host they were given for: a new host or
        // scheme needs them typed again (never sent to a host just typed in).
        next.token_encrypted = None;
        next.deploy_key_encrypted = None;
        next.github_app_id = None;
        next.github_app_installation_id = None;
        next.github_app_private_key_encrypted = None;
    }
    change_credentials(env, &mut next, change, cipher)?;
    if change.remove_webhook_secret {
        next.webhook_secret_encrypted = None;
    }
    // The secret is used exactly as typed (GitHub signs with it as given).
    let secret = change
        .webhook_secret
        .as_deref()
        .filter(|v| !v.trim().is_empty());
    if let Some(secret) = secret {
        fixed(
            env.webhook_secret.is_some(),
            "webhook_secret",
            "GIT_WEBHOOK_SECRET",
        )?;
        check_field("webhook_secret", secret, MAX_SECRET_LEN)?;
        next.webhook_secret_encrypted = Some(cipher.encrypt(secret));
    }
    Ok(next)
}

fn change_credentials(
    env: &GitEnv,
    next: &mut StoredRepoConfig,
    change: &RepoConfigChange,
    cipher: &Cipher,
) -> Result<(), ChangeProblem> {
    let clear = |next: &mut StoredRepoConfig| {
        next.token_encrypted = None;
        next.deploy_key_encrypted = None;
        next.github_app_id = None;
        next.github_app_installation_id = None;
        next.github_app_private_key_encrypted = None;
    };
    let (stored_id, stored_installation) = (
        next.github_app_id.clone(),
        next.github_app_installation_id.clone(),
    );
    if change.remove_credentials {
        clear(next);
    }
    let token = given(&change.token);
    // Keys pasted into JSON by hand often carry literal `\n`s.
    let key = given(&change.deploy_key).map(|k| k.replace("\\n", "\n"));
    let key = key.as_deref();
    let app = [
        given(&change.github_app_id),
        given(&change.github_app_installation_id),
        given(&change.github_app_private_key),
    ];
    // The form sends the stored app's ids back as they were: that alone is no
    // new credential (typing a token, or removing, must still work).
    let app_changed = app[2].is_some()
        || app[0].is_some_and(|v| Some(v) != stored_id.as_deref())
        || app[1].is_some_and(|v| Some(v) != stored_installation.as_deref());
    let app = if app_changed { app } else { [None, None, None] };
    let kinds = [
        token.is_some(),
        key.is_some(),
        app.iter().any(Option::is_some),
    ];
    if kinds.iter().any(|k| *k) && env_credentials_apply(env) {
        return Err(ChangeProblem::SetByEnvironment(
            "the credentials are set by the environment (GIT_SYNC_TOKEN, GIT_SYNC_DEPLOY_KEY or GITHUB_APP_*), which win; change them there".into(),
        ));
    }
    if kinds.iter().filter(|k| **k).count() > 1 {
        return Err(ChangeProblem::Invalid(
            "give one kind of credentials: token (HTTPS), deploy_key (SSH) or the GitHub App fields".into(),
        ));
    }
    if let Some(token) = token {
        check_field("token", token, MAX_SECRET_LEN)?;
        clear(next);
        next.token_encrypted = Some(cipher.encrypt(token));
    }
    if let Some(key) = key {
        check_deploy_key(key)?;
        clear(next);
        next.deploy_key_encrypted = Some(cipher.encrypt(&format!("{}\n", key.trim())));
    }
    let [id, installation, private_key] = app;
    if kinds[2] {
        let (Some(id), Some(installation)) = (id, installation) else {
            return Err(ChangeProblem::Invalid(
                "a GitHub App needs github_app_id and github_app_installation_id (and github_app_private_key the first time)".into(),
            ));
        };
        check_field("github_app_id", id, MAX_FIELD_LEN)?;
        check_field("github_app_installation_id", installation, MAX_FIELD_LEN)?;
        let kept_key = next.github_app_private_key_encrypted.take();
        clear(next);
        next.github_app_id = Some(id.to_string());
        next.github_app_installation_id = Some(installation.to_string());
        next.github_app_private_key_encrypted = match private_key {
            Some(pem) => {
                check_field("github_app_private_key", pem, MAX_SECRET_LEN)?;
                Some(cipher.encrypt(&pem.replace("\\n", "\n")))
            }
            None => kept_key,
        };
        if next.github_app_private_key_encrypted.is_none() {
            return Err(ChangeProblem::Invalid(
                "github_app_private_key (the app's PEM key) is required".into(),
            ));
        }
    }
    // A key only works over SSH, a token or an app only over HTTPS: switching the
    // URL's kind forgets the other kind's credentials, as in Fast-Flow.
    let url = next
        .repo_url
        .clone()
        .or_else(|| env.repo_url.as_ref().map(|u| u.expose().to_string()));
    if let Some(url) = url {
        if is_ssh_url(&url) {
            next.token_encrypted = None;
            next.github_app_id = None;
            next.github_app_installation_id = None;
            next.github_app_private_key_encrypted = None;
        } else {
            next.deploy_key_encrypted = None;
        }
    }
    Ok(())
}

/// Whether `url` carries a password (`user:password@`), in any form.
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    authority.rsplit_once('@').is_some_and(|(userinfo, _)| {
        userinfo.contains(':') || userinfo.to_ascii_lowercase().contains("%3a")
    })
}

fn check_field(field: &str, value: &str, max: usize) -> Result<(), ChangeProblem> {
    if value.len() > max {
        return Err(ChangeProblem::Invalid(format!(
            "{field} is longer than {max} bytes"
        )));
    }
    // Newlines belong in keys only.
    let multiline_ok = matches!(field, "github_app_private_key");
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline_ok && (c == '\n' || c == '\r')))
    {
        return Err(ChangeProblem::Invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

pub use super::repo_config_view::{RepoConfigView, view};

#[cfg(test)]
#[path = "repo_config_tests.rs"]
mod tests;
