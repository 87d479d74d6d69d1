//! Run engine behaviour with the real Docker engine: queue limits, cancel,
//! automatic retries with their strategies, and re-running a run.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use common::{TestApp, log_texts};
use serde_json::Value;

fn ts(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}")))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_queued_and_running_runs_ends_interrupted() {
    let app = TestApp::start_with(
        &[(
            "sleeper/main.py",
            "import time\nprint('started', flush=True)\ntime.sleep(120)\nprint('never')\n",
        )],
        &[("MAX_CONCURRENT_RUNS", "1")],
    )
    .await;
    let running = app.trigger("sleeper", "").await;
    let queued = app.trigger("sleeper", "").await;
    app.wait_status(&running, "RUNNING").await;
    let (_, waiting) = app.get_json(&format!("/api/runs/{queued}")).await;
    assert_eq!(waiting["queue_position"], 1, "{waiting}");
    assert!(
        waiting["waiting_reason"]
            .as_str()
            .unwrap()
            .contains("MAX_CONCURRENT_RUNS"),
        "{waiting}"
    );

    // A queued run leaves the queue and never starts.
    let (status, body) = app
        .post_json(&format!("/api/runs/{queued}/cancel"), "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "INTERRUPTED");
    assert_eq!(body["previous_status"], "PENDING");

    // A running one is stopped; its log is kept.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !app
        .get_text(&format!("/api/runs/{running}/logs"))
        .await
        .1
        .contains("started")
    {
        assert!(Instant::now() < deadline, "no output before cancel");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (status, body) = app
        .post_json(&format!("/api/runs/{running}/cancel"), "")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["previous_status"], "RUNNING");
    let run = app.wait_finished(&running, Duration::from_secs(60)).await;
    // The exit code of the stop that follows is recorded but never overwrites the status.
    common::wait_containers_removed(&running, Duration::from_secs(30)).await;
    let (_, run_after) = app.get_json(&format!("/api/runs/{running}")).await;
    for r in [&run, &run_after] {
        assert_eq!(r["status"], "INTERRUPTED", "{r}");
        assert_eq!(r["error_type"], "cancelled", "{r}");
    }
    assert!(run_after["exit_code"].as_i64().is_some(), "{run_after}");
    let (_, log) = app.get_text(&format!("/api/runs/{running}/logs")).await;
    assert!(log.contains("started") && !log.contains("never"), "{log}");

    let (_, q) = app.get_json(&format!("/api/runs/{queued}")).await;
    assert_eq!(q["status"], "INTERRUPTED");
    assert!(
        q["container_started_at"].is_null(),
        "a cancelled queued run never starts: {q}"
    );

    // Cancelling a finished run is a 400 that says why.
    let (status, body) = app
        .post_json(&format!("/api/runs/{running}/cancel"), "")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already finished"),
        "{body}"
    );
    let (status, _) = app.post_json("/api/runs/no-such-run/cancel", "").await;
    assert_eq!(status, 404);
    // Both runs count, the one cancelled in the queue too (it has no executor to count it).
    let (_, pipeline) = app.get_json("/api/pipelines/sleeper").await;
    assert_eq!(pipeline["total_runs"], 2, "{pipeline}");
    app.stop().await;
}

/// The chain of runs that starts at `first`, following `previous_run_id`.
async fn retry_chain(app: &TestApp, first: &str, expected: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, all) = app.get_json("/api/runs?limit=100").await;
        let mut chain = vec![];
        let mut current = first.to_string();
        loop {
            let (_, run) = app.get_json(&format!("/api/runs/{current}")).await;
            let next = all["runs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["previous_run_id"] == current.as_str())
                .cloned();
            chain.push(run);
            match next {
                Some(n) => current = n["id"].as_str().unwrap().to_string(),
                None => break,
            }
        }
        let finished = chain.iter().all(|r| {
            matches!(
                r["status"].as_str(),
                Some("FAILED" | "SUCCESS" | "INTERRUPTED")
            )
        });
        if chain.len() == expected && finished {
            // Give a wrongly scheduled extra attempt the chance to appear.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (_, again) = app.get_json("/api/runs?limit=100").await;
            assert_eq!(
                again["total"].as_u64().unwrap() as usize,
                all["total"].as_u64().unwrap() as usize
            );
            return chain;
        }
        assert!(chain.len() <= expected, "too many attempts: {chain:#?}");
        assert!(
            Instant::now() < deadline,
            "retries did not complete: {chain:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_follow_their_strategy_and_are_linked() {
    let app = TestApp::start(&[
        (
            "flaky/main.py",
            "import os, sys\nprint('retry', os.environ.get('_fastflow_retry_count'), 'after', os.environ.get('_fastflow_previous_run_id'))\nsys.exit(4)\n",
        ),
        (
            "flaky/pipeline.json",
            r#"{"retry_attempts": 2, "retry_strategy": {"type": "exponential_backoff", "initial_delay": 1, "max_delay": 10, "multiplier": 2.0}}"#,
        ),
        ("custom/main.py", "raise SystemExit(1)\n"),
        ("custom/pipeline.json", r#"{"retry_attempts": 2, "retry_strategy": {"type": "custom_schedule", "delays": [2, 1]}}"#),
        ("slow/main.py", "import time\ntime.sleep(60)\n"),
        ("slow/pipeline.json", r#"{"timeout": 1, "retry_attempts": 1, "retry_strategy": {"type": "fixed_delay", "delay": 1}}"#),
    ])
    .await;
    let first = app
        .trigger("flaky", r#"{"env_vars": {"KEEP": "me"}}"#)
        .await;
    let chain = retry_chain(&app, &first, 3).await;
    for (i, run) in chain.iter().enumerate() {
        assert_eq!(run["attempt"], i as u64 + 1, "{run}");
        assert_eq!(run["status"], "FAILED");
        assert_eq!(run["exit_code"], 4);
    }
    assert_eq!(chain[0]["triggered_by"], "api");
    assert_eq!(chain[1]["triggered_by"], "api_retry");
    assert_eq!(
        chain[1]["env_vars"]["KEEP"], "***",
        "run env is carried over: {}",
        chain[1]
    );
    assert_eq!(chain[2]["env_vars"]["_fastflow_retry_count"], "2");
    // Exponential backoff: 1 s, then 2 s after each failure.
    for (n, delay_ms) in [(1, 1000), (2, 2000)] {
        let prev_end = ts(&chain[n - 1]["finished_at"]);
        let not_before = ts(&chain[n]["not_before"]);
        let claimed = ts(&chain[n]["claimed_at"]);
        assert!(
            (not_before - prev_end).num_milliseconds() >= delay_ms - 50,
            "attempt {n}: {} ms",
            (not_before - prev_end).num_milliseconds()
        );
        assert!(
            claimed >= not_before,
            "started before its delay: {}",
            chain[n]
        );
    }
    let (_, log) = app
        .get_text(&format!(
            "/api/runs/{}/logs",
            chain[2]["id"].as_str().unwrap()
        ))
        .await;
    let expected = format!("retry 2 after {}", chain[1]["id"].as_str().unwrap());
    assert!(log_texts(&log).contains(&expected.as_str()), "{log}");

    // Custom schedule: 2 s, then 1 s.
    let first = app.trigger("custom", "").await;
    let chain = retry_chain(&app, &first, 3).await;
    for (n, delay_ms) in [(1, 2000), (2, 1000)] {
        let gap = ts(&chain[n]["not_before"]) - ts(&chain[n - 1]["finished_at"]);
        assert!(
            gap.num_milliseconds() >= delay_ms - 50,
            "custom attempt {n}: {gap}"
        );
    }

    // A timeout is retried.
    let first = app.trigger("slow", "").await;
    let chain = retry_chain(&app, &first, 2).await;
    assert!(
        chain.iter().all(|r| r["error_type"] == "timeout"),
        "{chain:#?}"
    );
    // Fixed delay: 1 s.
    let gap = ts(&chain[1]["not_before"]) - ts(&chain[0]["finished_at"]);
    assert!(gap.num_milliseconds() >= 950, "fixed delay: {gap}");
    assert!(ts(&chain[1]["claimed_at"]) >= ts(&chain[1]["not_before"]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_runs_are_not_retried_and_rerun_copies_the_run() {
    let app = TestApp::start(&[
        ("sticky/main.py", "import os, time\nprint('A', os.environ.get('A'), 'P', os.environ.get('P'), flush=True)\ntime.sleep(float(os.environ.get('SLEEP', '0')))\n"),
        ("sticky/pipeline.json", r#"{"retry_attempts": 3, "retry_strategy": {"type": "fixed_delay", "delay": 0}}"#),
    ])
    .await;
    let id = app
        .trigger(
            "sticky",
            r#"{"env_vars": {"A": "1", "SLEEP": "60"}, "parameters": {"P": "2"}}"#,
        )
        .await;
    app.wait_status(&id, "RUNNING").await;
    let (status, _) = app.post_json(&format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(status, 200);
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "INTERRUPTED");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, all) = app.get_json("/api/runs").await;
    assert_eq!(all["total"], 1, "a cancelled run is not retried: {all}");

    let (status, again) = app.post_json(&format!("/api/runs/{id}/retry"), "").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["previous_run_id"], id.as_str());
    assert_eq!(again["triggered_by"], "manual_retry");
    let new_id = again["id"].as_str().unwrap().to_string();
    app.wait_status(&new_id, "RUNNING").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, log) = app.get_text(&format!("/api/runs/{new_id}/logs")).await;
        if log_texts(&log).contains(&"A 1 P 2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "same env and parameters expected: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.post_json(&format!("/api/runs/{new_id}/cancel"), "")
        .await;
    app.wait_finished(&new_id, Duration::from_secs(60)).await;
    let (status, _) = app.post_json("/api/runs/no-such-run/retry", "").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_instances_limits_one_pipeline_not_the_others() {
    let app = TestApp::start_with(
        &[
            ("single/main.py", "import time\ntime.sleep(1.5)\n"),
            ("single/pipeline.json", r#"{"max_instances": 1}"#),
            ("other/main.py", "print('other')\n"),
        ],
        &[("MAX_CONCURRENT_RUNS", "4")],
    )
    .await;
    let a = app.trigger("single", "").await;
    let b = app.trigger("single", "").await;
    let c = app.trigger("other", "").await;
    app.wait_status(&a, "RUNNING").await;
    let (_, waiting) = app.get_json(&format!("/api/runs/{b}")).await;
    if waiting["status"] == "PENDING" {
        assert!(
            waiting["waiting_reason"]
                .as_str()
                .unwrap()
                .contains("max_instances"),
            "{waiting}"
        );
    }
    let ra = app.wait_finished(&a, Duration::from_secs(60)).await;
    let rb = app.wait_finished(&b, Duration::from_secs(60)).await;
    let rc = app.wait_finished(&c, Duration::from_secs(60)).await;
    assert!(
        ts(&rb["claimed_at"]) >= ts(&ra["finished_at"]),
        "max_instances 1 overlapped:\n{ra}\n{rb}"
    );
    // The other pipeline was not held back by the blocked one queued before it.
    assert!(
        ts(&rc["claimed_at"]) < ts(&ra["finished_at"]),
        "other pipeline waited:\n{ra}\n{rc}"
    );
    app.stop().await;
}
