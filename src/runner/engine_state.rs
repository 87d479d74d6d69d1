//! Whether the Docker engine is reachable, as last seen. While it is not, queued
//! runs wait (with this reason shown), `/ready` answers 503, and the UI shows a banner.

use std::sync::RwLock;

#[derive(Default)]
pub struct EngineState {
    down: RwLock<Option<String>>,
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
    }

    pub fn set_up(&self) {
        let mut guard = match self.down.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.take().is_some() {
            tracing::info!("Docker engine reachable again; resuming queued runs");
        }
    }
}
