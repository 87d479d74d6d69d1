//! Receivers for notifications, on loopback: a real SMTP server (Python's
//! aiosmtpd, `tests/fixtures/smtp_sink.py`) in plain, STARTTLS or TLS mode
//! with a self-signed certificate made by `openssl`, and an HTTP webhook
//! receiver that records every request and can fail or stall on demand.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running SMTP server; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert, key).
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("smtp-cert.pem");
    let key = dir.join("smtp-key.pem");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

impl SmtpSink {
    /// `mode`: plain, starttls or tls; `tls` = (cert, key, user, password).
    pub fn start(dir: &Path, mode: &str, tls: Option<(&Path, &Path, &str, &str)>) -> SmtpSink {
        let out = dir.join(format!("mail-{mode}.jsonl"));
        // Debian's python3-aiosmtpd lives with /usr/bin/python3 (bash .ci/run installs it).
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-W", "ignore"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp_sink.py"))
            .arg(&out)
            .arg(mode);
        if let Some((cert, key, user, password)) = tls {
            cmd.arg(cert).arg(key).arg(user).arg(password);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs the SMTP sink (python3-aiosmtpd)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the sink says READY");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not start: {line:?}"));
        SmtpSink { child, port, out }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("sink JSON line"))
            .collect()
    }

    /// Waits until `n` messages arrived and returns them.
    pub async fn wait_messages(&self, n: usize, limit: Duration) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} e-mails arrived within {limit:?}: {m:?}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a webhook receiver got: its path and JSON body.
#[derive(Debug, Clone)]
pub struct Hook {
    pub path: String,
    pub body: Value,
}

/// An HTTP receiver on loopback. The first `fail_first` requests get a 500;
/// while `stall` is set, requests wait that long before their answer.
#[derive(Clone)]
pub struct HookReceiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Hook>>>,
    pub fail_first: Arc<AtomicUsize>,
    pub stall: Arc<Mutex<Option<Duration>>>,
    pub attempts: Arc<AtomicUsize>,
}

impl HookReceiver {
    pub async fn start() -> HookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::serve(listener)
    }

    /// Serves on `listener` (a given port, e.g. after a restart of the receiver).
    pub fn serve(listener: tokio::net::TcpListener) -> HookReceiver {
        let r = HookReceiver {
            addr: listener.local_addr().expect("addr"),
            received: Default::default(),
            fail_first: Default::default(),
            stall: Default::default(),
            attempts: Default::default(),
        };
        let state = r.clone();
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    state.attempts.fetch_add(1, Ordering::SeqCst);
                    let stall = *state.stall.lock().unwrap();
                    if let Some(d) = stall {
                        tokio::time::sleep(d).await;
                    }
                    let failing = state
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    state.received.lock().unwrap().push(Hook {
                        path: uri.path().to_string(),
                        body,
                    });
                    axum::http::StatusCode::OK
                }
            });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests to `path` were answered 200 and returns them.
    pub async fn wait_for(&self, path: &str, n: usize, limit: Duration) -> Vec<Hook> {
        let deadline = Instant::now() + limit;
        loop {
            let got: Vec<Hook> = self
                .hooks()
                .into_iter()
                .filter(|h| h.path == path)
                .collect();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} webhook calls to {path} within {limit:?}; all: {:?}",
                got.len(),
                self.hooks()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
