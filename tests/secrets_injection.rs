//! Secrets reaching real containers: only the keys a pipeline lists, its
//! `encrypted_env` tokens (made by Python's `cryptography`, one with an older
//! rotation key) decrypted inside the container, Fast-Flow's merge order, the
//! values masked as `***` in the stored log, both live streams, the download,
//! the error message and after a server restart; a listed key that is missing,
//! or a token no key opens, fails the run before any container exists; and no
//! secret value in plain text anywhere under the data directory.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestApp;
use serde_json::json;

/// Fernet keys for the test: the newest encrypts, the older still decrypts.
const NEW_KEY: &str = "kcogCCTbNDkn7UOY3RvQF_CW6Qpu0HufuPWp2qm_X7U=";
const OLD_KEY: &str = "oSd0JAasI6sWLaAa_YjUMUgQ12XMStp3wwfzVizFoD4=";

const DB_PASSWORD: &str = "db-pa55word-XYZ";
const UNLISTED: &str = "unlisted-value-QRS";
const TOKEN_PLAIN: &str = "tok-from-python-123";
const OLD_KEY_PLAIN: &str = "made-with-old-key-456";
const NIGHTLY_PLAIN: &str = "nightly-token-789";

/// Prints each variable reversed: a value printed as it is would be masked.
const REPORT_PY: &str = r#"import json, os, sys
keys = ["K1", "K2", "K3", "K4", "K5", "K6", "K7", "TOKEN", "OLD", "NIGHTLY", "DB_PASSWORD", "REGION"]
print("REVERSED " + json.dumps({k: os.environ.get(k, "")[::-1] for k in keys}))
print("UNLISTED present:", "UNLISTED" in os.environ)
print(f"password is {os.environ['DB_PASSWORD']}!")
print(f"token={os.environ['TOKEN']};region={os.environ['REGION']}", file=sys.stderr)
"#;

fn report_pipeline_json() -> String {
    let enc = |plain: &str| common::python_fernet_encrypt(NEW_KEY, plain);
    json!({
        "secrets": ["DB_PASSWORD", "REGION", "K5", "K6", "K7"],
        "default_env": {"K1": "K1-pd", "K2": "K2-pd", "K3": "K3-pd", "K4": "K4-pd",
                        "K5": "K5-pd", "K6": "K6-pd", "K7": "K7-pd"},
        "encrypted_env": {
            "TOKEN": enc(TOKEN_PLAIN),
            "OLD": common::python_fernet_encrypt(OLD_KEY, OLD_KEY_PLAIN),
            "K3": enc("K3-pe"), "K4": enc("K4-pe"), "K5": enc("K5-pe"),
            "K6": enc("K6-pe"), "K7": enc("K7-pe")
        },
        "schedules": [{
            "id": "nightly", "schedule_cron": "0 3 * * *", "enabled": false,
            "default_env": {"K2": "K2-rd", "K3": "K3-rd", "K4": "K4-rd", "K5": "K5-rd",
                            "K6": "K6-rd", "K7": "K7-rd"},
            "encrypted_env": {"NIGHTLY": enc(NIGHTLY_PLAIN), "K4": enc("K4-re"),
                              "K5": enc("K5-re"), "K6": enc("K6-re"), "K7": enc("K7-re")}
        }]
    })
    .to_string()
}

async fn define(app: &TestApp, key: &str, value: &str, is_parameter: bool) {
    let body = json!({"key": key, "value": value, "is_parameter": is_parameter});
    let (code, made) = app.post_json("/api/secrets", &body.to_string()).await;
    assert_eq!(code, 201, "{key}: {made}");
}

fn reversed_report(log: &str) -> serde_json::Value {
    let line = common::log_texts(log)
        .into_iter()
        .find_map(|t| t.strip_prefix("REVERSED "))
        .unwrap_or_else(|| panic!("no report line in:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("report JSON");
    let obj = v.as_object().expect("report object");
    obj.iter()
        .map(|(k, v)| {
            let s: String = v.as_str().unwrap_or_default().chars().rev().collect();
            (k.clone(), json!(s))
        })
        .collect()
}

/// Every file under `dir` (database, WAL, logs, metrics) as bytes.
fn files_under(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_secrets_and_encrypted_env_reach_the_container_in_order_and_are_masked() {
    let keys = format!("{NEW_KEY},{OLD_KEY}");
    let app = TestApp::start_with(
        &[
            ("report/main.py", REPORT_PY),
            ("report/pipeline.json", &report_pipeline_json()),
        ],
        &[("ENCRYPTION_KEYS", &keys)],
    )
    .await;
    define(&app, "DB_PASSWORD", DB_PASSWORD, false).await;
    define(&app, "UNLISTED", UNLISTED, false).await;
    define(&app, "REGION", "eu-west-1", true).await;
    for k in ["K5", "K6", "K7"] {
        define(&app, k, &format!("{k}-secret"), false).await;
    }

    let body = json!({
        "run_config_id": "nightly",
        "env_vars": {"K6": "K6-req-env", "K7": "K7-req-env"},
        "parameters": {"K7": "K7-req-param"}
    });
    let id = app.trigger("report", &body.to_string()).await;
    let ui_stream = app
        .client
        .get(app.url(&format!("/runs/{id}/log/stream")))
        .send()
        .await
        .expect("UI stream");
    let api_stream = app
        .client
        .get(app.url(&format!("/api/runs/{id}/logs/stream")))
        .send()
        .await
        .expect("API stream");
    let ui = tokio::spawn(common::read_sse(ui_stream, Duration::from_secs(180)));
    let api = tokio::spawn(common::read_sse(api_stream, Duration::from_secs(180)));
    let run = app.wait_finished(&id, Duration::from_secs(180)).await;
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert_eq!(run["status"], "SUCCESS", "{run}\n{log}");

    let env = reversed_report(&log);
    // Merge order: default_env → run config default_env → encrypted_env →
    // run config encrypted_env → listed secrets → request env_vars → parameters.
    for (key, want) in [
        ("K1", "K1-pd"),
        ("K2", "K2-rd"),
        ("K3", "K3-pe"),
        ("K4", "K4-re"),
        ("K5", "K5-secret"),
        ("K6", "K6-req-env"),
        ("K7", "K7-req-param"),
        ("TOKEN", TOKEN_PLAIN),
        ("OLD", OLD_KEY_PLAIN),
        ("NIGHTLY", NIGHTLY_PLAIN),
        ("DB_PASSWORD", DB_PASSWORD),
        ("REGION", "eu-west-1"),
    ] {
        assert_eq!(env[key], want, "{key} in {env}");
    }
    let texts = common::log_texts(&log);
    assert!(texts.contains(&"UNLISTED present: False"), "{log}");
    assert!(texts.contains(&"password is ***!"), "{log}");
    // A parameter is plain configuration: shown, not masked.
    assert!(texts.contains(&"token=***;region=eu-west-1"), "{log}");
    for secret in [DB_PASSWORD, TOKEN_PLAIN] {
        assert!(!log.contains(secret), "{secret} in the stored log");
    }

    let (_, download) = app
        .get_text(&format!("/api/runs/{id}/logs?download=true"))
        .await;
    assert!(download.contains("password is ***!"), "{download}");
    for (name, events) in [("UI", ui), ("API", api)] {
        let events = events.await.expect("stream task");
        let data: String = events.iter().map(|e| e.data.as_str()).collect();
        assert!(data.contains("password is ***!"), "{name} stream: {data}");
        assert!(
            !data.contains(DB_PASSWORD) && !data.contains(TOKEN_PLAIN),
            "{name} stream leaks: {data}"
        );
    }
    let (_, detail) = app.get_json(&format!("/api/runs/{id}")).await;
    assert_eq!(
        detail["injected_secrets"],
        json!({
            "DB_PASSWORD": "secret", "REGION": "parameter", "K5": "secret",
            "TOKEN": "encrypted_env", "OLD": "encrypted_env",
            "NIGHTLY": "encrypted_env", "K3": "encrypted_env", "K4": "encrypted_env"
        }),
        "K6 and K7 came from the request, which wins: no secret of theirs reached the run"
    );
    let (_, page) = app.get_text(&format!("/runs/{id}")).await;
    assert!(page.contains("Secrets received"), "{page}");
    for text in [detail.to_string(), page] {
        assert!(!text.contains(DB_PASSWORD) && !text.contains(TOKEN_PLAIN));
    }

    // Nothing under DATA_DIR holds a secret value in plain text: database, WAL, logs.
    let data = app.dir.path().join("data");
    let files = files_under(&data);
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "db"))
    );
    for (path, bytes) in &files {
        for secret in [
            DB_PASSWORD,
            UNLISTED,
            TOKEN_PLAIN,
            OLD_KEY_PLAIN,
            NIGHTLY_PLAIN,
        ] {
            assert!(
                !contains(bytes, secret),
                "{secret} in plain text in {}",
                path.display()
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unreadable_secret_fails_before_any_container_and_says_which() {
    let foreign_key = "SdBKKhID9WSqTSCSjORW43Mqv1SEbkZisnX3_nB5UQ4=";
    let app = TestApp::start_with(
        &[
            ("needs/main.py", "print('must not run')\n"),
            (
                "needs/pipeline.json",
                r#"{"secrets": ["DEFINED_ONE", "NOT_DEFINED", "ALSO_MISSING", "defined_one"]}"#,
            ),
            ("badtoken/main.py", "print('must not run')\n"),
            ("huge/main.py", "print('must not run')\n"),
            (
                "huge/pipeline.json",
                &json!({"secrets": (0..70).map(|i| format!("BIG{i}")).collect::<Vec<_>>()})
                    .to_string(),
            ),
            (
                "forgot/main.py",
                "import os\nprint(os.environ['DEFINED_ONE'])\n",
            ),
            (
                "badtoken/pipeline.json",
                &json!({"encrypted_env": {
                    "FOREIGN": common::python_fernet_encrypt(foreign_key, "x-secret-x"),
                    "GARBAGE": "gAAAAAnot-a-token",
                    "NULVAL": fernet::Fernet::new(NEW_KEY).expect("key").encrypt(b"a\0bcd")
                }})
                .to_string(),
            ),
        ],
        &[("ENCRYPTION_KEY", NEW_KEY)],
    )
    .await;
    define(&app, "DEFINED_ONE", "defined-value", false).await;
    // The pipeline page says so before anyone runs it.
    let (_, page) = app.get_text("/pipelines/needs").await;
    assert!(
        page.contains(
            "Secret <code>NOT_DEFINED</code> is listed in <code>secrets</code> but not defined"
        ),
        "{page}"
    );
    let (_, config) = app.get_text("/pipelines/needs?tab=configuration").await;
    assert!(config.contains("<code>DEFINED_ONE</code> <span class=\"badge ok\">secret</span>"));
    let (_, page) = app.get_text("/pipelines/badtoken").await;
    assert!(
        page.contains("field `encrypted_env.GARBAGE`: is not a Fernet token"),
        "a warning before any run: {page}"
    );
    for entry in ["encrypted_env.FOREIGN", "encrypted_env.GARBAGE"] {
        assert!(
            page.contains(&format!("<code>{entry}</code> cannot be decrypted")),
            "{entry}: {page}"
        );
    }
    for (pipeline, wanted) in [
        (
            "needs",
            &[
                "`NOT_DEFINED` is listed",
                "`ALSO_MISSING` is listed",
                "`defined_one` is listed in pipeline.json `secrets` but is not defined (did you mean `DEFINED_ONE`?)",
            ][..],
        ),
        (
            "badtoken",
            &[
                "`encrypted_env.FOREIGN` cannot be decrypted",
                "`encrypted_env.GARBAGE` cannot be decrypted",
                "`encrypted_env.NULVAL` decrypts to a value with a NUL character",
            ][..],
        ),
    ] {
        let (run, log) = app.run_to_end(pipeline, "").await;
        assert_eq!(run["status"], "FAILED", "{run}");
        assert_eq!(run["error_type"], "infrastructure_error", "{run}");
        assert!(run["container_started_at"].is_null(), "{run}");
        let message = run["error_message"].as_str().unwrap_or_default();
        for w in wanted {
            assert!(message.contains(w), "{pipeline}: {message}");
        }
        assert!(!message.contains("defined-value") && !message.contains("x-secret-x"));
        assert!(!log.contains("must not run"), "{log}");
        let id = run["id"].as_str().expect("id");
        assert!(common::containers_for_run(id).await.is_empty());
    }
    // 70 secrets of 16 000 bytes: more environment than the kernel starts a program with.
    for i in 0..70 {
        define(&app, &format!("BIG{i}"), &"x".repeat(16_000), false).await;
    }
    let (run, _) = app.run_to_end("huge", "").await;
    assert_eq!(run["error_type"], "pipeline_error", "{run}");
    let message = run["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("the run's environment is 10") && message.contains("at most 1024 KiB fit"),
        "{message}"
    );
    assert!(run["container_started_at"].is_null());
    // Reading a stored secret without listing it: the error says why it is missing.
    let (run, _) = app.run_to_end("forgot", "").await;
    assert_eq!(run["error_type"], "pipeline_error", "{run}");
    let message = run["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("KeyError: 'DEFINED_ONE'")
            && message.contains(
                "`DEFINED_ONE` is a stored secret, but pipeline.json does not list it in `secrets`"
            ),
        "{message}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masking_holds_in_error_messages_and_after_a_server_restart() {
    let mut app = TestApp::start_with(
        &[
            (
                "leaky/main.py",
                "import os, sys, time\ns = os.environ['API_KEY']\nprint('first', s, flush=True)\ntime.sleep(4)\nprint('second', s)\nraise RuntimeError(f'upstream refused key {s}')\n",
            ),
            ("leaky/pipeline.json", r#"{"secrets": ["API_KEY", "PIN"]}"#),
        ],
        &[("ENCRYPTION_KEY", NEW_KEY)],
    )
    .await;
    let secret = "ak_live_0123456789";
    define(&app, "API_KEY", secret, false).await;
    define(&app, "PIN", "123", false).await;
    let id = app.trigger("leaky", "").await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
        if log.contains("first ***") {
            break;
        }
        assert!(!log.contains(secret), "{log}");
        assert!(Instant::now() < deadline, "first line never came: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The container goes on without us; the next process re-attaches to it.
    app.stop_only().await;
    app.start_again().await;
    let run = app.wait_finished(&id, Duration::from_secs(120)).await;
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert_eq!(run["status"], "FAILED", "{run}\n{log}");
    assert!(!log.contains(secret), "{log}");
    assert!(log.contains("second ***"), "{log}");
    assert!(log.contains("not masked in this log"), "{log}");
    assert!(log.contains("PIN"), "the short value is named: {log}");
    let message = run["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("upstream refused key ***"), "{run}");
    assert!(!run.to_string().contains(secret));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_and_overlapping_forms_are_masked_and_debug_logging_stays_clean() {
    common::require_docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    common::write_files(
        &root.join("pipelines"),
        &[
            (
                "leak/main.py",
                "import json, logging, os\nlogging.basicConfig(level=logging.INFO)\nkeys = ['S_REGEX', 'S_CR', 'S_UNI', 'S_PEM']\ncfg = {k: os.environ[k] for k in keys}\nprint(cfg)\nprint(json.dumps(cfg))\nlogging.info('%r', cfg)\nprint('joined', os.environ['S_A'] + os.environ['S_B'][4:])\nprint(os.environ['S_SHORTLINES'])\nprint(repr(os.environ['S_NBSP']))\nkey = json.loads(os.environ['S_JSON'])\nprint(key['private_key_id'], key)\n",
            ),
            (
                "leak/pipeline.json",
                r#"{"secrets": ["S_REGEX", "S_CR", "S_UNI", "S_PEM", "S_A", "S_B", "S_SHORTLINES", "S_NBSP", "S_JSON"]}"#,
            ),
        ],
    );
    let server =
        // The most specific target a user could ask for, and everything else at debug.
        common::ServerProcess::spawn(
            root,
            &[
                ("ENCRYPTION_KEY", NEW_KEY),
                ("RUST_LOG", "debug,bollard=trace,bollard::docker=trace"),
            ],
        );
    let values = [
        ("S_REGEX", "a.b*c+(d)[e]$^|\\x"),
        ("S_CR", "abc\rdefghij"),
        ("S_UNI", "p\u{e4}ssw\u{f6}rd\u{2192}"),
        (
            "S_PEM",
            "-----BEGIN KEY-----\nAAAAQQQQ\nBBBBRRRR\n-----END KEY-----",
        ),
        ("S_A", "1234abcd"),
        ("S_B", "abcd5678"),
        ("S_SHORTLINES", "ab\ncd\nef"),
        ("S_NBSP", "LEAK10a\u{a0}b\u{ad}c"),
        (
            "S_JSON",
            r#"{"private_key_id": "0123456789abcdef", "private_key": "-----BEGIN KEY-----\nMIIEvQIBADAN\n-----END KEY-----\n"}"#,
        ),
    ];
    let client = common::client_for(&server.base);
    for (key, value) in values {
        let resp = client
            .post(format!("{}/api/secrets", server.base))
            .json(&json!({"key": key, "value": value}))
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status(), 201, "{key}");
    }
    let id = common::trigger_at(&server.base, "leak").await;
    let run = common::wait_finished_at(&server.base, &id).await;
    let log = common::get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    assert_eq!(run["status"], "SUCCESS", "{run}\n{log}");
    // repr, json.dumps and logging's %r of the values: each stays hidden.
    for fragment in [
        "defghij",
        "ssw",
        "(d)[e]",
        "AAAAQQQQ",
        "BBBBRRRR",
        "5678",
        "LEAK10",
        "0123456789abcdef",
        "MIIEvQIBADAN",
    ] {
        assert!(!log.contains(fragment), "{fragment} in:\n{log}");
    }
    assert!(log.contains("joined ***"), "{log}");
    assert!(
        log.contains("not masked in this log") && log.contains("S_SHORTLINES"),
        "a value whose lines are all short is named: {log}"
    );
    // The Docker client's debug output holds the container's environment: not logged.
    let server_log = server.log();
    assert!(server_log.contains("DEBUG"), "debug logging is on");
    for (key, value) in values.iter().filter(|(k, _)| *k != "S_SHORTLINES") {
        for line in value.split('\n').filter(|l| l.len() >= 4) {
            assert!(!server_log.contains(line), "{key} in the server log");
        }
    }
    assert!(!server_log.contains("hunter") && !server_log.contains("1234abcd"));
}
