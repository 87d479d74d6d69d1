//! Following a run's log for a viewer, with no gap and no duplicate: subscribe to
//! the live hub first, replay the file after the viewer's last line, then forward
//! live lines with a higher sequence number. A lagging viewer re-reads the file.
//! The file is read through one cursor per viewer, off the async workers, so a
//! whole replay costs one pass over the file whatever its size.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, replay_cache};
use crate::db;
use crate::run_status::RunStatus;
use crate::runner::hub::HubEvent;
use crate::runner::logs::{LogCursor, LogLine, log_path};

/// Lines (and bytes) read from the file per step of a replay: what one viewer
/// holds while its client reads (an event's JSON can be several times its text).
pub const REPLAY_LINES: usize = 2000;
pub const REPLAY_BYTES: usize = 256 * 1024;

/// How a stream writes lines as SSE: `frame` makes the events of some lines;
/// `format` is where a live batch keeps them for the other viewers (`LogBatch::framed`).
#[derive(Clone, Copy)]
pub struct Framer {
    pub format: usize,
    pub frame: fn(&[LogLine]) -> Bytes,
}

pub enum Follow {
    /// SSE events of lines, in order (a replay step, or a live batch shared by all viewers).
    Framed(Bytes),
    /// The run's record changed (started, setup done, cancelled…): the summary is stale.
    Changed,
    End(RunStatus),
    /// Reading the stored log failed; the stream stops.
    Error(String),
}

/// The viewer's position: `Last-Event-ID` (sent by a reconnecting EventSource) or
/// `?after=`. Any number is accepted; one past the end simply yields nothing more.
pub fn resume_after(headers: &HeaderMap, after: Option<u64>) -> u64 {
    let from_header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    from_header.into_iter().chain(after).max().unwrap_or(0)
}

/// Runs blocking file work on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

/// Replay steps run one at a time (FIFO, so every viewer gets its turn).
static REPLAY_SLOT: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// The last line number and the framed events of one replay step.
type Step = Option<(u64, Bytes)>;

/// Reads and frames the next replay step off the async workers (a replay is the
/// heavy part of a stream; the workers keep answering other requests meanwhile).
/// The cursor comes back with it. `Err` if the read failed (or its task died).
async fn read_step(mut cursor: LogCursor, framer: Framer) -> Result<(LogCursor, Step), String> {
    // One replay step at a time in the whole process: many viewers replaying a long
    // log share one core, and runs, live viewers and other requests keep the rest.
    let _slot = REPLAY_SLOT.acquire().await.map_err(|e| e.to_string())?;
    let done = tokio::task::spawn_blocking(move || {
        let step = replay_step(&mut cursor, framer);
        (cursor, step)
    })
    .await;
    match done {
        Ok((cursor, Ok(step))) => Ok((cursor, step)),
        Ok((_, Err(e))) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads up to the next chunk boundary and frames it, or takes the chunk framed
/// by an earlier viewer (see `replay_cache`).
fn replay_step(cursor: &mut LogCursor, framer: Framer) -> std::io::Result<Step> {
    let Some((first, _)) = cursor.settle()? else {
        return Ok(None);
    };
    if let Some(hit) = replay_cache::get(cursor.path(), framer.format, first) {
        cursor.seek(hit.last_seq + 1, hit.end_offset);
        return Ok(Some((hit.last_seq, hit.framed)));
    }
    let want = usize::try_from(replay_cache::lines_to_boundary(first)).unwrap_or(REPLAY_LINES);
    let lines = cursor.read(want.min(REPLAY_LINES), REPLAY_BYTES)?;
    let Some(last) = lines.last().map(|l| l.seq) else {
        return Ok(None);
    };
    let framed = (framer.frame)(&lines);
    if let Some((_, end_offset)) = cursor.settle()? {
        let chunk = replay_cache::Chunk {
            framed: framed.clone(),
            last_seq: last,
            end_offset,
        };
        replay_cache::put(cursor.path(), framer.format, first, chunk);
    }
    Ok(Some((last, framed)))
}

/// Lines after `after`, then live lines, then the run's final status.
pub fn follow(
    state: AppState,
    run_id: String,
    after: u64,
    framer: Framer,
) -> impl Stream<Item = Follow> {
    async_stream::stream! {
        let path = log_path(&state.config.logs_dir, &run_id);
        let hubs = state.runner.hubs().clone();
        let mut rx = hubs.subscribe(&run_id);
        // The executor writes the final status before closing the hub, so a run
        // that is not finished now will deliver its End on `rx`. A cancelled run
        // is final in the database while its container stops: it ends on `rx` too,
        // once its exit code, last lines and counts are in.
        let mut end = match db::runs::get(&state.pool, &run_id).await {
            Ok(Some(run)) => (run.status.is_terminal() && !state.runner.is_executing(&run_id))
                .then_some(run.status),
            Ok(None) => { hubs.forget_if_unused(&run_id); return; }
            Err(e) => { yield Follow::Error(e.to_string()); return; }
        };
        let mut cursor = match blocking(move || LogCursor::open(&path, after)).await {
            Ok(c) => c,
            Err(e) => { yield Follow::Error(e.to_string()); return; }
        };
        let mut last = after;
        let mut replay = true;
        loop {
            // Read the file from the last line sent: at the start, after a lag or
            // gap, and before the end (the file is the truth).
            while replay {
                cursor.skip_through(last);
                let step = match read_step(cursor, framer).await {
                    Ok((c, step)) => { cursor = c; step }
                    Err(e) => { yield Follow::Error(e); return; }
                };
                match step {
                    None => replay = false,
                    Some((seq, framed)) => {
                        last = seq;
                        yield Follow::Framed(framed);
                    }
                }
            }
            if let Some(status) = end {
                drop(rx);
                hubs.forget_if_unused(&run_id);
                yield Follow::End(status);
                return;
            }
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = state.shutdown.cancelled() => return,
            };
            replay = true;
            match event {
                Ok(HubEvent::Lines(batch)) => {
                    let (first, newest) = match (batch.lines.first(), batch.lines.last()) {
                        (Some(f), Some(n)) => (f.seq, n.seq),
                        _ => { replay = false; continue; }
                    };
                    let next = last.checked_add(1);
                    if newest <= last {
                        replay = false;
                    } else if Some(first) == next {
                        // The usual case: the whole batch is new, framed once for all viewers.
                        last = newest;
                        replay = false;
                        yield Follow::Framed(batch.framed(framer.format, framer.frame));
                    } else if first <= last {
                        // The replay already sent its start.
                        let fresh: Vec<LogLine> = batch.lines.iter().filter(|l| l.seq > last).cloned().collect();
                        last = newest;
                        replay = false;
                        yield Follow::Framed((framer.frame)(&fresh));
                    }
                    // Otherwise a gap: we missed a batch; the replay fills it from the file.
                }
                Ok(HubEvent::Metric(_)) => replay = false,
                Ok(HubEvent::Changed) => {
                    replay = false;
                    yield Follow::Changed;
                }
                Ok(HubEvent::End(status)) => end = Some(status),
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    end = Some(match db::runs::get(&state.pool, &run_id).await {
                        Ok(Some(run)) => run.status,
                        _ => RunStatus::Failed,
                    })
                }
            }
        }
    }
}

/// Keeps `permit` (a live-stream slot) for as long as the stream lives.
pub fn with_permit<S: Stream>(
    stream: S,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = S::Item> {
    use futures_util::StreamExt;
    stream.map(move |item| {
        let _slot = &permit;
        item
    })
}

/// Wraps a stream of events as an SSE response with keep-alives.
pub fn sse_response<S>(events: S) -> impl axum::response::IntoResponse
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
