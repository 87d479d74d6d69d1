//! Live fan-out of a running run's log lines to viewers. The log file is the
//! truth; the hub only carries what was already written, so a viewer that lags
//! or joins late re-reads the file (see `web::log_stream`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use super::logs::LogLine;
use crate::run_status::RunStatus;

/// Batches kept for the slowest viewer before it is told it lagged (it then reads
/// on from the file). A batch holds at most 2 048 lines and 1 MiB of text, so this
/// bounds what a run's viewers can hold in memory, however many they are.
const CHANNEL_CAPACITY: usize = 16;

/// How many ways viewers frame a batch (the UI's HTML, the API's JSON).
pub const FRAME_FORMATS: usize = 2;

/// Lines published together, and what viewers made of them: the first viewer that
/// needs a format frames the batch, the others share those bytes.
#[derive(Debug)]
pub struct LogBatch {
    pub lines: Vec<LogLine>,
    framed: [OnceLock<bytes::Bytes>; FRAME_FORMATS],
}

impl LogBatch {
    pub fn new(lines: Vec<LogLine>) -> Self {
        Self {
            lines,
            framed: Default::default(),
        }
    }

    /// The batch in `format` (`< FRAME_FORMATS`), made by `make` once per batch.
    pub fn framed(
        &self,
        format: usize,
        make: impl FnOnce(&[LogLine]) -> bytes::Bytes,
    ) -> bytes::Bytes {
        match self.framed.get(format) {
            Some(slot) => slot.get_or_init(|| make(&self.lines)).clone(),
            None => make(&self.lines),
        }
    }
}

#[derive(Debug, Clone)]
pub enum HubEvent {
    Lines(Arc<LogBatch>),
    Metric(Arc<super::metrics::Sample>),
    /// A fact of the run changed in the database (it started, its container
    /// started, a warning was recorded); viewers re-read the row.
    Changed,
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

    /// Tells the run's viewers that its row changed. Only an existing channel is
    /// told: nobody listens to a run without one, and none is made for it.
    pub fn notify_changed(&self, run_id: &str) {
        if let Some(tx) = self.with_map(|m| m.get(run_id).cloned()) {
            let _ = tx.send(HubEvent::Changed);
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
