//! The run page in a real browser (headless Chromium): htmx and its SSE extension
//! append the live log and refresh the summary when the run ends.

mod common;

use std::process::Command;
use std::time::Duration;

use common::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The page's DOM after scripts ran for up to `budget_ms` of virtual time.
fn rendered_dom(url: &str, budget_ms: u32) -> String {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "this test needs Chromium at {CHROMIUM} (`apt-get install chromium`; `bash .ci/run` installs it)"
    );
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--virtual-time-budget={budget_ms}"),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
    let dom = tokio::task::spawn_blocking(move || rendered_dom(&url, 20_000))
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
