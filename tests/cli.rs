//! The `fastflow` binary itself: `check` exit codes and the zero-config first start.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::write_files;

const BIN: &str = env!("CARGO_BIN_EXE_fastflow");

#[test]
fn check_exit_codes_and_report() {
    let good = tempfile::tempdir().unwrap();
    write_files(
        good.path(),
        &[
            ("a/main.py", ""),
            ("a/pipeline.json", r#"{"timeout": 5, "extra": 1}"#),
            ("b/main.py", ""),
        ],
    );
    let out = Command::new(BIN)
        .args(["check", good.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("ok      a") && text.contains("2 pipelines") && text.contains("0 invalid"),
        "{text}"
    );
    assert!(
        text.contains("warning: a/pipeline.json: field `extra`: unknown field"),
        "{text}"
    );

    let bad = tempfile::tempdir().unwrap();
    write_files(
        bad.path(),
        &[
            ("ok/main.py", ""),
            ("bad/main.py", ""),
            (
                "bad/bad.json",
                r#"{"mem_hard_limit": "-1g", "retry_attempts": "3"}"#,
            ),
        ],
    );
    let out = Command::new(BIN)
        .args(["check", bad.path().to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("INVALID bad"), "{text}");
    assert!(
        text.contains("error: bad/bad.json: field `mem_hard_limit`: `-1g`: must not be negative"),
        "{text}"
    );
    assert!(
        text.contains("error: bad/bad.json: field `retry_attempts`"),
        "{text}"
    );

    let out = Command::new(BIN)
        .args(["check", "/nonexistent/pipelines"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/nonexistent/pipelines"));
}

fn base_command(cwd: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", host);
    }
    cmd
}

#[test]
fn zero_config_first_start_creates_database_and_key() {
    let cwd = tempfile::tempdir().unwrap();
    write_files(
        cwd.path(),
        &[("examples/pipelines/hello/main.py", "print('hi')\n")],
    );
    let mut child = base_command(cwd.path())
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("server did not report its address; output: {seen:#?}")
            });
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.trim().to_string();
        }
        seen.push(line);
    };
    assert!(
        addr.starts_with("127.0.0.1:"),
        "binds loopback by default: {addr}"
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("generated a new key") && l.contains("encryption.key")),
        "{seen:#?}"
    );
    let key = cwd.path().join("data/encryption.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(cwd.path().join("data/fastflow.db").exists());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn production_without_key_refuses_to_start_and_says_how() {
    let cwd = tempfile::tempdir().unwrap();
    let out = base_command(cwd.path())
        .env("ENVIRONMENT", "production")
        .env("PORT", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ENCRYPTION_KEY") && err.contains("Fernet.generate_key"),
        "{err}"
    );
    assert!(!cwd.path().join("data/encryption.key").exists());
}

#[test]
fn bad_config_names_the_variable() {
    let cwd = tempfile::tempdir().unwrap();
    let out = base_command(cwd.path())
        .env("PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PORT"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
