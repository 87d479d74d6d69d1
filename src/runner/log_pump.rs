//! Moves a container's output into the run's log: frames from the attach (or,
//! after a restart, the follow-logs) stream are split into lines, written and
//! flushed in batches, then announced on the hub. The output is drained to the
//! end whatever happens to storage: a failed write is recorded by the writer and
//! the rest is counted, never left in the container's pipe. After exit, a final
//! non-follow read of the engine's log adds what the live stream did not deliver
//! (such as an unterminated last line), streamed, never buffered whole.

use std::pin::Pin;
use std::sync::Arc;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::hub::HubEvent;
use super::logs::{
    LineSplitter, LogLine, LogSummary, LogWriter, StoredStream, Stream as LogStream,
};
use super::outcome::StderrTail;

pub type OutputStream =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// A batch is written and announced once it holds this many lines or bytes, so
/// one announcement (and each viewer's share of it) stays small.
const MAX_BATCH_LINES: usize = 2048;
const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Frames taken from the stream without waiting before a batch is written.
const MAX_FRAMES_PER_TURN: usize = 2048;

/// The log of one run while it is being written.
pub struct RunLog {
    pub writer: LogWriter,
    hub: broadcast::Sender<HubEvent>,
    splitters: [LineSplitter; 2],
    /// Newlines received per stream, to know what the final read still has to add.
    newlines: [u64; 2],
    /// Bytes received per stream since its last newline (pieces already emitted included).
    since_newline: [u64; 2],
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
}

/// The engine's timestamp of the output frame being processed, shared between a
/// followed log stream (which strips the stamps) and the log that stores it.
#[derive(Clone, Default)]
pub struct EngineClock(Arc<std::sync::atomic::AtomicI64>);

impl EngineClock {
    fn get(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let nanos = self.0.load(std::sync::atomic::Ordering::Relaxed);
        (nanos != 0).then(|| chrono::DateTime::from_timestamp_nanos(nanos))
    }

    /// Strips the `2026-11-27T23:26:00.123456789Z ` prefix of each frame of a log
    /// stream read with `timestamps=true`, keeping the time here.
    pub fn strip(self, output: OutputStream) -> OutputStream {
        Box::pin(output.map(move |item| {
            let out = item?;
            let (message, rebuild): (bytes::Bytes, fn(bytes::Bytes) -> LogOutput) = match out {
                LogOutput::StdOut { message } => (message, |m| LogOutput::StdOut { message: m }),
                LogOutput::StdErr { message } => (message, |m| LogOutput::StdErr { message: m }),
                other => return Ok(other),
            };
            let Some(space) = memchr::memchr(b' ', &message) else {
                return Ok(rebuild(message));
            };
            let stamp = std::str::from_utf8(&message[..space])
                .ok()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            match stamp {
                Some(t) => {
                    let nanos = t.timestamp_nanos_opt().unwrap_or(0);
                    self.0.store(nanos, std::sync::atomic::Ordering::Relaxed);
                    Ok(rebuild(message.slice(space + 1..)))
                }
                None => Ok(rebuild(message)),
            }
        }))
    }
}

fn index(stream: LogStream) -> usize {
    usize::from(stream == LogStream::Stderr)
}

impl RunLog {
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
        }
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
        for piece in self.splitters[i].push(bytes) {
            if stream == LogStream::Stdout
                && !piece.continued
                && self.setup_marker.as_deref() == Some(piece.text.as_str())
            {
                self.setup_marker = None;
                self.setup_seen_at.get_or_insert_with(chrono::Utc::now);
                continue;
            }
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
    fn store_frames(&mut self, frames: Vec<(LogStream, bytes::Bytes)>) {
        blocking_io(|| {
            for (stream, bytes) in frames {
                self.take_chunk(stream, &bytes);
            }
            self.publish();
        });
    }

    /// Writes a note from Fast-Flow itself into the log.
    pub fn system(&mut self, text: String) {
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
            let _ = self.hub.send(HubEvent::Lines(Arc::new(batch)));
        }
    }

    /// Emits partial last lines, writes the drop marker, syncs the file.
    pub fn close(self) -> LogSummary {
        blocking_io(|| self.close_now())
    }

    fn close_now(mut self) -> LogSummary {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            if let Some(piece) = self.splitters[index(stream)].finish() {
                if stream == LogStream::Stderr {
                    self.stderr_tail.observe(&piece.text);
                }
                self.store(stream, piece);
            }
        }
        self.publish();
        let (summary, marker) = self.writer.close();
        if !marker.is_empty() {
            let _ = self.hub.send(HubEvent::Lines(Arc::new(marker)));
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

fn classify(output: LogOutput) -> Option<(LogStream, bytes::Bytes)> {
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
        }
    };
    log.publish();
    Ok(ended)
}

/// How much later than our last stored line the engine must have stamped a line
/// before a search for that line in a rotated copy gives up.
const ROTATION_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Where a resumed stream stands in the engine's copy of the output.
enum Resume {
    /// Skipping `lines` complete lines (with their pieces), then `pieces` pieces of
    /// the line that was being written; `first` checks the copy starts where ours does.
    Counting {
        lines: u64,
        pieces: u64,
        first: Option<String>,
        /// Our last complete line and when we received it.
        last: Option<(String, chrono::DateTime<chrono::Utc>)>,
    },
    /// The copy was rotated: skipping up to our last stored line, or up to the first
    /// line the engine stamped well after we received that one (then ours is gone
    /// from the copy, and what follows is new).
    Searching {
        last: String,
        last_at: chrono::DateTime<chrono::Utc>,
        pieces: u64,
    },
    Done,
}

enum Take {
    Skip,
    Store,
    /// As above, and say (once) that the copy was rotated.
    SkipRotated,
    StoreRotated,
}

impl Resume {
    fn take(
        &mut self,
        piece: &super::logs::Piece,
        engine_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Take {
        match self {
            Self::Done => Take::Store,
            Self::Counting {
                lines,
                pieces,
                first,
                last,
            } => {
                if !piece.continued
                    && let Some(expected) = first.take()
                    && expected != piece.text
                {
                    *self = match last.take() {
                        Some((last, last_at)) => Self::Searching {
                            last,
                            last_at,
                            pieces: *pieces,
                        },
                        None => Self::Done,
                    };
                    return match self.take(piece, engine_at) {
                        Take::Store | Take::StoreRotated => Take::StoreRotated,
                        Take::Skip | Take::SkipRotated => Take::SkipRotated,
                    };
                }
                if *lines > 0 {
                    if !piece.continued {
                        *lines -= 1;
                    }
                    return Take::Skip;
                }
                if *pieces > 0 && piece.continued {
                    *pieces -= 1;
                    return Take::Skip;
                }
                *self = Self::Done;
                Take::Store
            }
            Self::Searching {
                last,
                last_at,
                pieces,
            } => {
                if !piece.continued && *last == piece.text {
                    *self = Self::after_last(*pieces);
                    return Take::Skip;
                }
                // The engine may stamp a line a little after we received it: only a line
                // stamped well after our last one proves our last is gone from the copy.
                if engine_at.is_some_and(|at| at > *last_at + ROTATION_MARGIN) {
                    *self = Self::Done;
                    return Take::Store;
                }
                Take::Skip
            }
        }
    }

    fn after_last(pieces: u64) -> Self {
        Self::Counting {
            lines: 0,
            pieces,
            first: None,
            last: None,
        }
    }
}

/// How one stream of the engine's stored log lines up with what was received.
struct Catchup {
    newlines_to_skip: u64,
    /// Bytes after the last newline that were already stored as continued pieces.
    bytes_to_skip: u64,
    /// The partial line we hold, as the engine stores it (lossy UTF-8).
    expect: Vec<u8>,
    matched: usize,
    diverged: bool,
}

/// After exit: adds what the engine's stored log has beyond what we received,
/// reading it as a stream (memory stays bounded by one frame and one partial line).
///
/// Counting is by newlines, not bytes: the engine's json-file log stores invalid
/// UTF-8 as U+FFFD, so byte counts of the two copies differ while lines do not.
pub async fn reconcile(
    log: &mut RunLog,
    docker: &Docker,
    container_id: &str,
) -> Result<(), String> {
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(false)
        .build();
    let mut stored = docker.logs(container_id, Some(options));
    let (mut pending, mut pending_bytes) = (Vec::new(), 0usize);
    let mut catchup = [0, 1].map(|i| {
        let partial = log.splitters[i].partial();
        Catchup {
            newlines_to_skip: log.newlines[i],
            bytes_to_skip: log.since_newline[i].saturating_sub(partial.len() as u64),
            expect: String::from_utf8_lossy(partial).into_owned().into_bytes(),
            matched: 0,
            diverged: false,
        }
    });
    while let Some(item) = stored.next().await {
        let out = item.map_err(|e| format!("reading the engine's log failed: {e}"))?;
        let Some((stream, bytes)) = classify(out) else {
            continue;
        };
        let c = &mut catchup[index(stream)];
        let mut chunk = &bytes[..];
        while c.newlines_to_skip > 0 && !chunk.is_empty() {
            match memchr::memchr(b'\n', chunk) {
                Some(pos) => {
                    chunk = &chunk[pos + 1..];
                    c.newlines_to_skip -= 1;
                }
                None => chunk = &[],
            }
        }
        if c.newlines_to_skip > 0 || c.diverged {
            continue;
        }
        let skip = chunk
            .len()
            .min(usize::try_from(c.bytes_to_skip).unwrap_or(usize::MAX));
        chunk = &chunk[skip..];
        c.bytes_to_skip -= skip as u64;
        if c.bytes_to_skip > 0 {
            continue;
        }
        let want = (c.expect.len() - c.matched).min(chunk.len());
        if chunk[..want] != c.expect[c.matched..c.matched + want] {
            c.diverged = true;
            tracing::warn!(container = %container_id, "stored log differs from the streamed output; kept the streamed copy");
            continue;
        }
        c.matched += want;
        chunk = &chunk[want..];
        if !chunk.is_empty() {
            pending_bytes += chunk.len();
            pending.push((stream, bytes.slice_ref(chunk)));
            if pending_bytes >= MAX_BATCH_BYTES {
                log.store_frames(std::mem::take(&mut pending));
                pending_bytes = 0;
            }
        }
    }
    log.store_frames(pending);
    Ok(())
}
