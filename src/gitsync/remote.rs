//! The repository to sync from: URL (https, http, ssh, `git@host:path`, file),
//! branch, pipelines subfolder and credentials, checked before any network use,
//! and errors written without the credentials.

use crate::secrets::SecretString;

use super::SyncError;

/// How to authenticate to the remote.
#[derive(Clone)]
pub enum Credentials {
    None,
    /// An HTTPS token (sent as the password of `x-access-token`).
    Token(SecretString),
    /// An OpenSSH private key.
    SshKey(SecretString),
    /// A GitHub App installation: its tokens are fetched (and renewed) before each
    /// connection and then used as [`Credentials::Token`].
    GitHubApp(std::sync::Arc<super::github_app::GitHubApp>),
}

/// A remote, checked.
#[derive(Clone)]
pub struct RemoteSpec {
    /// As configured (it may carry a user and password).
    pub url: SecretString,
    /// The URL with any user or password removed: what logs, pages and the API show.
    pub shown_url: String,
    pub branch: String,
    /// The folder inside the repository that holds the pipeline folders ("" = top).
    pub subdir: String,
    pub credentials: Credentials,
}

/// Longest URL accepted.
const MAX_URL_LEN: usize = 2048;

impl RemoteSpec {
    pub fn new(
        url: &str,
        branch: &str,
        subdir: &str,
        credentials: Credentials,
    ) -> Result<Self, SyncError> {
        let url = url.trim();
        if url.is_empty() || url.len() > MAX_URL_LEN || url.chars().any(char::is_control) {
            return Err(SyncError::Config(format!(
                "GIT_REPO_URL must be a URL of at most {MAX_URL_LEN} characters"
            )));
        }
        if !is_supported_url(url) {
            return Err(SyncError::Config(
                "GIT_REPO_URL must start with https://, http://, ssh://, git@host: or file://"
                    .into(),
            ));
        }
        let branch = branch.trim();
        if branch.is_empty() || !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(SyncError::Config(format!(
                "GIT_BRANCH `{}` is not a valid branch name",
                crate::pipelines::fields::shown(branch)
            )));
        }
        Ok(Self {
            url: SecretString::new(url),
            shown_url: strip_userinfo(url),
            branch: branch.to_string(),
            subdir: check_subdir(subdir)?,
            credentials,
        })
    }

    /// Whether the URL speaks SSH (so a deploy key and host keys apply).
    pub fn is_ssh(&self) -> bool {
        let url = self.url.expose();
        url.starts_with("ssh://") || url.starts_with("git@")
    }

    /// This spec with a GitHub App's current installation token in place of the app.
    pub async fn with_fresh_token(&self) -> Result<Self, SyncError> {
        match &self.credentials {
            Credentials::GitHubApp(app) => Ok(Self {
                credentials: Credentials::Token(app.token().await?),
                ..self.clone()
            }),
            _ => Ok(self.clone()),
        }
    }

    /// The SSH host the URL names (`ssh://user@host:port/…`, `git@host:path`).
    pub fn ssh_host(&self) -> Option<String> {
        let url = self.url.expose();
        let rest = url
            .strip_prefix("ssh://")
            .map(|r| r.split('/').next().unwrap_or_default())
            .or_else(|| url.split_once(':').map(|(head, _)| head))?;
        let host = rest.rsplit('@').next().unwrap_or(rest);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        };
        (self.is_ssh() && !host.is_empty()).then(|| host.to_string())
    }

    /// Where `path` (inside the pipelines folder) is shown on the hosting site, for
    /// repositories on github.com or gitlab.com; `None` for others.
    pub fn web_url(&self, path: &str) -> Option<String> {
        let (host, repo) = known_host_repo(&self.shown_url)?;
        let blob = if host == "github.com" {
            "blob"
        } else {
            "-/blob"
        };
        let inside = if self.subdir.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.subdir)
        };
        Some(format!(
            "https://{host}/{repo}/{blob}/{}/{inside}",
            self.branch
        ))
    }

    /// A git2 error as a sync error, with the credentials taken out of its message.
    pub fn fetch_error(&self, e: &git2::Error) -> SyncError {
        let mut message = e.message().replace(self.url.expose(), &self.shown_url);
        if let Credentials::Token(t) | Credentials::SshKey(t) = &self.credentials {
            if !t.expose().is_empty() {
                message = message.replace(t.expose(), "***");
            }
        }
        let message = format!("{} ({})", message.trim_end_matches('.'), self.shown_url);
        match e.code() {
            git2::ErrorCode::Auth => SyncError::Auth(message),
            git2::ErrorCode::Certificate => SyncError::HostKey(message),
            _ if message.contains("couldn't find remote ref") => {
                SyncError::UnknownBranch(self.branch.clone())
            }
            _ if message.contains("credentials")
                || message.contains("401")
                || message.contains("403") =>
            {
                SyncError::Auth(message)
            }
            _ => SyncError::Fetch(message),
        }
    }
}

/// `(host, owner/repo)` of a repository on github.com or gitlab.com.
fn known_host_repo(url: &str) -> Option<(String, String)> {
    let url = url.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("ssh://"))
        .map(|r| r.rsplit_once('@').map_or(r, |(_, h)| h).to_string())
        .or_else(|| url.strip_prefix("git@").map(|r| r.replacen(':', "/", 1)))?;
    let (host, repo) = rest.split_once('/')?;
    let host = host.split(':').next().unwrap_or(host);
    let repo = repo.trim_end_matches(".git");
    matches!(host, "github.com" | "gitlab.com").then(|| (host.to_string(), repo.to_string()))
}

/// Where deploy keys of the repository at `url` are added, on github.com or gitlab.com.
pub fn deploy_keys_url(url: &str) -> Option<String> {
    let (host, repo) = known_host_repo(url)?;
    Some(if host == "github.com" {
        format!("https://github.com/{repo}/settings/keys")
    } else {
        format!("https://gitlab.com/{repo}/-/settings/repository")
    })
}

/// Whether `url` is of a kind git sync speaks: https, http, ssh, `git@host:path`, file.
pub fn is_supported_url(url: &str) -> bool {
    let known = ["https://", "http://", "ssh://", "file://"];
    known.iter().any(|k| url.starts_with(k)) || (url.starts_with("git@") && url.contains(':'))
}

/// Scheme, host and port of `url` (`git@host:path` is `ssh://host:22`): where
/// credentials would go.
pub fn origin(url: &str) -> String {
    let host = url_host(url).unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return format!("ssh://{host}:22");
    };
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let port = authority
        .rsplit_once(':')
        .filter(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        })
        .map(|(_, p)| p.to_string())
        .unwrap_or_else(|| match scheme.as_str() {
            "https" => "443".into(),
            "http" => "80".into(),
            "ssh" => "22".into(),
            _ => String::new(),
        });
    format!("{scheme}://{host}:{port}")
}

/// The host a URL names (`https://u@h:1/p` → `h`, `git@h:p` → `h`), lower-cased.
pub fn url_host(url: &str) -> Option<String> {
    let authority = match url.split_once("://") {
        Some((_, rest)) => rest.split('/').next().unwrap_or_default(),
        None => url.split_once(':').map(|(head, _)| head)?,
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// `https://user:pass@host/path` → `https://host/path` (over HTTP the "user" may
/// be a token too); `ssh://user:pass@host/…` keeps the user, which names the account.
pub fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user = rest[..at].split(':').next().unwrap_or_default();
    if scheme == "ssh" && !user.is_empty() {
        format!("{scheme}://{user}@{}", &rest[at + 1..])
    } else {
        format!("{scheme}://{}", &rest[at + 1..])
    }
}

/// `PIPELINES_SUBDIR`: a relative path inside the repository, no `..`, no absolute.
pub fn check_subdir(subdir: &str) -> Result<String, SyncError> {
    let subdir = subdir.trim().trim_matches('/');
    let bad = subdir
        .split('/')
        .any(|part| part == ".." || part == "." || part.contains(['\\', '\0']))
        || subdir.len() > 512;
    if bad {
        return Err(SyncError::Config(format!(
            "PIPELINES_SUBDIR `{}` must be a folder inside the repository (no `..`, not absolute)",
            crate::pipelines::fields::shown(subdir)
        )));
    }
    Ok(subdir.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_shown_without_credentials() {
        assert_eq!(
            strip_userinfo("https://x-access-token:ghp_secret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            strip_userinfo("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(strip_userinfo("https://h/p@q"), "https://h/p@q");
        assert_eq!(strip_userinfo("https://ghp_tok@h/r"), "https://h/r");
        assert_eq!(strip_userinfo("ssh://git:pw@h:22/r"), "ssh://git@h:22/r");
        for bad in ["", "ftp://h/r", "/srv/repo", "https://h/\nx", "git@host"] {
            assert!(
                RemoteSpec::new(bad, "main", "", Credentials::None).is_err(),
                "{bad:?}"
            );
        }
        for bad in ["", "a..b", "-x/../y", "a b", "ref~1"] {
            assert!(
                RemoteSpec::new("file:///r", bad, "", Credentials::None).is_err(),
                "branch {bad:?}"
            );
        }
        for bad in ["..", "a/../b", "./a", "a\\b"] {
            assert!(check_subdir(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_subdir("/pipelines/").ok().as_deref(),
            Some("pipelines")
        );
        let spec = RemoteSpec::new("https://u:tok@h/r.git", "feature/x", "", Credentials::None);
        assert!(spec.is_ok_and(|s| s.shown_url == "https://h/r.git" && !s.is_ssh()));
        let host = |url: &str| {
            RemoteSpec::new(url, "main", "", Credentials::None)
                .ok()
                .and_then(|s| s.ssh_host())
        };
        assert_eq!(
            host("ssh://git@127.0.0.1:2222/srv/r.git").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            host("git@github.com:acme/p.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(host("ssh://[::1]:22/r").as_deref(), Some("::1"));
        assert_eq!(host("https://github.com/a/b"), None);
        assert_eq!(
            url_host("https://x:tok@GitHub.com:443/a").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            url_host("git@gitlab.com:g/p.git").as_deref(),
            Some("gitlab.com")
        );
        assert_eq!(
            url_host("http://127.0.0.2:8590/e401/x").as_deref(),
            Some("127.0.0.2")
        );
        let web = |url: &str, subdir: &str| {
            RemoteSpec::new(url, "main", subdir, Credentials::None)
                .ok()
                .and_then(|s| s.web_url("etl/main.py"))
        };
        let gh = Some("https://github.com/acme/p/blob/main/pipelines/etl/main.py".to_string());
        assert_eq!(web("git@github.com:acme/p.git", "pipelines"), gh);
        assert_eq!(web("https://tok@github.com/acme/p.git", "pipelines"), gh);
        assert_eq!(web("ssh://git@github.com/acme/p", "pipelines"), gh);
        assert_eq!(
            web("https://gitlab.com/g/sub/p.git", "").as_deref(),
            Some("https://gitlab.com/g/sub/p/-/blob/main/etl/main.py")
        );
        assert_eq!(web("https://git.internal/acme/p.git", ""), None);
        assert_eq!(web("file:///srv/p", ""), None);
    }
}
