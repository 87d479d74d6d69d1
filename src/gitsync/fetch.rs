//! Fetching the configured branch into a bare mirror (`DATA_DIR/git/mirror.git`)
//! with git2, with the credentials the remote asks for and the SSH host key
//! judged by the host-key policy. Nothing here writes the pipelines; a failed
//! fetch leaves everything as it was.

use std::cell::RefCell;
use std::path::Path;

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode,
    FetchOptions, Oid, RemoteCallbacks, Repository,
};

use super::SyncError;
use super::host_keys::{HostKey, HostKeyPolicy, judge};
use super::remote::{Credentials, RemoteSpec};

/// One conversation with the remote: what it is, how its host key is judged,
/// and the host key it presented (to pin on first use).
pub struct Session<'a> {
    pub spec: &'a RemoteSpec,
    pub policy: &'a HostKeyPolicy,
    pub presented: RefCell<Option<HostKey>>,
    /// Why the host key was refused (libgit2 reports its own words instead).
    refusal: RefCell<Option<String>>,
}

impl<'a> Session<'a> {
    pub fn new(spec: &'a RemoteSpec, policy: &'a HostKeyPolicy) -> Self {
        Self {
            spec,
            policy,
            presented: RefCell::new(None),
            refusal: RefCell::new(None),
        }
    }

    /// A git2 error as a sync error, with the host-key refusal's own reason.
    fn error(&self, e: &git2::Error) -> SyncError {
        match self.refusal.borrow().as_ref() {
            Some(why) => SyncError::HostKey(format!("{why} ({})", self.spec.shown_url)),
            None => self.spec.fetch_error(e),
        }
    }
}

/// The commit a fetch found at the branch's tip.
#[derive(Debug, Clone)]
pub struct Tip {
    pub commit: Oid,
    pub subject: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
}

/// Where the fetched tip is kept in the mirror (not a branch of its own).
/// Where the fetched tip is kept: one name whatever the branch, so a branch `x`
/// followed by `x/y` never collides in the mirror.
const TRACKING_REF: &str = "refs/fastflow-sync/tip";

/// Sets libgit2's network timeouts (`GIT_TIMEOUT` seconds to connect, and to
/// wait for a connected remote to send or take data; libgit2 applies them to
/// HTTP(S), not to SSH reads), once per process: a remote that accepts the
/// connection and then says nothing must end the sync with an error, not hang it.
pub fn set_network_timeouts(seconds: u64) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ms = i32::try_from(seconds.saturating_mul(1000)).unwrap_or(i32::MAX);
        // SAFETY: libgit2 global options, set once before any fetch starts (the
        // first sync is built after this; nothing else sets them).
        let set = unsafe {
            git2::opts::set_server_connect_timeout_in_milliseconds(ms)
                .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(ms))
        };
        if let Err(e) = set {
            tracing::warn!(error = %e, "libgit2 network timeouts could not be set");
        }
    });
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
fn callbacks<'a>(session: &'a Session<'a>) -> RemoteCallbacks<'a> {
    let spec = session.spec;
    let mut cb = RemoteCallbacks::new();
    cb.certificate_check(move |cert, host| {
        // TLS certificates: libgit2 verifies them against the system's CAs.
        let Some(hostkey) = cert.as_hostkey() else {
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let (Some(raw), Some(kind)) = (hostkey.hostkey(), hostkey.hostkey_type()) else {
            return Err(git2::Error::new(
                ErrorCode::Certificate,
                ErrorClass::Ssh,
                "the SSH server presented no usable host key",
            ));
        };
        let key = HostKey::from_raw(host, kind.name(), raw);
        let verdict = judge(session.policy, &key);
        *session.presented.borrow_mut() = Some(key);
        match verdict {
            Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
            Err(why) => {
                *session.refusal.borrow_mut() = Some(why.clone());
                Err(git2::Error::new(
                    ErrorCode::Certificate,
                    ErrorClass::Ssh,
                    why,
                ))
            }
        }
    });
    let mut asked = 0u32;
    let configured_host = super::remote::url_host(spec.url.expose());
    let configured_origin = super::remote::origin(spec.url.expose());
    cb.credentials(move |url, username, allowed| {
        asked += 1;
        if asked > 1 {
            return Err(git2::Error::from_str("the credentials were refused"));
        }
        // A redirect may lead elsewhere: the token or key goes to the configured host only.
        // Scheme, host and port: a redirect to another port or to plain http is
        // another server as far as credentials go.
        let asking = super::remote::url_host(url);
        if super::remote::origin(url) != configured_origin {
            return Err(git2::Error::from_str(&format!(
                "the remote redirected to another host ({}); credentials are only sent to {}",
                asking.unwrap_or_default(),
                configured_host.clone().unwrap_or_default()
            )));
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
pub fn fetch(mirror: &Repository, session: &Session<'_>) -> Result<Tip, SyncError> {
    let spec = session.spec;
    let mut remote = mirror
        .remote_anonymous(spec.url.expose())
        .map_err(|e| session.error(&e))?;
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks(session))
        .download_tags(AutotagOption::None);
    let wanted = format!("refs/heads/{}", spec.branch);
    let refspec = format!("+{wanted}:{TRACKING_REF}");
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), None)
        .map_err(|e| session.error(&e))?;
    // A fetch of a branch the remote lacks succeeds with nothing: what the
    // remote advertised says whether the branch is there (never a stale tip).
    let advertised = remote
        .list()
        .map(|heads| heads.iter().any(|h| h.name() == wanted))
        .unwrap_or(false);
    if !advertised {
        return Err(SyncError::UnknownBranch(spec.branch.clone()));
    }
    tip(mirror, &spec.branch)
}

/// The last fetched tip of `branch`, if it was ever fetched.
pub fn tip(mirror: &Repository, branch: &str) -> Result<Tip, SyncError> {
    let commit = mirror
        .find_reference(TRACKING_REF)
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
pub fn list_branches(session: &Session<'_>) -> Result<Vec<String>, SyncError> {
    let spec = session.spec;
    let mut remote =
        git2::Remote::create_detached(spec.url.expose()).map_err(|e| session.error(&e))?;
    let connection = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks(session)), None)
        .map_err(|e| session.error(&e))?;
    let heads = connection.list().map_err(|e| session.error(&e))?;
    Ok(heads
        .iter()
        .filter_map(|h| h.name().strip_prefix("refs/heads/").map(str::to_string))
        .collect())
}
