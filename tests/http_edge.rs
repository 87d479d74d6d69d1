//! The HTTP edge under abuse, over real sockets: half-sent requests and a low
//! open-file limit, stalled bodies, too many live streams, DNS rebinding,
//! `Origin: null`, and the security headers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{ServerProcess, TestApp, write_files};

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Sends raw bytes; returns what the server answered, and whether the server
/// closed the connection (rather than our read timing out after `limit`).
fn raw_exchange_closed(addr: &str, request: &[u8], limit: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let closed = match s.read_to_end(&mut out) {
        Ok(_) => true,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

fn raw_exchange(addr: &str, request: &[u8], limit: Duration) -> String {
    raw_exchange_closed(addr, request, limit).0
}

#[test]
fn half_sent_requests_cannot_exhaust_a_low_open_file_limit() {
    let root = tempfile::tempdir().unwrap();
    write_files(
        &root.path().join("pipelines"),
        &[("p/main.py", "print(1)\n")],
    );
    let server = ServerProcess::spawn_with(root.path(), &[("HTTP_HEADER_TIMEOUT", "2")], |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit in the child before exec; no allocation, no locks.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: 256,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    let addr = addr(&server.base);
    // 300 connections that never finish their headers.
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(mut s) = TcpStream::connect(&addr) {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
            held.push(s);
        }
    }
    assert!(
        server
            .log()
            .contains("HTTP_MAX_CONNECTIONS is above what the open-file limit allows"),
        "the cap was lowered to fit 256 descriptors: {}",
        server.log()
    );
    // Those over the cap are told so at once, not left hanging.
    let refused = held
        .iter_mut()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = [0u8; 64];
            matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 503"))
        })
        .filter(|refused| *refused)
        .count();
    assert!(
        refused >= 300 - 192,
        "only {refused} connections were refused with 503"
    );
    // The header timeout frees the others; the server serves again and never hit EMFILE.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = raw_exchange(
            &addr,
            b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            Duration::from_secs(5),
        );
        if reply.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not recover: {reply}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every half-sent connection was closed by the server (EOF or reset), none still waits.
    let still_open = held
        .iter_mut()
        .map(|s| {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 256];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(_) => continue,
                    Err(e) => {
                        return matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        );
                    }
                }
            }
        })
        .filter(|open| *open)
        .count();
    assert_eq!(still_open, 0);
    assert!(
        !server.log().contains("Too many open files"),
        "{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_by_the_idle_timeout() {
    let app = TestApp::start_with(&[("p/main.py", "")], &[("HTTP_IDLE_TIMEOUT", "30")]).await;
    let addr = addr(&app.base);
    let request = format!(
        "POST /api/pipelines/p/run HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"env_vars\":",
        app.token
    );
    let (reply, closed) = tokio::task::spawn_blocking(move || {
        raw_exchange_closed(&addr, request.as_bytes(), Duration::from_secs(60))
    })
    .await
    .unwrap();
    assert!(closed, "the server closed the stalled connection: {reply}");
    let (_, runs) = app.get_json("/api/runs").await;
    assert_eq!(runs["total"], 0, "no run was started from half a body");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_cut_by_the_request_timeout() {
    let app = TestApp::start_with(&[("p/main.py", "")], &[("HTTP_REQUEST_TIMEOUT", "5")]).await;
    let addr = addr(&app.base);
    // One byte a second keeps the idle timer happy; the request deadline still ends it.
    let request = format!(
        "POST /api/pipelines/p/run HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        app.token
    );
    let reply = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(900)))
            .unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        for _ in 0..60 {
            if s.write_all(b" ").is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped() {
    let app = TestApp::start_with(
        &[(
            "slow/main.py",
            "import time\nprint('a', flush=True)\ntime.sleep(30)\n",
        )],
        &[("MAX_SSE_STREAMS", "2")],
    )
    .await;
    let id = app.trigger("slow", "{}").await;
    let url = app.url(&format!("/api/runs/{id}/logs/stream"));
    let first = app.client.get(&url).send().await.unwrap();
    let second = app.client.get(&url).send().await.unwrap();
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = app.client.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 503);
    let body: serde_json::Value = third.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("MAX_SSE_STREAMS"),
        "{body}"
    );
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = app.client.get(&url).send().await.unwrap();
        if again.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never given back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.client
        .post(app.url(&format!("/api/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_and_opaque_origins_are_refused() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let port = app.base.rsplit(':').next().unwrap().to_string();
    let evil = format!("evil.example:{port}");
    // A page on evil.example that now resolves to us: same-origin in the browser's eyes.
    let post = app
        .client
        .post(app.url("/api/pipelines/p/run"))
        .header("host", &evil)
        .header("origin", format!("http://{evil}"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 421);
    assert!(post.text().await.unwrap().contains("ALLOWED_HOSTS"));
    let read = app
        .client
        .get(app.url("/api/runs"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 421, "reading is refused too");
    for origin in ["null", "https://other.example"] {
        let resp = app
            .client
            .post(app.url("/api/pipelines/p/run"))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "Origin: {origin}");
    }
    // Request-line and header tricks: an absolute URI naming another host, two Hosts.
    let raw = addr(&app.base);
    let (absolute, twice) = tokio::task::spawn_blocking(move || {
        (
            raw_exchange(
                &raw,
                b"GET http://evil.example/api/runs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                Duration::from_secs(5),
            ),
            raw_exchange(
                &raw,
                b"GET /api/runs HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
                Duration::from_secs(5),
            ),
        )
    })
    .await
    .unwrap();
    assert!(absolute.starts_with("HTTP/1.1 421"), "{absolute}");
    assert!(twice.starts_with("HTTP/1.1 400"), "{twice}");
    let (_, runs) = app.get_json("/api/runs").await;
    assert_eq!(runs["total"], 0, "nothing was started");
    // The same requests from our own origin work.
    let own = app
        .client
        .post(app.url("/api/pipelines/p/run"))
        .header("origin", &app.base)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let page = app.client.get(app.url("/pipelines")).send().await.unwrap();
    let h = page.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_and_base_url_widen_the_host_check() {
    let app = TestApp::start_with(
        &[("p/main.py", "")],
        &[
            ("BASE_URL", "https://flow.example.com"),
            ("ALLOWED_HOSTS", "internal.lan"),
        ],
    )
    .await;
    for (host, expected) in [
        ("flow.example.com", 200),
        ("internal.lan:8000", 200),
        ("localhost", 200),
        ("192.168.1.20:8000", 200),
        ("other.example", 421),
    ] {
        let resp = app
            .client
            .get(app.url("/health"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected, "{host}");
    }
    app.stop().await;
}
