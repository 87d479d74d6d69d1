//! Whether the Docker engine is reachable, as last seen. While it is not, queued
//! runs wait (with this reason shown), `/ready` answers 503, and the UI shows a banner.

use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// A successful check is trusted this long before the dispatcher pings again.
const TRUST_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct EngineState {
    down: RwLock<Option<String>>,
    last_ok: RwLock<Option<Instant>>,
    /// Set while the runner image is known to be missing on the engine.
    image_missing: RwLock<Option<String>>,
}

impl EngineState {
    /// `Some(reason)` while the engine is unreachable.
    pub fn down_reason(&self) -> Option<String> {
        self.down
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_down(&self, reason: String) {
        let mut down = self.down.write().unwrap_or_else(PoisonError::into_inner);
        if down.is_none() {
            tracing::warn!(%reason, "Docker engine unreachable; queued runs wait until it is back");
        }
        *down = Some(reason);
        drop(down);
        *self.last_ok.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Whether the engine answered recently (then the dispatcher skips its ping).
    pub fn recently_ok(&self) -> bool {
        let last = *self.last_ok.read().unwrap_or_else(PoisonError::into_inner);
        self.down_reason().is_none() && last.is_some_and(|t| t.elapsed() < TRUST_FOR)
    }

    /// Why runs may fail to start although the engine answers (the runner image is missing).
    pub fn image_problem(&self) -> Option<String> {
        self.image_missing
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn set_image_problem(&self, problem: Option<String>) {
        *self
            .image_missing
            .write()
            .unwrap_or_else(PoisonError::into_inner) = problem;
    }

    pub fn set_up(&self) {
        *self.last_ok.write().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let mut down = self.down.write().unwrap_or_else(PoisonError::into_inner);
        if down.take().is_some() {
            tracing::info!("Docker engine reachable again; resuming queued runs");
        }
    }
}
