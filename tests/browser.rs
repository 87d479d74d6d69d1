//! The run page in a real browser (headless Chromium): htmx and its SSE extension
//! append the live log and refresh the summary when the run ends.

mod common;

use std::time::Duration;

use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_page_follows_the_log_live_and_shows_the_final_status() {
    let app = TestApp::start(&[(
        "live/main.py",
        "import time\ntime.sleep(2)\nfor i in range(1, 31):\n    print(f'live line {i}', flush=True)\n    time.sleep(0.1)\nprint('<b>done</b>')\n",
    )])
    .await;
    let id = app.trigger("live", "").await;
    // Open the page while the run has printed nothing yet.
    let (_, before) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(
        !before.contains("live line"),
        "the run was too fast for this test: {before}"
    );
    let url = app.url(&format!("/runs/{id}"));
    let token = app.token.clone();
    let dom = tokio::task::spawn_blocking(move || {
        let mut browser = common::cdp::Browser::launch();
        // Signed in by the API token on every request the page makes (fragments
        // and the live stream included).
        browser.open(&url, serde_json::json!({"Authorization": format!("Bearer {token}")}));
        let ended = browser.wait_for(
            "document.querySelector('.badge.success') !== null && document.body.innerHTML.includes('done&lt;/b&gt;')",
            Duration::from_secs(60),
        );
        let dom = browser.dom();
        assert!(ended, "the page never showed the end of the run:\n{dom}");
        dom
    })
    .await
    .unwrap();

    for i in 1..=30 {
        let needle = format!("live line {i}<");
        assert_eq!(
            dom.matches(&needle).count(),
            1,
            "line {i} should appear exactly once in:\n{dom}"
        );
    }
    assert!(
        dom.contains("&lt;b&gt;done&lt;/b&gt;"),
        "output is escaped, not interpreted"
    );
    assert!(
        dom.contains(r#"class="badge success""#),
        "summary refreshed to SUCCESS at the end:\n{dom}"
    );
    let run = app.wait_finished(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "SUCCESS");
    app.stop().await;
}
