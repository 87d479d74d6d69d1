//! Pipelines, pages, fragments, live streams and API errors over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, read_sse, write_files};

fn pipelines_with_problems() -> Vec<(&'static str, &'static str)> {
    vec![
        ("good/main.py", "print('ok')\n"),
        (
            "good/pipeline.json",
            r#"{"description": "a good one", "tags": ["t1"], "colour": "blue"}"#,
        ),
        ("named/main.py", "print('named')\n"),
        (
            "named/named.json",
            r#"{"description": "from named.json", "mem_hard_limit": "1.5g"}"#,
        ),
        ("broken/main.py", "print('never runs')\n"),
        (
            "broken/pipeline.json",
            "{\n  \"timeout\": 10,\n  \"mem_hard_limit\": \"12 parsecs\",\n  \"cpu_hard_limit\": -1\n}",
        ),
        ("badjson/main.py", ""),
        ("badjson/pipeline.json", "{\"timeout\": 10,,}"),
        ("off/main.py", ""),
        ("off/pipeline.json", r#"{"enabled": false}"#),
        ("not_a_pipeline/helper.py", ""),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_metadata_is_listed_with_reasons_and_not_runnable() {
    let app = TestApp::start(&pipelines_with_problems()).await;
    let (status, list) = app.get_json("/api/pipelines").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["badjson", "broken", "good", "named", "off"]);
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .unwrap()
            .clone()
    };

    let broken = by_name("broken");
    assert_eq!(broken["valid"], false);
    let fields: Vec<&str> = broken["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"mem_hard_limit") && fields.contains(&"cpu_hard_limit"),
        "{broken}"
    );
    assert!(
        broken["errors"].to_string().contains("unknown unit"),
        "{broken}"
    );
    assert!(
        by_name("badjson")["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 1")
    );

    let good = by_name("good");
    assert_eq!(good["valid"], true);
    assert_eq!(
        good["warnings"][0]["field"], "colour",
        "unknown fields warn: {good}"
    );

    // `{name}.json` is used when pipeline.json is absent.
    let named = by_name("named");
    assert_eq!(named["metadata_file"], "named.json");
    assert_eq!(named["description"], "from named.json");
    assert_eq!(named["metadata"]["mem_hard_limit"], "1.5g");

    // Invalid and disabled pipelines cannot be started; unknown ones are 404.
    let (status, body) = app.post_json("/api/pipelines/broken/run", "{}").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("mem_hard_limit"),
        "{body}"
    );
    let (status, body) = app.post_json("/api/pipelines/off/run", "{}").await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = app.post_json("/api/pipelines/nope/run", "{}").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("nope"));
    let (status, body) = app
        .post_json("/api/pipelines/good/run", "{\"env_vars\": [1]}")
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.post_json("/api/pipelines/good/run", "not json").await;
    assert_eq!(status, 400, "{body}");
    let (_, runs) = app.get_json("/api/runs").await;
    assert_eq!(runs["total"], 0, "no run was recorded for refused triggers");

    // The UI shows the same: the reason is visible and there is no Run button for it.
    let (status, html) = app.get_text("/pipelines").await;
    assert_eq!(status, 200);
    assert!(
        html.contains("broken") && html.contains("unknown unit"),
        "reason missing in page"
    );
    assert!(
        !html.contains("action=\"/pipelines/broken/run\""),
        "invalid pipeline has a Run button"
    );
    assert!(html.contains("action=\"/pipelines/good/run\""));
    let (_, fragment) = app.get_text("/fragments/pipelines").await;
    assert!(
        fragment.contains("unknown unit") && !fragment.contains("<html"),
        "fragment is the table alone"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_the_directory_without_restart() {
    let app = TestApp::start(&[("first/main.py", "print(1)\n")]).await;
    write_files(
        &app.pipelines_dir(),
        &[
            ("second/main.py", "print(2)\n"),
            ("second/pipeline.json", "{\"tags\": 5}"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, list) = app.get_json("/api/pipelines").await;
        if let Some(p) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "second")
        {
            assert_eq!(p["valid"], false, "{p}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new pipeline not discovered: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Fixing the file makes it valid again; refresh on demand also works.
    write_files(
        &app.pipelines_dir(),
        &[("second/pipeline.json", "{\"tags\": [\"five\"]}")],
    );
    let resp = app
        .client
        .post(app.url("/api/pipelines/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, p) = app.get_json("/api/pipelines/second").await;
    assert_eq!(p["valid"], true, "{p}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_sse_viewer_gets_every_line_once_then_the_end() {
    let app = TestApp::start(&[(
        "ticker/main.py",
        "import time\nfor i in range(1, 301):\n    print(f'tick {i}', flush=True)\n    if i % 10 == 0:\n        time.sleep(0.05)\n",
    )])
    .await;
    let id = app.trigger("ticker", "").await;
    // Join once some lines exist, while the run is still going.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = app.get_json(&format!("/api/runs/{id}")).await;
        let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
        if log.lines().count() >= 20 || run["status"] != "PENDING" && run["status"] != "RUNNING" {
            break;
        }
        assert!(Instant::now() < deadline, "run produced no output");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resp = app
        .client
        .get(app.url(&format!("/api/runs/{id}/logs/stream")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = read_sse(resp, Duration::from_secs(60)).await;
    let end = events.last().expect("events");
    assert_eq!(end.event.as_deref(), Some("end"));
    assert!(end.data.contains("SUCCESS"), "{end:?}");
    let lines: Vec<serde_json::Value> = events
        .iter()
        .filter(|e| e.event.is_none())
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(lines.len(), 300, "every line exactly once");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], i as u64 + 1, "no gap, no duplicate");
        assert_eq!(line["text"], format!("tick {}", i + 1));
    }
    assert_eq!(events[0].id.as_deref(), Some("1"));

    // A reconnecting viewer resumes after Last-Event-ID.
    let resp = app
        .client
        .get(app.url(&format!("/api/runs/{id}/logs/stream")))
        .header("Last-Event-ID", "250")
        .send()
        .await
        .unwrap();
    let events = read_sse(resp, Duration::from_secs(10)).await;
    let seqs: Vec<u64> = events
        .iter()
        .filter(|e| e.event.is_none())
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.data).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (251..=300).collect::<Vec<_>>());

    // The UI stream carries rendered, escaped HTML lines.
    let resp = app
        .client
        .get(app.url(&format!("/runs/{id}/log/stream?after=299")))
        .send()
        .await
        .unwrap();
    let events = read_sse(resp, Duration::from_secs(10)).await;
    // It opens with the run's summary (the run may have moved since the page)...
    assert_eq!(events[0].event.as_deref(), Some("status"), "{events:?}");
    assert!(
        events[0].data.contains("id=\"run-summary\"")
            || events[0].data.contains("<dl class=\"facts\">")
    );
    let line = events
        .iter()
        .find(|e| e.event.as_deref() == Some("line"))
        .expect("a line event");
    assert!(
        line.data.contains("tick 300") && line.data.contains("class=\"l out\""),
        "{events:?}"
    );
    // ...and closes with the final summary, then `end`.
    let n = events.len();
    assert_eq!(events[n - 1].event.as_deref(), Some("end"));
    assert_eq!(events[n - 2].event.as_deref(), Some("status"));
    assert!(
        events[n - 2].data.contains("SUCCESS"),
        "{:?}",
        events[n - 2]
    );
    // Finished runs keep no live channel behind: viewers and executor cleaned up.
    let hubs = app.state().runner.hubs().len();
    assert_eq!(hubs, 0, "live channels left behind");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_fragments_work_without_htmx() {
    let app = TestApp::start(&[
        ("web/main.py", "print('<b>not bold</b> & friends')\n"),
        (
            "web/pipeline.json",
            r#"{"description": "shown <i>escaped</i>", "mem_hard_limit": "128m"}"#,
        ),
    ])
    .await;
    // A plain form post (no htmx) redirects to the run page.
    let client = reqwest::Client::builder()
        .default_headers(common::auth_headers(&app.token))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(app.url("/pipelines/web/run"))
        .form(&[("env", "EXTRA=1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let id = location
        .strip_prefix("/runs/")
        .expect("redirect to run page")
        .to_string();
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "SUCCESS");
    assert_eq!(run["triggered_by"], "manual");

    let (status, page) = app.get_text(&location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; friends"),
        "log is escaped in the page: {page}"
    );
    assert!(page.contains("SUCCESS") && page.contains("/api/runs/") && page.contains("download"));
    let (_, summary) = app.get_text(&format!("/fragments/runs/{id}/summary")).await;
    assert!(summary.contains("SUCCESS") && !summary.contains("<html"));
    let (_, lines) = app.get_text(&format!("/fragments/runs/{id}/log")).await;
    assert!(lines.contains("&lt;b&gt;not bold"));

    let (_, detail) = app.get_text("/pipelines/web").await;
    assert!(detail.contains("shown &#60;i&#62;escaped&#60;/i&#62;"));
    let (_, config) = app.get_text("/pipelines/web?tab=configuration").await;
    assert!(config.contains("128m"), "limits on the configuration tab");
    let (_, recent) = app.get_text("/fragments/pipelines/web/runs").await;
    assert!(recent.contains(&id));

    let (_, runs_page) = app.get_text("/runs?pipeline=web&status=SUCCESS").await;
    assert!(runs_page.contains(&id));
    let (_, filtered) = app.get_text("/fragments/runs?status=FAILED").await;
    assert!(!filtered.contains(&id));
    let (status, _) = app.get_text("/fragments/runs?status=BOGUS").await;
    assert_eq!(status, 400);
    let (status, page) = app.get_text("/runs/does-not-exist").await;
    assert_eq!(status, 404);
    assert!(page.contains("not found"));

    let (status, css) = app.get_text("/static/style.css").await;
    assert_eq!(status, 200);
    assert!(css.contains(".log"));
    let (status, _) = app.get_text("/static/vendor/htmx.min.js").await;
    assert_eq!(status, 200);
    let (status, _) = app.get_text("/static/../Cargo.toml").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_lists_filters_and_tails() {
    let app = TestApp::start(&[
        ("ok/main.py", "for i in range(10):\n    print('line', i)\n"),
        ("bad/main.py", "raise SystemExit(2)\n"),
    ])
    .await;
    let ok = app.trigger("ok", "").await;
    let bad = app.trigger("bad", "").await;
    app.wait_finished(&ok, Duration::from_secs(60)).await;
    app.wait_finished(&bad, Duration::from_secs(60)).await;

    let (_, all) = app.get_json("/api/runs").await;
    assert_eq!(all["total"], 2);
    assert_eq!(all["runs"][0]["id"], bad, "newest first");
    let (_, failed) = app.get_json("/api/runs?status_filter=FAILED").await;
    assert_eq!(failed["total"], 1);
    assert_eq!(failed["runs"][0]["exit_code"], 2);
    let (_, by_pipeline) = app
        .get_json("/api/runs?pipeline_name=ok&limit=1&offset=0")
        .await;
    assert_eq!(by_pipeline["runs"][0]["id"], ok);
    let (_, paged) = app.get_json("/api/runs?limit=1&offset=1").await;
    assert_eq!(paged["runs"][0]["id"], ok);
    assert_eq!(paged["page"], 2);
    let (status, _) = app.get_json("/api/runs?limit=0").await;
    assert_eq!(status, 400);
    let (_, list) = app.get_json("/api/pipelines/ok/runs").await;
    assert_eq!(list.as_array().unwrap().len(), 1);

    let (_, tail) = app.get_text(&format!("/api/runs/{ok}/logs?tail=3")).await;
    assert_eq!(common::log_texts(&tail), ["line 7", "line 8", "line 9"]);
    let (status, body) = app.get_json("/api/runs/nope").await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("nope"));

    let (_, pipelines) = app.get_json("/api/pipelines").await;
    let okp = pipelines
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ok")
        .unwrap();
    assert_eq!(okp["total_runs"], 1);
    assert_eq!(okp["successful_runs"], 1);
    assert_eq!(okp["last_run_status"], "SUCCESS");
    let (_, health) = app.get_json("/health").await;
    assert_eq!(health["status"], "healthy");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let resp = app
        .client
        .post(app.url("/pipelines/p/run"))
        .header("Origin", "https://evil.example")
        .form(&[("env", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let (_, runs) = app.get_json("/api/runs").await;
    assert_eq!(runs["total"], 0);
    app.stop().await;
}
