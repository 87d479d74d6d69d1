//! `/metrics` after real runs in Docker and a real schedule: finished runs by
//! pipeline and status, durations, trigger-to-start times, log bytes, scheduler
//! lag, queue and container gauges, database size; read with `METRICS_TOKEN`,
//! with an API token, and refused without either.

mod common;

use std::time::Duration;

use common::TestApp;

const METRICS_TOKEN: &str = "scrape-0123456789abcdef";

/// The value of the sample line `name{labels}` (exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_real_runs_and_schedules() {
    let app = TestApp::start_with(
        &[
            ("metrics_ok/main.py", "print('x' * 99)\n"),
            ("metrics_bad/main.py", "raise SystemExit(3)\n"),
            ("metrics_tick/main.py", "print('tick')\n"),
            (
                "metrics_tick/pipeline.json",
                r#"{"schedule_interval_seconds": 2}"#,
            ),
        ],
        &[("METRICS_TOKEN", METRICS_TOKEN)],
    )
    .await;
    let ok = app.trigger("metrics_ok", "").await;
    let bad = app.trigger("metrics_bad", "").await;
    assert_eq!(
        app.wait_finished(&ok, Duration::from_secs(90)).await["status"],
        "SUCCESS"
    );
    assert_eq!(
        app.wait_finished(&bad, Duration::from_secs(90)).await["status"],
        "FAILED"
    );

    let scraper = common::client_with_token(METRICS_TOKEN);
    let mut text = String::new();
    // The schedule fires every 2 s; wait until one of its runs has been queued and ended.
    for _ in 0..120 {
        let resp = scraper.get(app.url("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let kind = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        text = resp.text().await.unwrap();
        if sample(
            &text,
            r#"fastflow_runs_finished_total{pipeline="metrics_tick",status="SUCCESS"}"#,
        )
        .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let value =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} missing:\n{text}"));
    assert_eq!(
        value(r#"fastflow_runs_finished_total{pipeline="metrics_ok",status="SUCCESS"}"#),
        1.0
    );
    assert_eq!(
        value(r#"fastflow_runs_finished_total{pipeline="metrics_bad",status="FAILED"}"#),
        1.0
    );
    assert!(
        value(r#"fastflow_runs_finished_total{pipeline="metrics_tick",status="SUCCESS"}"#) >= 1.0
    );
    assert_eq!(
        value(r#"fastflow_run_duration_seconds_count{pipeline="metrics_ok"}"#),
        1.0
    );
    assert!(value(r#"fastflow_run_duration_seconds_sum{pipeline="metrics_ok"}"#) > 0.0);
    // 99 x's and a newline, at least (the stored log may add its own framing).
    assert!(
        value(r#"fastflow_log_written_bytes_total{pipeline="metrics_ok"}"#) >= 100.0,
        "{text}"
    );
    assert!(
        value("fastflow_trigger_to_container_start_seconds_count") >= 3.0,
        "{text}"
    );
    assert!(
        value("fastflow_scheduler_lag_seconds_count") >= 1.0,
        "{text}"
    );
    assert!(value("fastflow_database_size_bytes") > 0.0);
    for gauge in [
        "fastflow_runs_queued",
        "fastflow_runs_running",
        "fastflow_active_containers",
    ] {
        assert!(value(gauge) >= 0.0, "{gauge}");
    }
    assert!(
        text.contains("# TYPE fastflow_run_duration_seconds histogram"),
        "{text}"
    );

    // The admin API token reads it as well; nobody else does.
    let (status, _) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    let anonymous = reqwest::Client::new()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "no credentials");
    let wrong = common::client_with_token("scrape-0123456789abcdeX")
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401, "a wrong token");
    // The metrics token opens nothing else.
    let elsewhere = scraper.get(app.url("/api/runs")).send().await.unwrap();
    assert_eq!(elsewhere.status(), 401);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_metrics_token_stops_start_up_with_its_name() {
    let vars =
        std::collections::HashMap::from([("METRICS_TOKEN".to_string(), "short".to_string())]);
    let err = fastflow::config::Config::from_vars(&vars).unwrap_err();
    assert_eq!(err.var, "METRICS_TOKEN");
    assert!(
        !err.to_string().contains("short"),
        "the token stays out of the error: {err}"
    );
}
