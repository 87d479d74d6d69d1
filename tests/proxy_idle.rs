//! A socket proxy that ends idle connections, as HAProxy does in
//! tecnativa/docker-socket-proxy after 10 minutes (`timeout server` answers a
//! waiting request with 504, a silent tunnel such as attach is closed). Here the
//! stand-in in front of the real engine does it after 2 seconds, and a run that
//! is silent for longer must still end with its real exit code, its real end,
//! and every line of its log.

mod common;

use std::time::Duration;

use common::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IDLE: Duration = Duration::from_secs(2);

/// HAProxy's answer when the server sent nothing within `timeout server`.
const GATEWAY_TIMEOUT: &[u8] = b"HTTP/1.1 504 Gateway Time-out\r\ncontent-length: 92\r\ncache-control: no-cache\r\ncontent-type: text/html\r\n\r\n<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n";

async fn serve(mut tcp: TcpStream) {
    let Some(text) = common::engine_proxy::read_head(&mut tcp).await else {
        return;
    };
    let Some((mut unix, upgrade)) = common::engine_proxy::forward_head(&text).await else {
        return;
    };
    // Copy both ways; nothing either way for IDLE ends the connection (a 504
    // when the engine has not answered a plain request at all).
    let (mut cr, mut cw) = tcp.split();
    let (mut ur, mut uw) = unix.split();
    let (mut up, mut down) = ([0u8; 16384], [0u8; 16384]);
    let mut answered = false;
    loop {
        tokio::select! {
            n = cr.read(&mut up) => match n {
                Ok(n) if n > 0 => { if uw.write_all(&up[..n]).await.is_err() { return; } }
                _ => return,
            },
            n = ur.read(&mut down) => match n {
                Ok(n) if n > 0 => {
                    answered = true;
                    if cw.write_all(&down[..n]).await.is_err() { return; }
                }
                _ => return,
            },
            _ = tokio::time::sleep(IDLE) => {
                if !answered && !upgrade {
                    let _ = cw.write_all(GATEWAY_TIMEOUT).await;
                }
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_silent_longer_than_the_proxys_idle_timeout_ends_truthfully() {
    common::require_docker().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let proxy = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp));
        }
    });
    let app = TestApp::start_with(
        &[(
            "quiet/main.py",
            "import time\nprint('before the silence', flush=True)\ntime.sleep(7)\nprint('after the silence', flush=True)\nraise SystemExit(3)\n",
        )],
        &[("DOCKER_HOST", &host)],
    )
    .await;
    let (run, log) = app.run_to_end("quiet", "").await;
    assert_eq!(run["status"], "FAILED", "{run}\n{log}");
    assert_eq!(
        run["exit_code"], 3,
        "the real exit code, not the cut wait's: {run}"
    );
    assert_eq!(run["error_type"], "pipeline_error", "{run}");
    assert!(
        run["duration_seconds"].as_f64().unwrap_or(0.0) >= 7.0,
        "it ended when the container did, not when the wait was cut: {run}"
    );
    assert!(log.contains("before the silence"), "{log}");
    assert!(log.contains("after the silence"), "no line is lost: {log}");
    assert!(
        log.contains("the output stream was cut off"),
        "the log says so: {log}"
    );
    app.stop().await;
    proxy.abort();
}
