//! Whether the Docker engine is reachable, as last seen. While it is not, queued
//! runs wait (with this reason shown), `/ready` answers 503, and the UI shows a banner.

use std::sync::RwLock;

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
        match self.down.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_down(&self, reason: String) {
        let mut guard = match self.down.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.is_none() {
            tracing::warn!(%reason, "Docker engine unreachable; queued runs wait until it is back");
        }
        *guard = Some(reason);
        drop(guard);
        match self.last_ok.write() {
            Ok(mut g) => *g = None,
            Err(p) => *p.into_inner() = None,
        }
    }

    /// Whether the engine answered recently (then the dispatcher skips its ping).
    pub fn recently_ok(&self) -> bool {
        let last = match self.last_ok.read() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        };
        self.down_reason().is_none() && last.is_some_and(|t| t.elapsed() < TRUST_FOR)
    }

    /// Why runs may fail to start although the engine answers (the runner image is missing).
    pub fn image_problem(&self) -> Option<String> {
        match self.image_missing.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_image_problem(&self, problem: Option<String>) {
        match self.image_missing.write() {
            Ok(mut g) => *g = problem,
            Err(p) => *p.into_inner() = problem,
        }
    }

    pub fn set_up(&self) {
        match self.last_ok.write() {
            Ok(mut g) => *g = Some(Instant::now()),
            Err(p) => *p.into_inner() = Some(Instant::now()),
        }
        let mut guard = match self.down.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.take().is_some() {
            tracing::info!("Docker engine reachable again; resuming queued runs");
        }
    }
}
