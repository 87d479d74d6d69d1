//! The runs list groups automatic retries under their first run (and lists
//! them flat once a filter picks attempts by status), counts first runs plus
//! retries honestly, and caps the count of a narrowed filter ("10000+").

mod common;

use std::time::{Duration, Instant};

use common::TestApp;

/// Run ids in a runs fragment, in order, each with whether it sits under its first run.
fn listed(html: &str) -> Vec<(String, bool)> {
    html.split("<tr class=\"row-link")
        .skip(1)
        .filter_map(|row| {
            let under = row.starts_with(" later-attempt");
            let id = row.split("href=\"/runs/").nth(1)?.split('"').next()?;
            Some((id.to_string(), under))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_sit_under_their_first_run() {
    let app = TestApp::start(&[
        ("flaky/main.py", "raise SystemExit(3)\n"),
        (
            "flaky/pipeline.json",
            r#"{"retry_attempts": 2, "retry_strategy": {"type": "fixed_delay", "delay": 1}}"#,
        ),
        ("hello/main.py", "print('hi')\n"),
    ])
    .await;
    let first = app.trigger("flaky", "").await;
    // Wait for the whole chain: three FAILED attempts.
    let deadline = Instant::now() + Duration::from_secs(120);
    let chain = loop {
        let (_, all) = app.get_json("/api/runs?pipeline_name=flaky&limit=10").await;
        let runs = all["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() == 3 && runs.iter().all(|r| r["status"] == "FAILED") {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "the retries did not finish: {all}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let by_attempt = |n: u64| {
        chain
            .iter()
            .find(|r| r["attempt"] == n)
            .and_then(|r| r["id"].as_str())
            .map(str::to_string)
            .expect("each attempt")
    };
    let (second, third) = (by_attempt(2), by_attempt(3));
    assert_eq!(by_attempt(1), first);
    let (hello, _) = app.run_to_end("hello", "").await;
    let hello = hello["id"].as_str().expect("id").to_string();

    // Newest first run on top; the retries follow their first run, oldest attempt first.
    let (status, html) = app.get_text("/fragments/runs").await;
    assert_eq!(status, 200);
    assert_eq!(
        listed(&html),
        vec![
            (hello.clone(), false),
            (first.clone(), false),
            (second.clone(), true),
            (third.clone(), true),
        ],
        "{html}"
    );
    assert!(html.contains("2 runs"), "first runs counted: {html}");
    assert!(html.contains("(+2 retries)"), "retries counted: {html}");
    let (_, flaky) = app.get_text("/fragments/runs?pipeline=flaky").await;
    assert_eq!(listed(&flaky).len(), 3);
    assert!(
        flaky.contains("1 runs") || flaky.contains("1 run"),
        "{flaky}"
    );

    // A status filter lists every matching attempt on its own, newest first.
    let (_, failed) = app.get_text("/fragments/runs?status=FAILED").await;
    assert_eq!(
        listed(&failed),
        vec![
            (third.clone(), false),
            (second.clone(), false),
            (first.clone(), false)
        ],
        "{failed}"
    );
    // The JSON API keeps its flat Fast-Flow 1.x list.
    let (_, api) = app.get_json("/api/runs").await;
    assert_eq!(api["total"], 4, "{api}");

    // Retention removed the first attempt: the chain is listed from its oldest
    // surviving attempt instead of disappearing.
    let removed =
        fastflow::db::run_stats::delete_finished(&app.state().pool, std::slice::from_ref(&first))
            .await
            .unwrap();
    assert_eq!(removed, 1);
    let (_, flaky) = app.get_text("/fragments/runs?pipeline=flaky").await;
    assert_eq!(
        listed(&flaky),
        vec![(second.clone(), false), (third.clone(), true)],
        "{flaky}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_count_stops_at_its_cap() {
    let app = TestApp::start(&[("hello/main.py", "print('hi')\n")]).await;
    app.run_to_end("hello", "").await;
    // 10 001 more runs by the scheduler, written straight into the database.
    let pool = &app.state().pool;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001)
         INSERT INTO runs (id, pipeline_name, status, triggered_by, started_at, finished_at, log_file)
         SELECT 'seed-' || i, 'hello', 'SUCCESS', 'scheduler',
                strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || i || ' seconds'),
                strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', '-' || i || ' seconds'), ''
         FROM n",
    )
    .execute(pool)
    .await
    .expect("seed");
    let (_, html) = app.get_text("/fragments/runs?trigger=scheduler").await;
    assert!(html.contains("10000+ runs"), "{html}");
    let (_, manual) = app.get_text("/fragments/runs?trigger=api").await;
    assert!(
        manual.contains("1 runs") || manual.contains("1 run "),
        "{manual}"
    );
    let (_, all) = app.get_text("/fragments/runs").await;
    assert!(
        all.contains("10002 runs"),
        "the unnarrowed total is exact: {all}"
    );
    app.stop().await;
}
