//! Reaching the remote without syncing: the connection test (`ls-remote`), and
//! the SSH host key — its policy, the pin made on first use, and its reset.

use super::host_keys::{self, HostKey, HostKeyPolicy};
use super::{GitSync, SyncError, fetch};
use crate::db;

impl GitSync {
    /// Asks the remote for its branches (`git ls-remote`), fetching nothing.
    pub async fn test_connection(&self) -> Result<Vec<String>, SyncError> {
        let policy = self.host_key_policy().await?;
        self.list_branches(policy).await
    }

    async fn list_branches(&self, policy: HostKeyPolicy) -> Result<Vec<String>, SyncError> {
        let spec = self.spec.with_fresh_token().await?;
        let pin = matches!(policy, HostKeyPolicy::Pinned(None));
        let (listed, presented) = tokio::task::spawn_blocking(move || {
            let session = fetch::Session::new(&spec, &policy);
            let listed = fetch::list_branches(&session);
            (listed, session.presented.into_inner())
        })
        .await
        .map_err(|e| SyncError::Repository(format!("the test task failed: {e}")))?;
        if pin {
            self.pin(presented).await?;
        }
        listed
    }

    /// How the remote's SSH host key is judged now.
    pub async fn host_key_policy(&self) -> Result<HostKeyPolicy, SyncError> {
        let host = self.spec.ssh_host().unwrap_or_default();
        if let Some(text) = &self.known_hosts {
            return Ok(HostKeyPolicy::Known(host_keys::known_keys(text, &host)));
        }
        let pinned = db::gitsync::pinned_host_key(&self.pool, &host)
            .await
            .map_err(|e| SyncError::Database(e.to_string()))?;
        Ok(HostKeyPolicy::Pinned(pinned.map(|p| HostKey {
            host: p.host,
            key_type: p.key_type,
            key_base64: p.key_base64,
        })))
    }

    /// Pins the key a first SSH connection presented (trust on first use).
    pub(super) async fn pin(&self, presented: Option<HostKey>) -> Result<(), SyncError> {
        let Some(key) = presented.filter(|_| self.spec.is_ssh() && self.known_hosts.is_none())
        else {
            return Ok(());
        };
        tracing::info!(host = %key.host, fingerprint = %key.fingerprint(), "pinned the SSH host key of the git remote");
        db::gitsync::pin_host_key(&self.pool, &key.host, &key.key_type, &key.key_base64)
            .await
            .map_err(|e| SyncError::Database(e.to_string()))
    }

    /// The host key the SSH remote presents now (`None` if it cannot be reached).
    pub async fn presented_host_key(&self) -> Option<HostKey> {
        let spec = self.spec.clone();
        tokio::task::spawn_blocking(move || {
            let policy = HostKeyPolicy::Pinned(None);
            let session = fetch::Session::new(&spec, &policy);
            let _ = fetch::list_branches(&session);
            session.presented.into_inner()
        })
        .await
        .ok()
        .flatten()
    }

    /// Drops the pin and pins what the host presents now; `(old, new)` fingerprints.
    pub async fn reset_host_key(&self) -> Result<(Option<String>, Option<String>), SyncError> {
        let Some(host) = self.spec.ssh_host() else {
            return Err(SyncError::Config(
                "the repository URL does not use SSH".into(),
            ));
        };
        if self.known_hosts.is_some() {
            return Err(SyncError::Config(
                "host keys come from GIT_SSH_KNOWN_HOSTS; change that setting instead".into(),
            ));
        }
        let old = match self.host_key_policy().await? {
            HostKeyPolicy::Pinned(Some(k)) => Some(k.fingerprint()),
            _ => None,
        };
        db::gitsync::unpin_host_key(&self.pool, &host)
            .await
            .map_err(|e| SyncError::Database(e.to_string()))?;
        // The connection may fail later (credentials); the key is pinned all the same.
        let _ = self.list_branches(HostKeyPolicy::Pinned(None)).await;
        let new = match self.host_key_policy().await? {
            HostKeyPolicy::Pinned(Some(k)) => Some(k.fingerprint()),
            _ => None,
        };
        Ok((old, new))
    }
}
