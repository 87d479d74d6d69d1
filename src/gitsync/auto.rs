//! Auto-sync: whether and how often the branch is synced by itself. The
//! environment (`AUTO_SYNC_ENABLED`, `AUTO_SYNC_INTERVAL`) wins; otherwise what
//! the API stored; otherwise off, every 15 minutes. A change applies at once.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{GitSync, SyncError, Trigger};
use crate::config::git::{
    DEFAULT_AUTO_SYNC_INTERVAL, MAX_AUTO_SYNC_INTERVAL, MIN_AUTO_SYNC_INTERVAL,
};
use crate::db;

const ENABLED_KEY: &str = "auto_sync_enabled";
const INTERVAL_KEY: &str = "auto_sync_interval";

/// The auto-sync settings in force, and which of them the environment fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AutoSync {
    pub auto_sync_enabled: bool,
    /// Seconds.
    pub auto_sync_interval: u64,
    #[serde(skip)]
    pub enabled_from_env: bool,
    #[serde(skip)]
    pub interval_from_env: bool,
}

impl Default for AutoSync {
    fn default() -> Self {
        Self {
            auto_sync_enabled: false,
            auto_sync_interval: DEFAULT_AUTO_SYNC_INTERVAL,
            enabled_from_env: false,
            interval_from_env: false,
        }
    }
}

/// A change asked for through the API; unset fields stay.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoSyncChange {
    pub auto_sync_enabled: Option<bool>,
    pub auto_sync_interval: Option<u64>,
}

impl GitSync {
    pub fn auto_sync_settings(&self) -> AutoSync {
        *self.auto.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the stored settings under the environment's (at start).
    pub async fn load_auto_sync(&self, env: &crate::config::GitEnv) {
        let stored = |key: &'static str| async move {
            db::gitsync::setting(&self.pool, key).await.ok().flatten()
        };
        let mut auto = AutoSync::default();
        match env.auto_sync_enabled {
            Some(on) => (auto.auto_sync_enabled, auto.enabled_from_env) = (on, true),
            None => auto.auto_sync_enabled = stored(ENABLED_KEY).await.as_deref() == Some("true"),
        }
        match env.auto_sync_interval {
            Some(s) => (auto.auto_sync_interval, auto.interval_from_env) = (s, true),
            None => {
                if let Some(s) = stored(INTERVAL_KEY).await.and_then(|v| v.parse().ok()) {
                    auto.auto_sync_interval = s;
                }
            }
        }
        *self.auto.write().unwrap_or_else(PoisonError::into_inner) = auto;
    }

    /// Stores and applies a change; refuses what the environment fixes or what is out of range.
    pub async fn change_auto_sync(&self, change: AutoSyncChange) -> Result<AutoSync, SyncError> {
        let current = self.auto_sync_settings();
        if let Some(s) = change.auto_sync_interval
            && !(MIN_AUTO_SYNC_INTERVAL..=MAX_AUTO_SYNC_INTERVAL).contains(&s)
        {
            return Err(SyncError::Config(format!(
                "auto_sync_interval must be from {MIN_AUTO_SYNC_INTERVAL} to {MAX_AUTO_SYNC_INTERVAL} seconds, got {s}"
            )));
        }
        let fixed = |name: &str| {
            SyncError::Config(format!(
                "{name} is set in the environment, which wins; change it there"
            ))
        };
        if change
            .auto_sync_enabled
            .is_some_and(|v| v != current.auto_sync_enabled)
            && current.enabled_from_env
        {
            return Err(fixed("AUTO_SYNC_ENABLED"));
        }
        if change
            .auto_sync_interval
            .is_some_and(|v| v != current.auto_sync_interval)
            && current.interval_from_env
        {
            return Err(fixed("AUTO_SYNC_INTERVAL"));
        }
        let db_err = |e: db::DbError| SyncError::Database(e.to_string());
        if let Some(on) = change.auto_sync_enabled {
            db::gitsync::set_setting(&self.pool, ENABLED_KEY, if on { "true" } else { "false" })
                .await
                .map_err(db_err)?;
        }
        if let Some(s) = change.auto_sync_interval {
            db::gitsync::set_setting(&self.pool, INTERVAL_KEY, &s.to_string())
                .await
                .map_err(db_err)?;
        }
        let updated = {
            let mut auto = self.auto.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(on) = change.auto_sync_enabled {
                auto.auto_sync_enabled = on;
            }
            if let Some(s) = change.auto_sync_interval {
                auto.auto_sync_interval = s;
            }
            *auto
        };
        self.auto_changed.notify_one();
        Ok(updated)
    }

    /// Requests a sync every interval while auto-sync is on, following changes at once.
    pub async fn run_auto_sync(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let auto = self.auto_sync_settings();
            let wait = Duration::from_secs(auto.auto_sync_interval);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.auto_changed.notified() => continue,
                _ = tokio::time::sleep(wait), if auto.auto_sync_enabled => {
                    self.request(Trigger::Auto);
                }
                // Off: only a change or shutdown wakes the loop.
                _ = std::future::pending::<()>(), if !auto.auto_sync_enabled => {}
            }
        }
    }
}
