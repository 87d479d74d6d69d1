//! Webhooks, downstream chains, restart_on_crash and the Run form's run
//! configuration, over real HTTP with real containers.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use serde_json::Value;

const ENV_PRINTER: &str =
    "import os\nprint('MODE=' + os.environ.get('MODE', '-'), 'X=' + os.environ.get('X', '-'))\n";

async fn post(app: &TestApp, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn webhooks_answer_like_fast_flow_and_a_schedule_key_selects_its_run_configuration() {
    let app = TestApp::start_with(
        &[
            ("hook/main.py", ENV_PRINTER),
            (
                "hook/pipeline.json",
                r#"{"webhook_key": "pipeline-key-123", "default_env": {"MODE": "default"},
                    "schedules": [{"id": "prod", "default_env": {"MODE": "prod"}, "webhook_key": "prod-key-456"}]}"#,
            ),
            ("nokey/main.py", ENV_PRINTER),
            ("off/main.py", ENV_PRINTER),
            ("off/pipeline.json", r#"{"enabled": false, "webhook_key": "k"}"#),
        ],
        &[("WEBHOOK_RATE_LIMIT", "1000")],
    )
    .await;
    let json = "application/json";
    // 200 with the pipeline's key: its own settings.
    let (status, run) = post(&app, "/api/webhooks/hook/pipeline-key-123", json, "").await;
    assert_eq!(status, 200, "{run}");
    for field in ["id", "pipeline_name", "status", "started_at", "log_file"] {
        assert!(!run[field].is_null(), "{field} in {run}");
    }
    assert_eq!(run["run_config_id"], Value::Null);
    let default_run = app
        .wait_finished(run["id"].as_str().expect("id"), Duration::from_secs(120))
        .await;
    assert_eq!(default_run["triggered_by"], "webhook");
    // 200 with a schedule's key: that run configuration, plus the body's values.
    let (status, run) = post(
        &app,
        "/api/webhooks/hook/prod-key-456",
        json,
        r#"{"env_vars": {"X": "from-body"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["run_config_id"], "prod");
    let id = run["id"].as_str().expect("id").to_string();
    let done = app.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "SUCCESS", "{done}");
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(log.contains("MODE=prod X=from-body"), "{log}");
    // 401: a wrong key, also one that only shares a prefix.
    for key in ["wrong", "prod-key-45", "pipeline-key-1234"] {
        let (status, body) = post(&app, &format!("/api/webhooks/hook/{key}"), json, "").await;
        assert_eq!(status, 401, "{key}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains("key")),
            "{body}"
        );
    }
    // 404: unknown pipeline, disabled pipeline, pipeline without a key.
    for path in [
        "/api/webhooks/ghost/k",
        "/api/webhooks/off/k",
        "/api/webhooks/nokey/k",
    ] {
        let (status, body) = post(&app, path, json, "").await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body["detail"].is_string(), "{body}");
    }
    // 400: a bad body (broken JSON, wrong types, choosing a run configuration, too many keys).
    let many: String = (0..51)
        .map(|i| format!("\"K{i}\": \"v\""))
        .collect::<Vec<_>>()
        .join(",");
    for body in [
        "{not json".to_string(),
        r#"{"env_vars": []}"#.to_string(),
        r#"{"run_config_id": "prod"}"#.to_string(),
        format!(r#"{{"env_vars": {{{many}}}}}"#),
        format!(
            r#"{{"parameters": {{"BIG": "{}"}}}}"#,
            "x".repeat(17 * 1024)
        ),
    ] {
        let (status, answer) = post(&app, "/api/webhooks/hook/pipeline-key-123", json, &body).await;
        assert_eq!(status, 400, "{}: {answer}", &body[..body.len().min(60)]);
        assert!(answer["detail"].is_string(), "{answer}");
    }
    // A body over the cap (2 MiB) is 413, before it is parsed.
    let huge = format!(r#"{{"env_vars": {{"A": "{}"}}}}"#, "x".repeat(3 << 20));
    let (status, _) = post(&app, "/api/webhooks/hook/pipeline-key-123", json, &huge).await;
    assert_eq!(status, 413);
    // A body that is not JSON at all is refused, not ignored.
    let (status, _) = post(
        &app,
        "/api/webhooks/hook/pipeline-key-123",
        "text/plain",
        "x=1",
    )
    .await;
    assert_eq!(status, 415);
    // The pipeline page shows each webhook URL, per run configuration.
    let (_, page) = app.get_text("/pipelines/hook?tab=configuration").await;
    assert!(page.contains("/api/webhooks/hook/pipeline-key-123"));
    assert!(
        page.contains("/api/webhooks/hook/prod-key-456") && page.contains("run configuration prod")
    );
    app.stop().await;
}

#[tokio::test]
async fn webhooks_are_rate_limited_per_client() {
    let app = TestApp::start_with(
        &[
            ("hook/main.py", "print(1)\n"),
            ("hook/pipeline.json", r#"{"webhook_key": "k"}"#),
        ],
        &[("WEBHOOK_RATE_LIMIT", "3")],
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            post(&app, "/api/webhooks/hook/wrong", "application/json", "")
                .await
                .0,
        );
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429],
        "guessing keys is slowed down too"
    );
    let resp = app
        .client
        .post(app.url("/api/webhooks/hook/k"))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=61).contains(&retry_after), "{retry_after}");
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("WEBHOOK_RATE_LIMIT")),
        "{body}"
    );
    app.stop().await;
}

/// Waits for a run listed at `path` whose `field` is `value`.
async fn wait_run_with(app: &TestApp, path: &str, field: &str, value: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, runs) = app.get_json(path).await;
        let runs = runs.get("runs").cloned().unwrap_or(runs);
        if let Some(found) = runs
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r[field] == value)
        {
            return found.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no run with {field} = {value} at {path}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_child(app: &TestApp, parent: &str) -> Value {
    wait_run_with(app, "/api/runs?limit=100", "parent_run_id", parent).await
}

/// Seconds between `a`'s end and the time `b` may start.
fn gap(a: &Value, b: &Value) -> chrono::Duration {
    let t = |v: &Value, f: &str| {
        chrono::DateTime::parse_from_rfc3339(v[f].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{f} of {v}: {e}"))
    };
    t(b, "not_before") - t(a, "finished_at")
}

#[tokio::test]
async fn a_downstream_chain_runs_in_order_and_cycles_are_reported_at_discovery() {
    let app = TestApp::start(&[
        ("a/main.py", "print('a')\n"),
        ("a/pipeline.json", r#"{"downstream_triggers": ["b"]}"#),
        ("b/main.py", ENV_PRINTER),
        (
            "b/pipeline.json",
            r#"{"schedules": [{"id": "nightly", "default_env": {"MODE": "nightly"}}],
                "downstream_triggers": [{"pipeline": "c", "on_success": false, "on_failure": true}]}"#,
        ),
        ("c/main.py", "print('c')\n"),
        ("x/main.py", "print('x')\n"),
        ("x/pipeline.json", r#"{"downstream_triggers": [{"pipeline": "y", "run_config_id": "r"}]}"#),
        ("y/main.py", "print('y')\n"),
        ("y/pipeline.json", r#"{"schedules": [{"id": "r"}], "downstream_triggers": ["x"]}"#),
        ("lost/main.py", "print('lost')\n"),
        ("lost/pipeline.json", r#"{"downstream_triggers": ["nowhere", {"pipeline": "c", "run_config_id": "nope"}]}"#),
    ])
    .await;
    // b fails when started downstream of a, because its config says MODE=nightly.
    common::write_files(
        &app.pipelines_dir(),
        &[
            (
                "a/pipeline.json",
                r#"{"downstream_triggers": [{"pipeline": "b", "run_config_id": "nightly"}]}"#,
            ),
            (
                "b/main.py",
                "import os, sys\nprint('MODE=' + os.environ['MODE'])\nsys.exit(0 if os.environ['MODE'] == 'prod' else 3)\n",
            ),
        ],
    );
    app.refresh_pipelines().await;
    let a = app.trigger("a", "").await;
    let a_run = app.wait_finished(&a, Duration::from_secs(120)).await;
    assert_eq!(a_run["status"], "SUCCESS");
    let b = wait_child(&app, &a).await;
    assert_eq!(b["pipeline_name"], "b");
    assert_eq!(b["triggered_by"], "downstream");
    assert_eq!(b["run_config_id"], "nightly");
    let b_id = b["id"].as_str().expect("id").to_string();
    let b_run = app.wait_finished(&b_id, Duration::from_secs(120)).await;
    assert_eq!(b_run["status"], "FAILED", "{b_run}");
    assert!(
        b_run["started_at"].as_str() >= a_run["finished_at"].as_str(),
        "b is queued only after a ended"
    );
    let c = wait_child(&app, &b_id).await;
    assert_eq!(c["pipeline_name"], "c");
    let c_run = app
        .wait_finished(c["id"].as_str().expect("id"), Duration::from_secs(120))
        .await;
    assert_eq!(c_run["status"], "SUCCESS");
    // The links show both ways on the run pages.
    let (_, a_page) = app.get_text(&format!("/runs/{a}")).await;
    assert!(
        a_page.contains(&format!("/runs/{b_id}")),
        "parent page links the child"
    );
    let (_, b_page) = app.get_text(&format!("/runs/{b_id}")).await;
    assert!(
        b_page.contains(&format!("/runs/{a}")),
        "child page links the parent"
    );
    // x → y (through run configuration r) → x is a cycle: both are invalid, with the cycle named.
    for (name, cycle) in [("x", "x → y → x"), ("y", "y → x → y")] {
        let (_, p) = app.get_json(&format!("/api/pipelines/{name}")).await;
        let errors = p["errors"].to_string();
        assert!(errors.contains(cycle), "{name}: {errors}");
        let (status, body) = app
            .post_json(&format!("/api/pipelines/{name}/run"), "")
            .await;
        assert_eq!(status, 422, "{body}");
    }
    let (_, lost) = app.get_json("/api/pipelines/lost").await;
    let errors = lost["errors"].to_string();
    assert!(errors.contains("`nowhere` does not exist"), "{errors}");
    assert!(errors.contains("no run configuration `nope`"), "{errors}");
    // c is started by b and by lost: a fan-in, said on c.
    let (_, c_info) = app.get_json("/api/pipelines/c").await;
    let warnings = c_info["warnings"].to_string();
    assert!(
        warnings.contains("started downstream by 2 pipelines (b, lost)"),
        "{warnings}"
    );
    app.stop().await;
}

#[tokio::test]
async fn restart_on_crash_restarts_after_its_cooldown() {
    let app = TestApp::start(&[
        (
            "crashy/main.py",
            "import sys\nprint('crash')\nsys.exit(1)\n",
        ),
        (
            "crashy/pipeline.json",
            r#"{"restart_on_crash": true, "restart_cooldown": 2, "retry_attempts": 0}"#,
        ),
    ])
    .await;
    let first = app.trigger("crashy", "").await;
    let crashed = app.wait_finished(&first, Duration::from_secs(120)).await;
    assert_eq!(crashed["status"], "FAILED");
    let runs = "/api/pipelines/crashy/runs?limit=10";
    let restart = wait_run_with(&app, runs, "previous_run_id", &first).await;
    assert_eq!(restart["triggered_by"], "daemon_restart");
    assert!(
        gap(&crashed, &restart) >= chrono::Duration::milliseconds(1500),
        "the restart waits restart_cooldown: {crashed} → {restart}"
    );
    let again_id = restart["id"].as_str().expect("id").to_string();
    let again = app.wait_finished(&again_id, Duration::from_secs(120)).await;
    assert_eq!(again["status"], "FAILED");
    // A restart that crashes at once is a crash loop: the next one waits twice as long.
    let next = wait_run_with(&app, runs, "previous_run_id", &again_id).await;
    assert!(
        gap(&again, &next) >= chrono::Duration::milliseconds(3500),
        "backoff doubles the cooldown: {again} → {next}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_run_form_sets_the_run_configuration_env_and_parameters() {
    let app = TestApp::start(&[
        ("p/main.py", "import os\nprint('MODE=' + os.environ.get('MODE', '-'), 'P=' + os.environ.get('P', '-'))\n"),
        ("p/pipeline.json", r#"{"schedules": [{"id": "staging", "default_env": {"MODE": "staging"}}]}"#),
    ])
    .await;
    let client = reqwest::Client::builder()
        .default_headers(common::auth_headers(&app.token))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client
        .post(app.url("/pipelines/p/run"))
        .form(&[
            ("run_config_id", "staging"),
            ("env", ""),
            ("parameters", "P=42"),
        ])
        .send()
        .await
        .expect("POST form");
    assert_eq!(resp.status(), 303);
    let target = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let id = target.trim_start_matches("/runs/").to_string();
    let run = app.wait_finished(&id, Duration::from_secs(120)).await;
    assert_eq!(run["run_config_id"], "staging");
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(log.contains("MODE=staging P=42"), "{log}");
    // An unknown run configuration is a clear 400, naming the ones there are.
    let resp = client
        .post(app.url("/pipelines/p/run"))
        .form(&[("run_config_id", "prod")])
        .send()
        .await
        .expect("POST form");
    assert_eq!(resp.status(), 400);
    let page = resp.text().await.expect("text");
    assert!(
        page.contains("no run configuration `prod`") && page.contains("staging"),
        "{page}"
    );
    app.stop().await;
}
