//! What a hostile reader or a broken client tried against the pages (issue 12's
//! attack review), each checked over plain HTTP: webhook keys spelled with JSON
//! escapes or in requirements.txt stay hidden from READONLY, a file built to make
//! highlighting expensive is shown plain, bad query strings get the app's 400
//! page, raw control characters never reach a page, an unknown address keeps a
//! signed-in reader's navigation, a fragment poll after a session ends signs in
//! back to its page, and plain clients never see htmx's 286.

mod common;

use common::TestApp;

const ESCAPED_KEY: &str = r#"{"webhook\u005fkey": "s3cr3t\u002dplain\u002dkey"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_pipelines_and_queries_against_the_pages() {
    let line = "x = f\"{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}\"\n";
    let heavy = line.repeat(4_999);
    let app = TestApp::start(&[
        ("hooks_esc/main.py", "print('hi')\n"),
        ("hooks_esc/pipeline.json", ESCAPED_KEY),
        ("hooks_req/main.py", "print('hi')\n"),
        (
            "hooks_req/requirements.txt",
            "# https://ff/api/webhooks/hooks_req/REQ-KEY-123456\n",
        ),
        (
            "hooks_req/pipeline.json",
            r#"{"webhook_key": "REQ-KEY-123456"}"#,
        ),
        ("heavy/main.py", &heavy),
    ])
    .await;
    let reader = common::make_token(&app.state().pool, "reader", "READONLY").await;
    let as_reader = |path: &str| {
        let client = common::client_with_token(&reader);
        let url = app.url(path);
        async move {
            let resp = client.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };

    // The key works (it is a real key), and a reader never sees it.
    let hook = reqwest::Client::new()
        .post(app.url("/api/webhooks/hooks_esc/s3cr3t-plain-key"))
        .send()
        .await
        .unwrap();
    assert!(
        hook.status().is_success(),
        "the escaped key is the pipeline's key"
    );
    let (_, source) = as_reader("/pipelines/hooks_esc?tab=source").await;
    assert!(
        !source.contains("s3cr3t"),
        "an escaped webhook key reached a reader"
    );
    let (_, config) = as_reader("/pipelines/hooks_req?tab=configuration").await;
    assert!(
        !config.contains("REQ-KEY-123456"),
        "requirements.txt showed the key"
    );
    let (_, writer_view) = app.get_text("/pipelines/hooks_req?tab=configuration").await;
    assert!(
        writer_view.contains("REQ-KEY-123456"),
        "an admin sees the file as it is"
    );

    // Too big to highlight: plain, escaped, about the size of the file.
    let (status, page) = as_reader("/pipelines/heavy?tab=source").await;
    assert_eq!(status, 200);
    assert!(!page.contains("hl-"), "the heavy file was highlighted");
    assert!(page.len() < heavy.len() * 3, "{} bytes of page", page.len());
    // Pages are compressed for clients that ask.
    let gz = common::client_with_token(&reader)
        .get(app.url("/pipelines/heavy?tab=source"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        gz.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );

    // Bad query strings: the app's page, naming the parameter.
    for path in [
        "/runs?status=FAILED&status=SUCCESS",
        "/pipelines?q=a&q=b",
        "/pipelines/hooks_esc?from_run=a&from_run=b",
    ] {
        let (status, page) = as_reader(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(
            page.contains("<nav") && page.contains("duplicate field"),
            "{path}: {page}"
        );
    }
    let (status, page) = app.get_text("/static/nope.js").await;
    assert_eq!(status, 404);
    assert!(
        page.contains("no such static file") && page.contains("<html"),
        "{page}"
    );
    let (status, _) = app.get_text("/static/style.css?v=a&v=b").await;
    assert_eq!(status, 200, "a repeated version is just not current");

    // Control characters from the address are not echoed raw.
    let (status, page) = as_reader("/pipelines/hooks_esc?from_run=%00%ff%1b%5B31m").await;
    assert!(status == 404 || status == 200, "{status}");
    assert!(
        !page.contains('\0') && !page.contains('\u{1b}'),
        "raw control characters on the page"
    );

    // An unknown address keeps a signed-in reader's navigation.
    let (status, page) = as_reader("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(
        page.contains(r#"href="/runs""#) && !page.contains("Sign in"),
        "{page}"
    );

    // A fragment poll without a session sends the browser back to its page.
    let poll = reqwest::Client::new()
        .get(app.url("/fragments/engine-status"))
        .header("HX-Request", "true")
        .header(
            "HX-Current-URL",
            format!("{}/runs?status=FAILED", app.url("")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 401);
    let to = poll.headers()["hx-redirect"].to_str().unwrap().to_string();
    assert_eq!(to, "/login?next=%2Fruns%3Fstatus%3DFAILED", "{to}");

    // A finished run's charts: 286 stops htmx's polling, a plain client gets 200.
    let (run, _) = app.run_to_end("hooks_esc", "").await;
    let id = run["id"].as_str().unwrap();
    let (status, _) = app.get_text(&format!("/fragments/runs/{id}/metrics")).await;
    assert_eq!(status, 200);
    let htmx = app
        .client
        .get(app.url(&format!("/fragments/runs/{id}/metrics")))
        .header("HX-Request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status().as_u16(), 286);
    app.stop().await;
}
