//! Fetching the configured branch into a bare mirror (`DATA_DIR/git/mirror.git`)
//! with git2, with the credentials the remote asks for. Nothing here writes the
//! pipelines; a failed fetch leaves everything as it was.

use std::path::Path;

use git2::{AutotagOption, Cred, CredentialType, FetchOptions, Oid, RemoteCallbacks, Repository};

use super::SyncError;
use super::remote::{Credentials, RemoteSpec};

/// The commit a fetch found at the branch's tip.
#[derive(Debug, Clone)]
pub struct Tip {
    pub commit: Oid,
    pub subject: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
}

/// Where the fetched tip is kept in the mirror (not a branch of its own).
fn tracking_ref(branch: &str) -> String {
    format!("refs/fastflow/{branch}")
}

/// Opens the mirror, creating it on first use.
pub fn open_mirror(dir: &Path) -> Result<Repository, SyncError> {
    match Repository::open_bare(dir) {
        Ok(repo) => Ok(repo),
        Err(_) => Repository::init_bare(dir).map_err(|e| {
            SyncError::Repository(format!(
                "creating the mirror at {}: {}",
                dir.display(),
                e.message()
            ))
        }),
    }
}

/// The callbacks that answer the remote's credential questions, at most once each
/// (libgit2 asks again after a refusal; answering the same again would loop).
fn callbacks(spec: &RemoteSpec) -> RemoteCallbacks<'_> {
    let mut cb = RemoteCallbacks::new();
    let mut asked = 0u32;
    cb.credentials(move |_url, username, allowed| {
        asked += 1;
        if asked > 1 {
            return Err(git2::Error::from_str("the credentials were refused"));
        }
        match &spec.credentials {
            Credentials::Token(token) if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                Cred::userpass_plaintext("x-access-token", token.expose())
            }
            Credentials::SshKey(key) if allowed.contains(CredentialType::SSH_KEY) => {
                Cred::ssh_key_from_memory(username.unwrap_or("git"), None, key.expose(), None)
            }
            Credentials::None => Err(git2::Error::from_str(
                "the remote asks for credentials and none are configured",
            )),
            _ => Err(git2::Error::from_str(
                "the remote asks for a kind of credential that is not configured",
            )),
        }
    });
    cb
}

/// Fetches the branch and returns its tip.
pub fn fetch(mirror: &Repository, spec: &RemoteSpec) -> Result<Tip, SyncError> {
    let mut remote = mirror
        .remote_anonymous(spec.url.expose())
        .map_err(|e| spec.fetch_error(&e))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(spec))
        .download_tags(AutotagOption::None);
    let refspec = format!("+refs/heads/{}:{}", spec.branch, tracking_ref(&spec.branch));
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(|e| spec.fetch_error(&e))?;
    tip(mirror, &spec.branch)
}

/// The last fetched tip of `branch`, if it was ever fetched.
pub fn tip(mirror: &Repository, branch: &str) -> Result<Tip, SyncError> {
    let commit = mirror
        .find_reference(&tracking_ref(branch))
        .and_then(|r| r.peel_to_commit())
        .map_err(|_| SyncError::UnknownBranch(branch.to_string()))?;
    Ok(Tip {
        commit: commit.id(),
        subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default())
            .chars()
            .take(200)
            .collect(),
        time: commit.time().seconds(),
    })
}

/// Lists the remote's branches without fetching (the "test connection" button).
pub fn list_branches(spec: &RemoteSpec) -> Result<Vec<String>, SyncError> {
    let mut remote =
        git2::Remote::create_detached(spec.url.expose()).map_err(|e| spec.fetch_error(&e))?;
    let connection = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(spec)), None)
        .map_err(|e| spec.fetch_error(&e))?;
    let heads = connection.list().map_err(|e| spec.fetch_error(&e))?;
    Ok(heads
        .iter()
        .filter_map(|h| h.name().strip_prefix("refs/heads/").map(str::to_string))
        .collect())
}
