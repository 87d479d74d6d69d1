//! Keeps a live stream (SSE) as authorized as a request: every
//! `CHECK_SECONDS` the caller is looked up again, and the stream ends with an
//! `end` event once their token is revoked or expired, they are blocked,
//! deleted or changed role, or their session ended. Without it, a stream
//! opened before a revocation would go on for as long as the run.

use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use tower_sessions::Session;

use super::AppState;
use super::identity::{self, Caller};

/// How often an open stream checks its caller again.
pub const CHECK_SECONDS: u64 = 10;

/// Whether a response is a live stream.
pub fn is_stream(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// `body`, ended when the caller who opened it may no longer read it.
pub fn guard(state: AppState, headers: HeaderMap, session: Option<Session>, body: Body) -> Body {
    let mut data = body.into_data_stream();
    let guarded = async_stream::stream! {
        let mut check = tokio::time::interval(Duration::from_secs(CHECK_SECONDS));
        check.tick().await; // the first tick is now: the request was just checked
        loop {
            tokio::select! {
                chunk = data.next() => match chunk {
                    Some(chunk) => yield chunk,
                    None => break,
                },
                _ = check.tick() => {
                    if !matches!(identity::resolve(&state, &headers, session.as_ref()).await, Caller::Known(_)) {
                        yield Ok(Bytes::from_static(
                            b"event: end\ndata: signed out or access revoked\n\n",
                        ));
                        break;
                    }
                }
            }
        }
    };
    Body::from_stream(guarded)
}
