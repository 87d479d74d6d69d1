//! `/api/runs/{id}/logs`: the log as plain text, streamed from the file in
//! batches (memory stays flat whatever the log's size), and its live SSE stream.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{ApiQuery, load_run};
use crate::runner::logs::LogLine;
use crate::runner::logs::{LogCursor, log_path, tail_cursor};
use crate::web::log_stream::{
    Follow, Framer, REPLAY_BYTES, REPLAY_LINES, blocking, follow, resume_after, with_permit,
};
use crate::web::sse_bytes;
use crate::web::{ApiError, AppError, AppState};

/// `?tail=` at most.
const MAX_TAIL: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}/logs", get(run_logs))
        .route("/runs/{id}/logs/stream", get(run_log_stream))
}

#[derive(Deserialize)]
struct LogsQuery {
    tail: Option<usize>,
    #[serde(default)]
    download: bool,
}

/// The log as plain text, one `[YYYY-MM-DD HH:MM:SS.mmm] text` line per output line.
async fn run_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Response, ApiError> {
    let run = load_run(&state, &id).await?;
    let path = log_path(&state.config.logs_dir, &run.id);
    let cursor = match q.tail {
        None => blocking(move || LogCursor::open(&path, 0)).await,
        Some(n @ 1..=MAX_TAIL) => blocking(move || tail_cursor(&path, n, u64::MAX)).await,
        Some(n) => {
            return Err(ApiError(AppError::BadRequest(format!(
                "tail must be between 1 and {MAX_TAIL}, got {n}"
            ))));
        }
    }
    .map_err(|e| AppError::internal("reading a run log", e))?;
    let disposition = if q.download {
        format!(
            "attachment; filename=\"{}-{}.log\"",
            run.pipeline_name, run.id
        )
    } else {
        "inline".into()
    };
    let body = Body::from_stream(plain_text(cursor, q.tail.unwrap_or(usize::MAX)));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// Up to `max_lines` lines from the cursor as plain text, one batch at a time.
fn plain_text(
    cursor: LogCursor,
    max_lines: usize,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold((Some(cursor), max_lines), |(cursor, left)| async move {
        let mut cursor = cursor?;
        if left == 0 {
            return None;
        }
        let want = left.min(REPLAY_LINES);
        let read = blocking(move || {
            let lines = cursor.read(want, REPLAY_BYTES)?;
            Ok((cursor, lines))
        })
        .await;
        match read {
            Ok((_, lines)) if lines.is_empty() => None,
            Ok((cursor, lines)) => {
                let mut text = String::with_capacity(lines.len() * 64);
                for line in &lines {
                    text.push_str(&line.to_plain());
                    text.push('\n');
                }
                Some((Ok(Bytes::from(text)), (Some(cursor), left - lines.len())))
            }
            // The client sees a cut-off body; the server log says why.
            Err(e) => {
                tracing::error!(error = %e, "reading a run log for a download failed");
                Some((Err(e), (None, 0)))
            }
        }
    })
}

#[derive(Deserialize)]
struct StreamQuery {
    after: Option<u64>,
}

/// SSE: `data: {"seq", "ts", "stream", "text", "line"}` with `id: seq`, then `event: end`.
async fn run_log_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    load_run(&state, &id).await?;
    let permit = state.sse_permit()?;
    let after = resume_after(&headers, q.after);
    let framer = Framer {
        format: FRAME_JSON,
        frame: json_events,
    };
    let frames = follow(state, id, after, framer).map(|item| match item {
        Follow::Framed(bytes) => bytes,
        // The API's stream carries lines and the end; the status is `GET /api/runs/{id}`.
        Follow::Changed => Bytes::new(),
        Follow::End(status) => {
            sse_bytes::event(Some("end"), None, &json!({"status": status}).to_string())
        }
        Follow::Error(e) => sse_bytes::event(Some("error"), None, &json!({"error": e}).to_string()),
    });
    Ok(sse_bytes::response(with_permit(frames, permit)))
}

/// Where the API's framing of a live batch is kept (see `LogBatch::framed`).
const FRAME_JSON: usize = 1;

/// One event of the API's live log.
#[derive(serde::Serialize)]
struct LineEvent<'a> {
    seq: u64,
    ts: &'a chrono::DateTime<chrono::Utc>,
    stream: crate::runner::logs::Stream,
    text: &'a str,
    continued: bool,
    /// The Fast-Flow 1.x form, with its timestamp.
    line: String,
}

/// One event per line: `id: seq`, the line as JSON (which never holds a raw
/// newline, so each is one `data:` line).
fn json_events(lines: &[LogLine]) -> Bytes {
    let mut out: Vec<u8> = Vec::with_capacity(lines.len() * 200);
    for l in lines {
        out.extend_from_slice(format!("id: {}\ndata: ", l.seq).as_bytes());
        let event = LineEvent {
            seq: l.seq,
            ts: &l.ts,
            stream: l.stream,
            text: &l.text,
            continued: l.continued,
            line: l.to_plain(),
        };
        if serde_json::to_writer(&mut out, &event).is_err() {
            // Writing to memory cannot fail; a line that could not be encoded is said.
            out.extend_from_slice(format!("{{\"seq\":{},\"text\":\"\"}}", l.seq).as_bytes());
        }
        out.extend_from_slice(b"\n\n");
    }
    Bytes::from(out)
}
