//! Live fan-out of a running run's log lines to viewers. The log file is the
//! truth; the hub only carries what was already written, so a viewer that lags
//! or joins late re-reads the file (see `web::log_stream`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::logs::LogLine;
use crate::run_status::RunStatus;

/// Lines buffered per viewer before it is told it lagged.
const CHANNEL_CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub enum HubEvent {
    Lines(Arc<Vec<LogLine>>),
    Metric(Arc<super::metrics::Sample>),
    /// The run's final status is in the database; nothing follows.
    End(RunStatus),
}

/// The broadcast channels of runs that viewers or executors currently hold.
#[derive(Default)]
pub struct LogHubs {
    channels: Mutex<HashMap<String, broadcast::Sender<HubEvent>>>,
}

impl LogHubs {
    fn with_map<R>(
        &self,
        f: impl FnOnce(&mut HashMap<String, broadcast::Sender<HubEvent>>) -> R,
    ) -> R {
        match self.channels.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The sender for a run, created on first use.
    pub fn sender(&self, run_id: &str) -> broadcast::Sender<HubEvent> {
        self.with_map(|m| {
            m.entry(run_id.to_string())
                .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
                .clone()
        })
    }

    pub fn subscribe(&self, run_id: &str) -> broadcast::Receiver<HubEvent> {
        self.sender(run_id).subscribe()
    }

    /// Publishes the end and forgets the run's channel.
    pub fn close(&self, run_id: &str, status: RunStatus) {
        if let Some(tx) = self.with_map(|m| m.remove(run_id)) {
            let _ = tx.send(HubEvent::End(status));
        }
    }

    /// Drops a channel nobody listens to (a viewer subscribed after the run ended).
    pub fn forget_if_unused(&self, run_id: &str) {
        self.with_map(|m| {
            if m.get(run_id).is_some_and(|tx| tx.receiver_count() == 0) {
                m.remove(run_id);
            }
        });
    }

    pub fn len(&self) -> usize {
        self.with_map(|m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
