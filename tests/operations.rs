//! Operating the engine: many triggers at once, the Docker engine going away and
//! coming back, resource metrics and soft limits, retention.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use common::{TestApp, read_sse};
use serde_json::Value;
use tokio::net::{TcpListener, UnixStream};
use tokio::task::JoinSet;

fn ts(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}")))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_simultaneous_triggers_respect_fifo_and_the_slot_limit() {
    let app = TestApp::start_with(
        &[("nap/main.py", "import time\ntime.sleep(1)\n")],
        &[("MAX_CONCURRENT_RUNS", "4")],
    )
    .await;
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let (client, url) = (app.client.clone(), app.url("/api/pipelines/nap/run"));
        requests.spawn(async move {
            let resp = client.post(url).send().await.expect("trigger");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.expect("json"),
            )
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = requests.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 200, "every trigger is accepted: {body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let mut runs = Vec::new();
    for id in &ids {
        runs.push(app.wait_finished(id, Duration::from_secs(120)).await);
    }
    assert!(runs.iter().all(|r| r["status"] == "SUCCESS"), "{runs:#?}");
    // Slot occupancy: from claim to finish. Never above the limit, and the limit is reached.
    let mut edges: Vec<(DateTime<FixedOffset>, i32)> = Vec::new();
    for r in &runs {
        edges.push((ts(&r["claimed_at"]), 1));
        edges.push((ts(&r["finished_at"]), -1));
    }
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    assert_eq!(
        peak, 4,
        "parallel runs must reach and never exceed MAX_CONCURRENT_RUNS"
    );
    // FIFO: claimed in the order they were queued.
    runs.sort_by_key(|r| ts(&r["started_at"]));
    let claims: Vec<_> = runs.iter().map(|r| ts(&r["claimed_at"])).collect();
    assert!(
        claims.windows(2).all(|w| w[0] <= w[1]),
        "not FIFO: {claims:?}"
    );
    app.stop().await;
}

/// A TCP stand-in for the Docker socket that the test can take away and bring back.
struct EngineProxy {
    port: u16,
    tasks: JoinSet<()>,
}

impl EngineProxy {
    async fn start(port: u16) -> EngineProxy {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                conns.spawn(async move {
                    if let Ok(mut unix) = UnixStream::connect("/var/run/docker.sock").await {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                    }
                });
            }
        });
        EngineProxy { port, tasks }
    }

    async fn stop(mut self) -> u16 {
        self.tasks.shutdown().await;
        self.port
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_going_away_and_coming_back() {
    common::require_docker().await;
    let proxy = EngineProxy::start(0).await;
    let host = format!("tcp://127.0.0.1:{}", proxy.port);
    let app = TestApp::start_with(
        &[("p/main.py", "print('ran')\n")],
        &[("DOCKER_HOST", &host)],
    )
    .await;
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");
    for name in ["database", "pipelines", "engine", "runner_image", "disk"] {
        assert_eq!(ready["checks"][name]["ok"], true, "{name}: {ready}");
    }
    assert_eq!(ready["checks"]["pipelines"]["valid"], 1, "{ready}");
    assert_eq!(
        ready["checks"]["engine"]["host"],
        format!("DOCKER_HOST={host}"),
        "{ready}"
    );
    assert!(
        ready["checks"]["disk"]["data_dir_free_bytes"]
            .as_u64()
            .unwrap()
            > 0,
        "{ready}"
    );
    let first = app.trigger("p", "").await;
    assert_eq!(
        app.wait_finished(&first, Duration::from_secs(60)).await["status"],
        "SUCCESS"
    );

    let port = proxy.stop().await;
    let id = app.trigger("p", "").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, run) = app.get_json(&format!("/api/runs/{id}")).await;
        // It may be claimed once before the engine is known to be gone (the last good
        // ping is trusted for 5 s); creating its container then fails and it is queued again.
        assert!(
            matches!(run["status"].as_str(), Some("PENDING" | "RUNNING")),
            "the run waits while the engine is away: {run}"
        );
        if run["status"] == "PENDING"
            && run["waiting_reason"]
                .as_str()
                .is_some_and(|r| r.contains("Docker engine"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no visible reason: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["reason"].as_str().unwrap().contains("Docker engine"),
        "{ready}"
    );
    assert_eq!(ready["status"], "not_ready", "{ready}");
    assert_eq!(ready["checks"]["engine"]["ok"], false, "{ready}");
    assert!(
        ready["checks"]["engine"]["error"]
            .as_str()
            .unwrap()
            .contains("Docker engine"),
        "{ready}"
    );
    assert_eq!(
        ready["checks"]["database"]["ok"], true,
        "only the engine fails: {ready}"
    );
    let (_, banner) = app.get_text("/fragments/engine-status").await;
    assert!(banner.contains("Runs cannot start"), "{banner}");

    let _proxy = EngineProxy::start(port).await;
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "SUCCESS", "work resumes by itself: {run}");
    let (status, _) = app.get_json("/ready").await;
    assert_eq!(status, 200);
    let (_, banner) = app.get_text("/fragments/engine-status").await;
    assert!(banner.is_empty(), "{banner}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_peaks_limits_and_soft_limit_warning() {
    let busy = "import time\nblob = bytearray(60 * 1024 * 1024)\nfor i in range(0, len(blob), 4096):\n    blob[i] = 1\nend = time.time() + 5\nx = 0\nwhile time.time() < end:\n    x += 1\nprint('done', x > 0)\n";
    let app = TestApp::start(&[
        ("busy/main.py", busy),
        (
            "busy/pipeline.json",
            r#"{"cpu_hard_limit": 0.5, "cpu_soft_limit": 0.25, "mem_hard_limit": "256m", "mem_soft_limit": "30m"}"#,
        ),
    ])
    .await;
    let id = app.trigger("busy", "").await;
    app.wait_status(&id, "RUNNING").await;
    // Live samples over SSE while it runs.
    let resp = app
        .client
        .get(app.url(&format!("/api/runs/{id}/metrics/stream")))
        .send()
        .await
        .unwrap();
    let events = read_sse(resp, Duration::from_secs(90)).await;
    let live: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("metric"))
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert!(!live.is_empty(), "no live samples: {events:?}");
    assert_eq!(events.last().unwrap().event.as_deref(), Some("end"));

    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let (_, m) = app.get_json(&format!("/api/runs/{id}/metrics")).await;
    let samples = m["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{m}");
    let max_cpu = samples
        .iter()
        .map(|s| s["cpu_percent"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(max_cpu > 10.0, "a CPU-bound run shows CPU use: {max_cpu}");
    assert!(
        max_cpu <= 75.0,
        "cpu_hard_limit 0.5 caps it near 50% of a core: {max_cpu}"
    );
    assert!(
        samples
            .iter()
            .all(|s| s["cpu_percent_of_limit"].is_number())
    );
    assert!(samples.iter().any(|s| s["soft_limit_exceeded"] == true));
    assert!(run["peak_cpu_percent"].as_f64().unwrap() > 10.0, "{run}");
    assert!(
        run["peak_memory_bytes"].as_i64().unwrap() > 50 * 1024 * 1024,
        "{run}"
    );
    assert_eq!(m["mem_hard_limit"], "256m");
    let warning = run["soft_limit_warning"]
        .as_str()
        .expect("soft-limit warning recorded");
    assert!(warning.contains("soft_limit"), "{warning}");
    assert!(run["setup_duration"].as_f64().unwrap() > 0.0, "{run}");
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(
        !log.contains("fastflow-setup-ready"),
        "the setup marker is not part of the log"
    );

    // The UI draws the charts with the limits and flags the warning in lists and detail.
    let (_, page) = app.get_text(&format!("/runs/{id}")).await;
    assert!(
        page.contains("<polyline") && page.contains("limit hard") && page.contains("limit soft"),
        "charts missing"
    );
    assert!(
        page.contains("Soft limit"),
        "warning missing on the run page"
    );
    let (_, list) = app.get_text("/fragments/runs").await;
    assert!(
        list.contains("soft limit"),
        "warning missing in the run list"
    );
    let (_, svg) = app.get_text(&format!("/fragments/runs/{id}/metrics")).await;
    assert!(svg.starts_with("<svg"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_exactly_what_it_should() {
    let app = TestApp::start_with(
        &[
            ("a/main.py", "print('a')\n"),
            ("b/main.py", "print('b')\n"),
            ("long/main.py", "import time\ntime.sleep(60)\n"),
        ],
        &[("LOG_RETENTION_RUNS", "2"), ("LOG_RETENTION_DAYS", "1")],
    )
    .await;
    let mut a_runs = Vec::new();
    for _ in 0..4 {
        let id = app.trigger("a", "").await;
        app.wait_finished(&id, Duration::from_secs(60)).await;
        a_runs.push(id);
    }
    let b = app.trigger("b", "").await;
    app.wait_finished(&b, Duration::from_secs(60)).await;
    let long = app.trigger("long", "").await;
    app.wait_status(&long, "RUNNING").await;
    // Age b's run by three days, directly in the database file.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.dir.path().join("data/fastflow.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE runs SET finished_at = datetime('now', '-3 days') WHERE id = ?")
        .bind(&b)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;

    let resp = app
        .client
        .post(app.url("/api/system/cleanup"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert_eq!(report["runs_deleted"], 3, "{report}");
    assert!(report["files_deleted"].as_u64().unwrap() >= 3, "{report}");
    for gone in [&a_runs[0], &a_runs[1], &b] {
        let (status, _) = app.get_json(&format!("/api/runs/{gone}")).await;
        assert_eq!(status, 404, "{gone} should be gone");
        assert!(
            !app.dir
                .path()
                .join(format!("data/logs/{gone}.log"))
                .exists()
        );
    }
    for kept in [&a_runs[2], &a_runs[3], &long] {
        let (status, _) = app.get_json(&format!("/api/runs/{kept}")).await;
        assert_eq!(status, 200, "{kept} should be kept");
    }
    // Counters survive the cleanup.
    let (_, a) = app.get_json("/api/pipelines/a").await;
    assert_eq!(a["total_runs"], 4, "{a}");
    assert_eq!(a["successful_runs"], 4, "{a}");
    let (_, daily) = app.get_json("/api/stats/daily").await;
    let a_today: i64 = daily
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["pipeline_name"] == "a")
        .map(|d| d["total"].as_i64().unwrap())
        .sum();
    assert_eq!(a_today, 4, "{daily}");
    // A second cleanup finds nothing more.
    let again: Value = app
        .client
        .post(app.url("/api/system/cleanup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["runs_deleted"], 0);
    app.post_json(&format!("/api/runs/{long}/cancel"), "").await;
    app.wait_finished(&long, Duration::from_secs(60)).await;
    app.stop().await;
}
