//! Moves a container's output into the run's log: frames from the attach (or,
//! after a restart, the follow-logs) stream are split into lines, written and
//! flushed in batches, then announced on the hub. After exit, a final non-follow
//! read of the engine's log recovers any bytes the live stream did not deliver
//! (such as an unterminated last line).

use std::pin::Pin;
use std::sync::Arc;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::hub::HubEvent;
use super::logs::{LineSplitter, LogLine, LogWriter, Stream as LogStream};

pub type OutputStream =
    Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

/// Lines collected before a flush when output arrives faster than we write.
const MAX_BATCH_LINES: usize = 2048;

/// The log of one run while it is being written.
pub struct RunLog {
    pub writer: LogWriter,
    hub: broadcast::Sender<HubEvent>,
    stdout: LineSplitter,
    stderr: LineSplitter,
    /// Newlines received per stream, to know what the final read still has to add.
    stdout_newlines: u64,
    stderr_newlines: u64,
    batch: Vec<LogLine>,
    /// Complete lines per stream (stdout, stderr) already stored before a restart.
    skip: [u64; 2],
    /// The line the runner's `sitecustomize` prints when `main.py` starts; never stored.
    setup_marker: Option<String>,
    /// When the marker arrived (`None` while the environment is being set up).
    pub setup_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    setup_reported: bool,
}

impl RunLog {
    pub fn new(writer: LogWriter, hub: broadcast::Sender<HubEvent>) -> Self {
        Self {
            writer,
            hub,
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
            stdout_newlines: 0,
            stderr_newlines: 0,
            batch: Vec::new(),
            skip: [0, 0],
            setup_marker: None,
            setup_seen_at: None,
            setup_reported: false,
        }
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

    /// Skips the first complete lines of each stream: they are already in the file.
    pub fn skip_stored(&mut self, stdout_lines: u64, stderr_lines: u64) {
        self.skip = [stdout_lines, stderr_lines];
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
    pub fn detach(mut self) -> std::io::Result<()> {
        self.publish()?;
        self.writer.flush()
    }

    fn take_chunk(&mut self, stream: LogStream, bytes: &[u8]) -> std::io::Result<()> {
        let newlines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
        let lines = match stream {
            LogStream::Stderr => {
                self.stderr_newlines += newlines;
                self.stderr.push(bytes)
            }
            _ => {
                self.stdout_newlines += newlines;
                self.stdout.push(bytes)
            }
        };
        let i = usize::from(stream == LogStream::Stderr);
        for text in lines {
            if stream == LogStream::Stdout && self.setup_marker.as_deref() == Some(text.as_str()) {
                self.setup_marker = None;
                self.setup_seen_at.get_or_insert_with(chrono::Utc::now);
                continue;
            }
            if self.skip[i] > 0 {
                self.skip[i] -= 1;
                continue;
            }
            if let Some(line) = self.writer.append(stream, text)? {
                self.batch.push(line);
            }
        }
        Ok(())
    }

    /// Writes a note from Fast-Flow itself into the log.
    pub fn system(&mut self, text: String) -> std::io::Result<()> {
        if let Some(line) = self.writer.write_system(text)? {
            self.batch.push(line);
        }
        self.publish()
    }

    /// Flushes to the file, then announces: a viewer never sees a line the file lacks.
    pub fn publish(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.writer.flush()?;
        let batch = std::mem::take(&mut self.batch);
        let _ = self.hub.send(HubEvent::Lines(Arc::new(batch)));
        Ok(())
    }

    /// Emits partial last lines, writes the drop marker, syncs the file.
    pub fn close(mut self) -> std::io::Result<super::logs::LogSummary> {
        for stream in [LogStream::Stdout, LogStream::Stderr] {
            let last = match stream {
                LogStream::Stderr => self.stderr.finish(),
                _ => self.stdout.finish(),
            };
            if let Some(text) = last
                && let Some(line) = self.writer.append(stream, text)?
            {
                self.batch.push(line);
            }
        }
        self.publish()?;
        let (summary, marker) = self.writer.close()?;
        if let Some(marker) = marker {
            let _ = self.hub.send(HubEvent::Lines(Arc::new(vec![marker])));
        }
        Ok(summary)
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

/// Reads the output stream until it ends or `stop` fires; returns why it ended if it failed.
pub async fn pump(
    log: &mut RunLog,
    mut output: OutputStream,
    stop: CancellationToken,
    probe: SetupProbe<'_>,
) -> Result<(), String> {
    loop {
        let first = tokio::select! {
            item = output.next() => item,
            _ = stop.cancelled() => None,
        };
        let Some(item) = first else { break };
        let mut next = Some(item);
        let mut n = 0;
        // Take everything that is already there, then write it in one flush.
        while let Some(item) = next.take() {
            match item {
                Ok(out) => {
                    if let Some((stream, bytes)) = classify(out) {
                        log.take_chunk(stream, &bytes)
                            .map_err(|e| format!("writing the log file failed: {e}"))?;
                    }
                }
                Err(e) => {
                    log.publish().map_err(|e| e.to_string())?;
                    return Err(format!("the output stream broke: {e}"));
                }
            }
            n += 1;
            if n < MAX_BATCH_LINES {
                next = output.next().now_or_never().flatten();
            }
        }
        log.publish()
            .map_err(|e| format!("writing the log file failed: {e}"))?;
        if let Some(at) = log.take_setup_event() {
            let seconds =
                (at - probe.container_started_at).num_milliseconds().max(0) as f64 / 1000.0;
            if let Err(e) =
                crate::db::runs::set_setup_duration(probe.pool, probe.run_id, seconds).await
            {
                tracing::warn!(run = %probe.run_id, error = %e, "could not record the setup duration");
            }
        }
    }
    log.publish()
        .map_err(|e| format!("writing the log file failed: {e}"))
}

/// After exit: adds what the engine's stored log has beyond what we received.
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
    let mut skip = [log.stdout_newlines, log.stderr_newlines];
    let mut rest: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    while let Some(item) = stored.next().await {
        let out = item.map_err(|e| format!("reading the engine's log failed: {e}"))?;
        let Some((stream, bytes)) = classify(out) else {
            continue;
        };
        let i = usize::from(stream == LogStream::Stderr);
        let mut chunk = &bytes[..];
        while skip[i] > 0 {
            match chunk.iter().position(|b| *b == b'\n') {
                Some(pos) => {
                    chunk = &chunk[pos + 1..];
                    skip[i] -= 1;
                }
                None => {
                    chunk = &[];
                    break;
                }
            }
        }
        rest[i].extend_from_slice(chunk);
    }
    for (i, stream) in [LogStream::Stdout, LogStream::Stderr]
        .into_iter()
        .enumerate()
    {
        if rest[i].is_empty() {
            continue;
        }
        let have = match stream {
            LogStream::Stderr => String::from_utf8_lossy(log.stderr.partial()).into_owned(),
            _ => String::from_utf8_lossy(log.stdout.partial()).into_owned(),
        };
        let stored = String::from_utf8_lossy(&rest[i]).into_owned();
        match stored.strip_prefix(have.as_str()) {
            Some(missing) if !missing.is_empty() => log
                .take_chunk(stream, missing.as_bytes())
                .map_err(|e| format!("writing the log file failed: {e}"))?,
            Some(_) => {}
            None => {
                tracing::warn!(container = %container_id, "stored log differs from the streamed output; kept the streamed copy")
            }
        }
    }
    log.publish()
        .map_err(|e| format!("writing the log file failed: {e}"))
}
