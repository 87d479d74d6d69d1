//! The run page and the Run form in a real browser (headless Chromium, no
//! network): the duration ticks, the log follows its tail until the reader
//! scrolls up, ANSI colours render, a cancel updates the summary (INTERRUPTED,
//! cancelled by a user) without a reload, a malformed env line shows its error in place, and a double click
//! starts exactly one run. Screenshots go to the screenshots folder.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::json;

const SLOW_PRINTER: &str = "import sys, time\n\
print('\\x1b[31mred alert\\x1b[0m and \\x1b[1;32mbold green\\x1b[0m', flush=True)\n\
print('Resolved 3 packages in 12ms', file=sys.stderr, flush=True)\n\
print('ValueError: a made-up failure line', file=sys.stderr, flush=True)\n\
for i in range(1, 100000):\n    print(f'line {i} ' + 'word ' * 30, flush=True)\n    time.sleep(0.02)\n";

/// The run summary's HTML, for a failure message that stays readable.
fn summary_html(b: &mut common::cdp::Browser) -> String {
    b.eval("(document.getElementById('run-summary') || document.body).outerHTML")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_run_ticks_follows_its_tail_and_a_cancel_updates_the_summary() {
    let app = TestApp::start(&[("printer/main.py", SLOW_PRINTER)]).await;
    let id = app.trigger("printer", "").await;
    let url = app.url(&format!("/runs/{id}"));
    let cancel_url = app.url(&format!("/api/runs/{id}/cancel"));
    let token = app.token.clone();
    let client = app.client.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut b = common::cdp::Browser::launch();
        b.open(&url, json!({"Authorization": format!("Bearer {token}")}));
        b.viewport(1280, 900, false);
        assert!(
            b.wait_for("document.querySelector('time.ticking') !== null", Duration::from_secs(60)),
            "the summary never showed a ticking duration:\n{}",
            summary_html(&mut b)
        );
        let first = b.eval("document.querySelector('time.ticking').textContent");
        std::thread::sleep(Duration::from_millis(2500));
        let later = b.eval("document.querySelector('time.ticking').textContent");
        assert_ne!(first, later, "the duration does not tick");

        // The tail is followed while new lines arrive.
        assert!(
            b.wait_for("document.querySelectorAll('#log .l').length > 120", Duration::from_secs(60)),
            "lines did not arrive"
        );
        let at_bottom = "(function(){var e=document.getElementById('log');return e.scrollHeight-e.scrollTop-e.clientHeight<8;})()";
        assert!(b.wait_for(at_bottom, Duration::from_secs(5)), "the log does not follow its tail");
        assert_eq!(b.eval("document.getElementById('log').scrollHeight > document.getElementById('log').clientHeight"), json!(true), "the log box should overflow by now");

        // ANSI colours become classes; uv's informational stderr is not an error, a traceback line is.
        assert_eq!(b.eval("document.querySelector('#log .a-f1') !== null && document.querySelector('#log .a-f1').textContent === 'red alert'"), json!(true), "{}", summary_html(&mut b));
        assert_eq!(b.eval("document.querySelector('#log').textContent.includes('\\u001b')"), json!(false), "raw escape codes shown");
        assert_eq!(b.eval("Array.from(document.querySelectorAll('#log .l.bad')).map(function(l){return l.textContent}).join('|').includes('ValueError')"), json!(true));
        assert_eq!(b.eval("Array.from(document.querySelectorAll('#log .l.bad')).some(function(l){return l.textContent.includes('Resolved 3 packages')})"), json!(false));

        // Scrolling up stops following; "Jump to end" follows again.
        b.eval("(function(){var e=document.getElementById('log');e.scrollTop=0;e.dispatchEvent(new Event('scroll'));})()");
        let count = b.eval("document.querySelectorAll('#log .l').length").as_u64().unwrap_or(0);
        assert!(b.wait_for(&format!("document.querySelectorAll('#log .l').length > {}", count + 20), Duration::from_secs(20)));
        assert_eq!(b.eval("document.getElementById('log').scrollTop < 50"), json!(true), "the log jumped back down while the reader was reading above");
        b.eval("document.querySelector('[data-log=end]').click()");
        assert!(b.wait_for(at_bottom, Duration::from_secs(5)), "Jump to end did not scroll to the end");
        b.eval("document.querySelector('[data-log=\"first-error\"]').click()");
        assert_eq!(b.eval("document.querySelector('#log .l.focus') !== null && document.querySelector('#log .l.focus').textContent.includes('ValueError')"), json!(true));
        b.screenshot("run-live-desktop");

        // A cancel from elsewhere reaches the open page without a reload.
        b.eval("window.__samePage = true");
        let status = handle.block_on(async {
            client.post(&cancel_url).send().await.expect("cancel").status()
        });
        assert!(status.is_success(), "cancel answered {status}");
        assert!(
            b.wait_for("document.querySelector('#run-summary .badge.interrupted') !== null && document.getElementById('run-summary').textContent.includes('cancelled by a user')", Duration::from_secs(60)),
            "the summary did not show the cancel:\n{}",
            summary_html(&mut b)
        );
        assert_eq!(b.eval("window.__samePage === true"), json!(true), "the page was reloaded");
        assert!(
            b.wait_for("document.querySelector('time.ticking') === null && /[1-9]\\d* lines?,/.test(document.getElementById('run-summary').textContent)", Duration::from_secs(60)),
            "after the cancel the duration still ticks or the log facts are missing:\n{}",
            summary_html(&mut b)
        );
        let summary = b.eval("document.getElementById('run-summary').textContent").as_str().unwrap_or_default().to_string();
        assert!(!summary.contains("0 lines, 0 B"), "log facts still empty after the end: {summary}");
        assert!(
            b.wait_for("!document.getElementById('run-summary').textContent.includes('the container is stopping')", Duration::from_secs(60)),
            "the summary stayed at 'the container is stopping':\n{}",
            summary_html(&mut b)
        );
        // Opened again while (or after) the container stops, the page ends on the final facts too.
        b.eval("location.reload()");
        std::thread::sleep(Duration::from_millis(300));
        assert!(b.wait_for("document.readyState === 'complete'", Duration::from_secs(20)));
        assert!(
            b.wait_for("!document.getElementById('run-summary').textContent.includes('the container is stopping') && /[1-9]\\d* lines?,/.test(document.getElementById('run-summary').textContent)", Duration::from_secs(60)),
            "after a reload the summary is not final:\n{}",
            summary_html(&mut b)
        );
        b.viewport(390, 844, true);
        b.screenshot("run-cancelled-phone");
    })
    .await
    .unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_form_shows_its_error_in_place_and_a_double_click_starts_one_run() {
    let app = TestApp::start(&[("hello/main.py", "print('hi')\n")]).await;
    let url = app.url("/pipelines/hello");
    let token = app.token.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = common::cdp::Browser::launch();
        b.open(&url, json!({"Authorization": format!("Bearer {token}")}));
        b.viewport(1280, 900, false);
        assert!(b.wait_for("document.readyState === 'complete' && window.htmx !== undefined", Duration::from_secs(20)));
        b.eval("document.getElementById('env').value = 'this line has no equals sign'");
        b.eval("document.querySelector('form[hx-post$=\"/run\"] button[type=submit]').click()");
        assert!(
            b.wait_for("document.querySelector('.request-error') !== null", Duration::from_secs(20)),
            "the 400 was dropped:\n{}",
            b.dom()
        );
        let text = b.eval("document.querySelector('.request-error').textContent");
        assert!(text.as_str().unwrap_or_default().contains("environment line 1: expected KEY=value"), "{text}");
        assert_eq!(b.eval("location.pathname"), json!("/pipelines/hello"), "the page should stay");
        b.screenshot("run-form-error-desktop");

        b.eval("document.getElementById('env').value = 'GREETING=hello'");
        b.eval("(function(){var x=document.querySelector('form[hx-post$=\"/run\"] button[type=submit]');x.click();x.click();})()");
        assert!(
            b.wait_for("location.pathname.startsWith('/runs/')", Duration::from_secs(20)),
            "the Run button did not open the new run"
        );
    })
    .await
    .unwrap();
    let (_, runs) = app.get_json("/api/runs?pipeline_name=hello").await;
    let list = runs
        .get("runs")
        .and_then(|r| r.as_array())
        .cloned()
        .or_else(|| runs.as_array().cloned())
        .unwrap_or_default();
    assert_eq!(
        list.len(),
        1,
        "a double click started {} runs: {runs}",
        list.len()
    );
    app.stop().await;
}
