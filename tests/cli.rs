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

/// Polls `path` on `base` until `done` says so (or panics after 30 s).
async fn poll_until(base: &str, path: &str, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = common::client_for(base)
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if done(status, &text) {
            return (status, text);
        }
        assert!(Instant::now() < deadline, "{path}: {status} {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_that_cannot_work_is_said_at_start() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("no-such-pipelines");
    let server = common::ServerProcess::spawn(
        root.path(),
        &[
            ("PIPELINES_DIR", missing.to_str().unwrap()),
            ("WORKER_BASE_IMAGE", "fastflow-test-missing-image:none"),
        ],
    );
    let (status, ready) = poll_until(&server.base, "/ready", |s, _| s == 503).await;
    assert_eq!(status, 503);
    assert!(
        ready.contains("PIPELINES_DIR") && ready.contains("no-such-pipelines"),
        "{ready}"
    );
    let (_, banner) = poll_until(&server.base, "/fragments/engine-status", |_, t| {
        !t.is_empty()
    })
    .await;
    assert!(
        banner.contains("fastflow-test-missing-image:none"),
        "{banner}"
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("PIPELINES_DIR")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("fastflow-test-missing-image:none")),
        "{log}"
    );
    let page = common::get_text_at(&server.base, "/pipelines").await;
    assert!(!page.contains("picked up automatically"), "{page}");
    assert!(page.contains("no-such-pipelines"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_is_named_by_its_docker_host() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("pipelines")).unwrap();
    let server = common::ServerProcess::spawn(root.path(), &[("DOCKER_HOST", "tcp://127.0.0.1:9")]);
    // Until the first scan is in, /ready says only that; then it names the engine.
    let (_, ready) = poll_until(&server.base, "/ready", |s, b| {
        s == 503 && !b.contains("still being discovered")
    })
    .await;
    assert!(ready.contains("DOCKER_HOST=tcp://127.0.0.1:9"), "{ready}");
}

#[test]
fn encrypt_prints_a_token_that_python_opens_and_reads_only_stdin() {
    use std::io::Write;
    let cwd = tempfile::tempdir().unwrap();
    let key = "8ns2M_hKvtg8LAZzQgYpPbvj8pSkC9St9mFSSspWh-k=";
    let mut child = base_command(cwd.path())
        .arg("encrypt")
        .env("ENCRYPTION_KEY", key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"db-password 42\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!token.contains("db-password"));
    assert_eq!(
        common::python_fernet_decrypt(key, &token),
        "db-password 42",
        "the newline is not part of the value"
    );
    // Nothing on stdin: a clear error, exit 1.
    let out = base_command(cwd.path())
        .arg("encrypt")
        .env("ENCRYPTION_KEY", key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("standard input"));
}

#[test]
fn encrypt_never_makes_a_key_of_its_own_and_says_when_the_key_file_is_not_listed() {
    use std::io::Write;
    let cwd = tempfile::tempdir().unwrap();
    // No key configured and no server key file here: refused, nothing generated.
    let out = base_command(cwd.path())
        .arg("encrypt")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no encryption key") && err.contains("DATA_DIR"),
        "{err}"
    );
    assert!(!cwd.path().join("data/encryption.key").exists());

    // The server's generated key file is used, and said so.
    let old = "oSd0JAasI6sWLaAa_YjUMUgQ12XMStp3wwfzVizFoD4=";
    std::fs::create_dir_all(cwd.path().join("data")).unwrap();
    std::fs::write(cwd.path().join("data/encryption.key"), format!("{old}\n")).unwrap();
    let encrypt = |key: Option<&str>| {
        let mut cmd = base_command(cwd.path());
        cmd.arg("encrypt")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(k) = key {
            cmd.env("ENCRYPTION_KEY", k);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"v4lue").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = encrypt(None);
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(common::python_fernet_decrypt(old, &token), "v4lue");
    assert!(String::from_utf8_lossy(&out.stderr).contains("using the server's key from"));

    // A new ENCRYPTION_KEY while the file holds the old one: warned, with the way out.
    let new = "kcogCCTbNDkn7UOY3RvQF_CW6Qpu0HufuPWp2qm_X7U=";
    let out = encrypt(Some(new));
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds a key that ENCRYPTION_KEY(S) does not list")
            && err.contains("ENCRYPTION_KEYS=<your key>,<the key in that file>"),
        "{err}"
    );
    assert!(!err.contains(old) && !err.contains(new), "no key is shown");
}

#[test]
fn token_commands_make_list_and_revoke_tokens_without_storing_them() {
    let cwd = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| base_command(cwd.path()).args(args).output().unwrap();
    let out = run(&["token", "create", "--name", "ci", "--role", "admin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).to_string();
    // The token alone on stdout, so `$(fastflow token create …)` captures it.
    assert_eq!(token.lines().count(), 1);
    let token = token.trim();
    assert!(token.starts_with("ff_") && token.len() == 46, "{token}");

    let out = run(&["token", "create", "--name", "ci", "--role", "write"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a token named `ci` exists"));
    let out = run(&["token", "create", "--name", "x", "--role", "root"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`root` is not a role"));
    let out = run(&[
        "token",
        "create",
        "--name",
        "x",
        "--role",
        "readonly",
        "--expires-in-days",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        run(&[
            "token",
            "create",
            "--name",
            "ro",
            "--role",
            "readonly",
            "--expires-in-days",
            "7"
        ])
        .status
        .success()
    );

    let list = String::from_utf8_lossy(&run(&["token", "list"]).stdout).to_string();
    assert!(
        list.contains("ci\t(cli)\tADMIN") && list.contains("ro\t(cli)\tREADONLY"),
        "{list}"
    );
    assert!(!list.contains(token), "a listed token is never shown");
    // Only its SHA-256 is kept.
    let db = std::fs::read(cwd.path().join("data/fastflow.db")).unwrap();
    let wal = std::fs::read(cwd.path().join("data/fastflow.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }

    assert!(run(&["token", "revoke", "ci"]).status.success());
    let out = run(&["token", "revoke", "ci"]);
    assert_eq!(out.status.code(), Some(1));
    let list = String::from_utf8_lossy(&run(&["token", "list"]).stdout).to_string();
    assert!(list.contains("ADMIN") && list.contains("revoked"), "{list}");
    // A revoked name can be used again.
    assert!(
        run(&["token", "create", "--name", "ci", "--role", "write"])
            .status
            .success()
    );
}
