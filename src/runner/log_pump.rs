//! Moves a container's output into the run's log: frames from the attach (or,
//! after a restart, the follow-logs) stream are split into lines, written and
//! flushed in batches, then announced on the hub. The output is drained to the
//! end whatever happens to storage: a failed write is recorded by the writer and
//! the rest is counted, never left in the container's pipe. Lining the log up
//! with the engine's own copy lives in `engine_copy`.

use std::pin::Pin;
use std::sync::Arc;

use bollard::container::LogOutput;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::engine_copy::{EngineClock, Resume, Take};
use super::hub::{HubEvent, LogBatch};
use super::logs::{
    LineSplitter, LogLine, LogSummary, LogWriter, StoredStream, Stream as LogStream,
};
use super::outcome::StderrTail;

pub type OutputStream =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A batch is written and announced once it holds this many lines or bytes, so
/// one announcement (and each viewer's share of it) stays small.
const MAX_BATCH_LINES: usize = 2048;
pub(super) const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Frames taken from the stream without waiting before a batch is written.
const MAX_FRAMES_PER_TURN: usize = 2048;

/// The log of one run while it is being written.
pub struct RunLog {
    pub writer: LogWriter,
    hub: broadcast::Sender<HubEvent>,
    pub(super) splitters: [LineSplitter; 2],
    /// Newlines received per stream, to know what the final read still has to add.
    pub(super) newlines: [u64; 2],
    /// Bytes received per stream since its last newline (pieces already emitted included).
    pub(super) since_newline: [u64; 2],
    batch: Vec<LogLine>,
    batch_bytes: usize,
    /// Per stream (stdout, stderr): how the engine's copy lines up with what was
    /// stored before a restart.
    resume: [Resume; 2],
    /// The line the runner's `sitecustomize` prints when `main.py` starts; never stored.
    setup_marker: Option<String>,
    /// When the marker arrived (`None` while the environment is being set up).
    pub setup_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    setup_reported: bool,
    /// The end of stderr, for the error message of a failed run.
    pub stderr_tail: StderrTail,
    /// The engine's timestamp of the frame being stored (re-attach only).
    engine_clock: Option<EngineClock>,
    /// Hides the run's secret values in every line before it is stored or announced.
    masker: crate::secrets::Masker,
}

pub(super) fn index(stream: LogStream) -> usize {
    usize::from(stream == LogStream::Stderr)
}

impl RunLog {
    /// Tells the run's viewers that a fact in its row changed.
    pub fn announce_change(&self) {
        let _ = self.hub.send(HubEvent::Changed);
    }

    pub fn new(writer: LogWriter, hub: broadcast::Sender<HubEvent>) -> Self {
        Self {
            writer,
            hub,
            splitters: Default::default(),
            newlines: [0, 0],
            since_newline: [0, 0],
            batch: Vec::new(),
            batch_bytes: 0,
            resume: [Resume::Done, Resume::Done],
            setup_marker: None,
            setup_seen_at: None,
            setup_reported: false,
            stderr_tail: StderrTail::default(),
            engine_clock: None,
            masker: Default::default(),
        }
    }

    /// Masks the run's secret values from here on (set before any output arrives).
    pub fn set_masker(&mut self, masker: crate::secrets::Masker) {
        self.masker = masker;
    }

    /// `text` with the run's secret values masked (for messages about the run).
    pub fn mask(&self, text: &str) -> String {
        self.masker.mask(text)
    }

    /// Reads the engine's timestamps from `clock` (set by [`EngineClock::strip`]).
    pub fn use_engine_clock(&mut self, clock: EngineClock) {
        self.engine_clock = Some(clock);
    }

    /// Filters the setup marker out of stdout. `already_seen` when a resumed run recorded it.
    pub fn with_setup_marker(mut self, marker: String, already_seen: bool) -> Self {
        self.setup_marker = Some(marker);
        self.setup_reported = already_seen;
        if already_seen {
            self.setup_seen_at = Some(chrono::Utc::now());
        }
        self
    }

    /// Skips, in the engine's copy, what each stream already stored before a restart.
    pub fn resume_after(&mut self, stored: [StoredStream; 2]) {
        self.resume = stored.map(|s| Resume::Counting {
            lines: s.lines,
            pieces: s.trailing_pieces,
            first: s.first,
            last: s.last.zip(s.last_at),
        });
    }

    /// The setup time, once, when the marker has just been seen.
    pub fn take_setup_event(&mut self) -> Option<chrono::DateTime<chrono::Utc>> {
        if self.setup_reported {
            return None;
        }
        let at = self.setup_seen_at?;
        self.setup_reported = true;
        Some(at)
    }

    /// Flushes what was written but keeps partial lines unwritten: the run goes on
    /// without us, and a later resume re-reads those partial lines from the engine.
    pub fn detach(mut self) {
        blocking_io(|| self.publish());
    }

    fn take_chunk(&mut self, stream: LogStream, bytes: &[u8]) {
        let i = index(stream);
        match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.newlines[i] += memchr::memchr_iter(b'\n', bytes).count() as u64;
                self.since_newline[i] = (bytes.len() - last - 1) as u64;
            }
            None => self.since_newline[i] += bytes.len() as u64,
        }
        for mut piece in self.splitters[i].push(bytes) {
            if stream == LogStream::Stdout
                && !piece.continued
                && self.setup_marker.as_deref() == Some(piece.text.as_str())
            {
                self.setup_marker = None;
                self.setup_seen_at.get_or_insert_with(chrono::Utc::now);
                continue;
            }
            // Masked before anything keeps it: the stored line, the stream, the error tail.
            self.masker.mask_in_place(&mut piece.text);
            if stream == LogStream::Stderr {
                self.stderr_tail.observe(&piece.text);
            }
            let engine_at = self.engine_clock.as_ref().and_then(EngineClock::get);
            match self.resume[i].take(&piece, engine_at) {
                Take::Skip => continue,
                Take::SkipRotated => {
                    self.rotated(stream);
                    continue;
                }
                Take::StoreRotated => self.rotated(stream),
                Take::Store => {}
            }
            self.store(stream, piece);
        }
    }

    /// Says in the log that the engine's copy had been rotated: lines written while
    /// Fast-Flow was away may be missing (or repeated), and the run does not hide it.
    fn rotated(&mut self, stream: LogStream) {
        let name = if stream == LogStream::Stderr {
            "stderr"
        } else {
            "stdout"
        };
        let note = format!(
            "[fastflow] the engine kept only the newest part of this run's {name} (its copy is capped by LOG_MAX_SIZE_MB): output written while Fast-Flow was not running may be missing or repeated"
        );
        self.batch.extend(self.writer.write_system(note));
    }

    fn store(&mut self, stream: LogStream, piece: super::logs::Piece) {
        // After a restart, a line keeps the time the engine received it, not ours.
        let at = self
            .engine_clock
            .as_ref()
            .and_then(EngineClock::get)
            .unwrap_or_else(chrono::Utc::now);
        if let Some(line) = self.writer.append_at(stream, piece, at) {
            self.batch_bytes += line.text.len();
            self.batch.push(line);
            if self.batch.len() >= MAX_BATCH_LINES || self.batch_bytes >= MAX_BATCH_BYTES {
                self.publish();
            }
        }
    }

    /// Stores frames in one blocking section, then announces them.
    pub(super) fn store_frames(&mut self, frames: Vec<(LogStream, bytes::Bytes)>) {
        blocking_io(|| {
            for (stream, bytes) in frames {
                self.take_chunk(stream, &bytes);
            }
            self.publish();
        });
    }

    /// Writes a note from Fast-Flow itself into the log.
    pub fn system(&mut self, mut text: String) {
        self.masker.mask_in_place(&mut text);
        blocking_io(|| {
            let lines = self.writer.write_system(text);
            self.batch.extend(lines);
            self.publish();
        });
    }

    /// Flushes to the file, then announces: a viewer never sees a line the file
    /// lacks. Lines that could not be stored are not announced.
    pub fn publish(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let stored = self.writer.flush();
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        if stored {
            let _ = self
                .hub
                .send(HubEvent::Lines(Arc::new(LogBatch::new(batch))));
        }
    }

    /// Emits partial last lines, writes the drop marker, syncs the file.
    pub fn close(self) -> LogSummary {
        blocking_io(|| self.close_now())
    }

    fn close_now(mut self) -> LogSummary {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            if let Some(mut piece) = self.splitters[index(stream)].finish() {
                self.masker.mask_in_place(&mut piece.text);
                if stream == LogStream::Stderr {
                    self.stderr_tail.observe(&piece.text);
                }
                self.store(stream, piece);
            }
        }
        self.publish();
        let (summary, marker) = self.writer.close();
        if !marker.is_empty() {
            let _ = self
                .hub
                .send(HubEvent::Lines(Arc::new(LogBatch::new(marker))));
        }
        summary
    }
}

/// Runs blocking file I/O without stalling the async workers: on the multi-thread
/// runtime the worker first hands its other tasks to another thread; elsewhere (a
/// current-thread runtime, no runtime) it simply runs.
fn blocking_io<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub(super) fn classify(output: LogOutput) -> Option<(LogStream, bytes::Bytes)> {
    match output {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            Some((LogStream::Stdout, message))
        }
        LogOutput::StdErr { message } => Some((LogStream::Stderr, message)),
        LogOutput::StdIn { .. } => None,
    }
}

/// Where to record the moment `main.py` started.
pub struct SetupProbe<'a> {
    pub pool: &'a crate::db::Pool,
    pub run_id: &'a str,
    pub container_started_at: chrono::DateTime<chrono::Utc>,
}

/// How the output stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// The engine closed it: everything the container wrote was received.
    Complete,
    /// We stopped reading (the drain grace after exit, or shutdown).
    Stopped,
}

/// Reads the output stream until it ends or `stop` fires; returns why it ended if
/// the stream itself broke. Storage problems never end it (see [`LogWriter`]).
pub async fn pump(
    log: &mut RunLog,
    mut output: OutputStream,
    stop: CancellationToken,
    probe: SetupProbe<'_>,
) -> Result<PumpEnd, String> {
    let ended = loop {
        let first = tokio::select! {
            item = output.next() => item.ok_or(PumpEnd::Complete),
            _ = stop.cancelled() => Err(PumpEnd::Stopped),
        };
        let item = match first {
            Ok(item) => item,
            Err(end) => break end,
        };
        // Take everything that is already there (up to a bound), then store it in one
        // blocking section: file writes never stall an async worker.
        let mut frames = Vec::new();
        let mut bytes = 0usize;
        let mut next = Some(item);
        let mut broke = None;
        while let Some(item) = next.take() {
            match item {
                Ok(out) => {
                    if let Some(frame) = classify(out) {
                        bytes += frame.1.len();
                        frames.push(frame);
                    }
                }
                Err(e) => {
                    broke = Some(format!("the output stream broke: {e}"));
                    break;
                }
            }
            if frames.len() < MAX_FRAMES_PER_TURN && bytes < MAX_BATCH_BYTES {
                next = output.next().now_or_never().flatten();
            }
        }
        log.store_frames(frames);
        if let Some(e) = broke {
            return Err(e);
        }
        if let Some(at) = log.take_setup_event() {
            let seconds =
                (at - probe.container_started_at).num_milliseconds().max(0) as f64 / 1000.0;
            if let Err(e) =
                crate::db::runs::set_setup_duration(probe.pool, probe.run_id, seconds).await
            {
                tracing::warn!(run = %probe.run_id, error = %e, "could not record the setup duration");
            }
            log.announce_change();
        }
    };
    log.publish();
    Ok(ended)
}
