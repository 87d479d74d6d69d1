//! `LOG_FORMAT=json` on the real binary: every line is one JSON object; each
//! request is logged with its id (in the line's `span`) (the client's `X-Request-ID`, echoed in the
//! answer); a run's events carry its run id; the start-up summary names what was
//! found; the setup link stays inside the JSON.

mod common;

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_and_run_ids() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    common::write_files(
        &root.path().join("pipelines"),
        &[
            ("hello/main.py", "print('hello')\n"),
            ("broken/main.py", "print('x')\n"),
            ("broken/pipeline.json", "{ nope"),
        ],
    );
    let server = common::ServerProcess::spawn(root.path(), &[("LOG_FORMAT", "json")]);
    let client = common::client_for(&server.base);
    let resp = client
        .post(format!("{}/api/pipelines/hello/run", server.base))
        .header("X-Request-ID", "req-test-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "req-test-123",
        "the id is echoed"
    );
    let run: Value = resp.json().await.unwrap();
    let id = run["id"].as_str().unwrap().to_string();
    common::wait_finished_at(&server.base, &id).await;
    let fresh = client
        .get(format!("{}/health", server.base))
        .send()
        .await
        .unwrap();
    let made = fresh.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        made.len(),
        36,
        "a new UUID when the client sends none: {made}"
    );

    // The run's end is logged a moment after it is stored.
    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..50 {
        let log = server.log();
        lines = log
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if lines
            .iter()
            .any(|l| l["span"]["run_id"] == id.as_str() && l["message"] == "run finished")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let text = |l: &Value| l.to_string();
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == "req-test-123"
                && l["span"]["path"] == "/api/pipelines/hello/run"
                && l["status"] == 200),
        "no line of the trigger request: {}",
        lines.iter().map(text).collect::<Vec<_>>().join("\n")
    );
    assert!(
        lines.iter().any(|l| l["span"]["run_id"] == id.as_str()
            && l["span"]["pipeline"] == "hello"
            && l["message"] == "run finished"),
        "no run event with its id"
    );
    let summary = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("ready:"))
        })
        .expect("a start-up summary");
    assert_eq!(summary["pipelines_valid"], 1, "{summary}");
    assert_eq!(summary["pipelines_invalid"], 1, "{summary}");
    assert!(
        summary["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://")),
        "{summary}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string()),
        "every line has a level and a time"
    );
}
