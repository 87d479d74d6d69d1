//! The engine's own copy of a run's output, and lining our log up with it: after a
//! restart the output is followed from that copy (its timestamps stripped and
//! kept, the lines already stored skipped, a rotated copy detected and said), and
//! after exit it completes what a followed stream missed.

use std::sync::Arc;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::log_pump::{MAX_BATCH_BYTES, OutputStream, RunLog, classify, index};
use super::logs::Piece;

/// The engine's timestamp of the output frame being processed, shared between a
/// followed log stream (which strips the stamps) and the log that stores it.
#[derive(Clone, Default)]
pub struct EngineClock(Arc<std::sync::atomic::AtomicI64>);

impl EngineClock {
    pub(super) fn get(&self) -> Option<chrono::DateTime<chrono::Utc>> {
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

/// How much later than our last stored line the engine must have stamped a line
/// before a search for that line in a rotated copy gives up.
const ROTATION_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Where a resumed stream stands in the engine's copy of the output.
pub(super) enum Resume {
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

pub(super) enum Take {
    Skip,
    Store,
    /// As above, and say (once) that the copy was rotated.
    SkipRotated,
    StoreRotated,
}

impl Resume {
    pub(super) fn take(
        &mut self,
        piece: &Piece,
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

    pub(super) fn after_last(pieces: u64) -> Self {
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
