//! Why a sync failed, in words fit for the Sync page and the API.

use std::path::Path;

/// Why a sync did not happen; the message never holds a credential.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error("git sync is not configured correctly: {0}")]
    Config(String),
    #[error("the repository refused the credentials: {0}")]
    Auth(String),
    #[error("the SSH host key is not trusted: {0}")]
    HostKey(String),
    #[error("branch `{0}` was not found in the repository")]
    UnknownBranch(String),
    #[error("fetching failed: {0}")]
    Fetch(String),
    #[error("the repository's content cannot be used: {0}")]
    Content(String),
    #[error("{0}")]
    Repository(String),
    #[error("writing {path} failed: {reason}")]
    Write { path: String, reason: String },
    #[error("the database could not record the sync: {0}")]
    Database(String),
}

impl SyncError {
    pub(crate) fn write(path: &Path, e: std::io::Error) -> Self {
        Self::Write {
            path: path.display().to_string(),
            reason: e.to_string(),
        }
    }
}
