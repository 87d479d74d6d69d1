//! The UI over plain HTTP, as `curl` uses it: every fragment route in the
//! access table answers a request without htmx headers with HTML, the runs
//! filters refuse bad values with a clear message and narrow by date, and the
//! System page shows the configuration without its secrets.

mod common;

use axum::http::Method;
use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fragment_answers_plain_http() {
    let app = TestApp::start(&[("hello/main.py", "print('hi')\n")]).await;
    let (run, _) = app.run_to_end("hello", "").await;
    let id = run["id"].as_str().expect("run id").to_string();
    let fragments: Vec<&str> = fastflow::web::access_table::TABLE
        .iter()
        .filter(|(path, methods)| {
            path.starts_with("/fragments/") && methods.iter().any(|(m, _)| *m == Method::GET)
        })
        .map(|(path, _)| *path)
        .collect();
    assert!(
        fragments.len() >= 10,
        "the table lists the fragments: {fragments:?}"
    );
    for route in fragments {
        let path = route.replace("{id}", &id).replace("{name}", "hello");
        assert!(
            !path.contains('{'),
            "{route}: a parameter this test does not fill"
        );
        // A bare client: no HX-Request, no HX-Target, nothing htmx sends.
        let resp = app.client.get(app.url(&path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.text().await.unwrap_or_default();
        // 286 is htmx's "stop polling" (a finished run's charts); the body is still HTML.
        assert!(status == 200 || status == 286, "{path}: {status} {body}");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(
            !body.contains("<html"),
            "{path} answers a fragment, not a whole page"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_filters_explain_bad_values_and_narrow_by_date() {
    let app = TestApp::start(&[("hello/main.py", "print('hi')\n")]).await;
    app.run_to_end("hello", "").await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().expect("a tomorrow");
    let cases = [
        (
            "/runs?from=yesterday",
            "from must be a date like 2026-12-31",
        ),
        ("/runs?trigger=cron", "unknown trigger `cron`"),
        ("/runs?error_type=segfault", "unknown error type `segfault`"),
    ];
    for (path, message) in cases {
        let (status, body) = app.get_text(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(body.contains(message), "{path}: {body}");
    }
    let reversed = format!("/runs?from={tomorrow}&to={today}");
    let (status, body) = app.get_text(&reversed).await;
    assert_eq!(status, 400);
    assert!(body.contains("the date range is reversed"), "{body}");

    let (_, todays) = app
        .get_text(&format!(
            "/fragments/runs?from={today}&to={today}&trigger=api"
        ))
        .await;
    assert!(todays.contains("1 runs · page 1 of 1"), "{todays}");
    assert!(!todays.contains("No runs match"), "{todays}");
    let (_, later) = app
        .get_text(&format!("/fragments/runs?from={tomorrow}"))
        .await;
    assert!(later.contains("No runs match these filters"), "{later}");
    let (_, manual) = app.get_text("/fragments/runs?trigger=manual").await;
    assert!(
        manual.contains("No runs match these filters"),
        "an api run is not manual: {manual}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_page_shows_the_configuration_without_secrets() {
    let key = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg=";
    let app = TestApp::start_with(
        &[("hello/main.py", "print('hi')\n")],
        &[("ENCRYPTION_KEY", key)],
    )
    .await;
    let (status, page) = app.get_text("/system").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(env!("CARGO_PKG_VERSION")));
    assert!(page.contains("MAX_CONCURRENT_RUNS") && page.contains("WORKER_BASE_IMAGE"));
    assert!(page.contains("set (hidden)"), "the key is shown as set");
    assert!(
        !page.contains(key) && !page.contains(&key[..20]),
        "the key leaked into the page"
    );
    assert!(page.contains("1 valid"), "{page}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_versioned_cached_for_a_year_and_compressed() {
    let app = TestApp::start(&[("hello/main.py", "print('hi')\n")]).await;
    let (_, page) = app.get_text("/pipelines").await;
    let start = page
        .find("/static/vendor/htmx.min.js?v=")
        .expect("a versioned htmx link");
    let link: String = page[start..].chars().take_while(|c| *c != '"').collect();
    let bare = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .build()
        .expect("client");
    let resp = bare
        .get(app.url(&link))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 200);
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header("content-encoding"), "gzip");
    let compressed = resp.bytes().await.expect("body").len();
    let (_, plain) = app.get_text("/static/vendor/htmx.min.js").await;
    assert!(
        compressed * 2 < plain.len(),
        "gzip {compressed} vs {} bytes",
        plain.len()
    );
    // An old or missing version is revalidated soon instead of pinned for a year.
    let stale = bare
        .get(app.url("/static/vendor/htmx.min.js?v=000000000000"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        stale
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("public, max-age=300")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_filter_by_tag_and_state_and_show_their_last_outcomes() {
    let app = TestApp::start(&[
        ("nightly_report/main.py", "print('ok')\n"),
        ("nightly_report/pipeline.json", r#"{"tags": ["nightly"]}"#),
        ("adhoc/main.py", "print('ok')\n"),
        ("paused/main.py", "print('ok')\n"),
        ("paused/pipeline.json", r#"{"enabled": false}"#),
        ("broken/main.py", "print('x')\n"),
        ("broken/pipeline.json", "{ nope"),
    ])
    .await;
    app.run_to_end("nightly_report", "").await;
    let names = |html: &str| -> Vec<String> {
        html.match_indices("class=\"name\" href=\"/pipelines/")
            .map(|(i, m)| {
                html[i + m.len()..]
                    .chars()
                    .take_while(|c| *c != '"')
                    .collect()
            })
            .collect()
    };
    let (_, tagged) = app.get_text("/fragments/pipelines?tag=nightly").await;
    assert_eq!(names(&tagged), ["nightly_report"]);
    assert!(tagged.contains("100 %"), "success rate: {tagged}");
    assert!(
        tagged.contains("class=\"s-success\""),
        "last-10 strip: {tagged}"
    );
    let (_, invalid) = app.get_text("/fragments/pipelines?state=invalid").await;
    assert_eq!(names(&invalid), ["broken"]);
    let (_, disabled) = app.get_text("/fragments/pipelines?state=disabled").await;
    assert_eq!(names(&disabled), ["paused"]);
    assert!(disabled.contains("badge muted\">disabled"), "{disabled}");
    let (_, ready) = app.get_text("/fragments/pipelines?state=ready").await;
    assert_eq!(names(&ready), ["adhoc", "nightly_report"]);
    assert!(!ready.contains(">valid<"), "no badge for the normal case");
    let (_, none) = app
        .get_text("/fragments/pipelines?tag=nightly&state=invalid")
        .await;
    assert!(
        none.contains("No pipeline matches tag nightly, invalid"),
        "{none}"
    );
    let (status, body) = app.get_text("/pipelines?state=broken").await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown state `broken`"), "{body}");
    app.stop().await;
}

/// An engine address that accepts connections and never answers (a hung proxy):
/// the dashboard and the System page still render, and say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_render_while_the_engine_never_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let host = format!("tcp://127.0.0.1:{port}");
    let app = TestApp::start_with(
        &[("hello/main.py", "print('hi')\n")],
        &[("DOCKER_HOST", &host), ("WORKER_BASE_IMAGE", "")],
    )
    .await;
    for path in ["/", "/system", "/fragments/dashboard"] {
        let (status, page) = app.get_text(path).await;
        // A wait on the engine would end in the request timeout's 408.
        assert_eq!(status, 200, "{path}: {page}");
        if path == "/system" {
            assert!(page.contains("did not answer"), "{page}");
        }
    }
    app.stop().await;
    hold.abort();
}
