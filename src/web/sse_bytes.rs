//! Server-sent events written as bytes. A live batch of log lines is framed once
//! and the same `Bytes` (a reference count, no copy) go to every viewer; axum's
//! `Sse` would frame each event again for each response.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

/// A comment line sent when nothing else was, so proxies keep the connection.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// Appends one event: `event:` and `id:` when given, then `data:` once per line of
/// `data` (the SSE way to carry newlines); a carriage return, which SSE would read
/// as a line end, is dropped.
pub fn frame(out: &mut String, event: Option<&str>, id: Option<u64>, data: &str) {
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.extend(line.chars().filter(|c| *c != '\r'));
        out.push('\n');
    }
    out.push('\n');
}

/// One event as bytes.
pub fn event(event: Option<&str>, id: Option<u64>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    frame(&mut out, event, id, data);
    Bytes::from(out)
}

/// An `text/event-stream` response of already framed events, with keep-alives.
pub fn response<S>(frames: S) -> Response
where
    S: Stream<Item = Bytes> + Send + 'static,
{
    let body = async_stream::stream! {
        let mut frames = std::pin::pin!(frames);
        loop {
            let next = tokio::time::timeout(KEEP_ALIVE_EVERY, frames.next()).await;
            match next {
                Ok(Some(bytes)) => yield Ok::<_, std::convert::Infallible>(bytes),
                Ok(None) => return,
                Err(_) => yield Ok(Bytes::from_static(b":\n\n")),
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body.boxed()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_like_the_sse_spec() {
        let mut out = String::new();
        frame(&mut out, Some("line"), Some(7), "a\r\nb");
        assert_eq!(out, "event: line\nid: 7\ndata: a\ndata: b\n\n");
        assert_eq!(&event(None, None, "")[..], b"data: \n\n");
    }
}
