//! A Docker socket proxy that refuses a call Fast-Flow needs: the run ends at
//! once (no hang) with an error that says a proxy refused the call and what to
//! allow, on the run page and in the API. The stand-in in front of the real
//! engine answers a refused call with the exact bytes tecnativa's HAProxy sends
//! (403, its HTML page, connection closed) and passes everything else through,
//! one request per connection so that each is checked, as HAProxy checks each.

mod common;

use std::time::Duration;

use common::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// HAProxy's answer to `http-request deny` (tecnativa/docker-socket-proxy).
const DENIED: &[u8] = b"HTTP/1.0 403 Forbidden\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n";

/// Whether the request line `head` is refused: `POST /containers/create`.
fn denied(head: &str) -> bool {
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    // An optional /vX.Y prefix, as the proxy's rules allow.
    let unversioned = match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.find('/').map_or("", |i| &rest[i..])
        }
        _ => path,
    };
    method == "POST" && unversioned.starts_with("/containers/create")
}

/// How the stand-in refuses: HAProxy's 403, or cutting the connection (a
/// proxy or engine that drops the call).
#[derive(Clone, Copy)]
enum Refusal {
    Forbidden,
    Cut,
}

async fn serve(mut tcp: TcpStream, refusal: Refusal) {
    let Some(text) = common::engine_proxy::read_head(&mut tcp).await else {
        return;
    };
    if denied(&text) {
        if let Refusal::Cut = refusal {
            return; // dropped with the request body unread: the client sees a reset
        }
        let _ = tcp.write_all(DENIED).await;
        // Closed the way HAProxy closes (a lingering close): our side first, then
        // the rest of the request is read and dropped, so the client is not reset
        // while its body is still in flight.
        let _ = tcp.shutdown().await;
        let mut rest = [0u8; 4096];
        let drain = async { while matches!(tcp.read(&mut rest).await, Ok(n) if n > 0) {} };
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        return;
    }
    if let Some((mut unix, _)) = common::engine_proxy::forward_head(&text).await {
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
    }
}

/// Starts the stand-in; its DOCKER_HOST and task.
async fn stand_in(refusal: Refusal) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp, refusal));
        }
    });
    (format!("tcp://127.0.0.1:{port}"), proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_proxy_refuses_fails_the_run_at_once_and_says_why() {
    common::require_docker().await;
    assert!(denied("POST /containers/create?name=x HTTP/1.1"));
    assert!(denied("POST /v1.41/containers/create HTTP/1.1"));
    assert!(!denied("GET /containers/json HTTP/1.1"));
    let (host, proxy) = stand_in(Refusal::Forbidden).await;
    let app = TestApp::start_with(
        &[("hello/main.py", "print('hi')\n")],
        &[("DOCKER_HOST", &host)],
    )
    .await;
    // Reads pass: the engine is reachable through the proxy.
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 200, "{ready}");

    let id = app.trigger("hello", "").await;
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let error = run["error_message"].as_str().unwrap_or_default();
    assert!(
        error.contains("403 Forbidden") && error.contains("socket proxy"),
        "{error}"
    );
    assert!(
        error.contains("CONTAINERS=1") && error.contains("POST=1"),
        "{error}"
    );
    assert!(
        !error.contains("<html>"),
        "the proxy's HTML page is not passed on: {error}"
    );
    let (status, page) = app.get_text(&format!("/runs/{id}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("does not allow it") && page.contains("CONTAINERS=1"),
        "the run page says why: {}",
        &page[page.find("<main").unwrap_or(0)..]
            .chars()
            .take(3000)
            .collect::<String>()
    );
    app.stop().await;
    proxy.abort();
}

/// A create call that is cut off every time, while pings answer: the run fails
/// after a few tries instead of waiting in the queue for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_call_cut_off_every_time_fails_the_run_instead_of_waiting_for_ever() {
    common::require_docker().await;
    let (host, proxy) = stand_in(Refusal::Cut).await;
    let app = TestApp::start_with(
        &[("hello/main.py", "print('hi')\n")],
        &[("DOCKER_HOST", &host)],
    )
    .await;
    let id = app.trigger("hello", "").await;
    let run = app.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let error = run["error_message"].as_str().unwrap_or_default();
    assert!(
        error.contains("cut off 5 times") && error.contains(&host),
        "{error}"
    );
    app.stop().await;
    proxy.abort();
}
