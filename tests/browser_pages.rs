//! Every page in a real browser (headless Chromium, no network) at desktop and
//! phone width: no page-level horizontal scroll at 390 px, the runs filters
//! survive a reload (they are in the URL), an empty filter result says so, the
//! pipelines search narrows as one types and survives a reload, the 404 page. Screenshots of every page at both widths go to the screenshots folder.

mod common;

use std::time::Duration;

use common::TestApp;
use serde_json::json;

/// The pages a team lives in, as (screenshot name, path).
fn pages(run: &str) -> Vec<(&'static str, String)> {
    vec![
        ("home", "/".into()),
        ("pipelines", "/pipelines".into()),
        ("pipeline", "/pipelines/report_with_a_long_name".into()),
        (
            "pipeline-configuration",
            "/pipelines/report_with_a_long_name?tab=configuration".into(),
        ),
        (
            "pipeline-source",
            "/pipelines/report_with_a_long_name?tab=source".into(),
        ),
        ("runs", "/runs".into()),
        ("run", format!("/runs/{run}")),
        ("scheduler", "/scheduler".into()),
        ("sync", "/sync".into()),
        ("secrets", "/secrets".into()),
        ("users", "/users".into()),
        ("audit", "/audit".into()),
        ("settings", "/settings".into()),
        ("notifications", "/settings/notifications".into()),
        ("system", "/system".into()),
        ("not-found", "/no/such/page".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_a_phone_and_the_run_filters_survive_a_reload() {
    let app = TestApp::start(&[
        ("report_with_a_long_name/main.py", "print('report ready')\n"),
        ("report_with_a_long_name/pipeline.json", r#"{"description": "Builds the nightly report and mails it to the whole team", "tags": ["nightly", "reports"]}"#),
        ("failing/main.py", "import sys\nprint('ValueError: no data', file=sys.stderr)\nsys.exit(3)\n"),
        ("broken/main.py", "print('x')\n"),
        ("broken/pipeline.json", "{ not json"),
    ])
    .await;
    let (ok, _) = app.run_to_end("report_with_a_long_name", "").await;
    let (failed, _) = app.run_to_end("failing", "").await;
    assert_eq!(failed["status"], "FAILED");
    let run = ok["id"].as_str().expect("run id").to_string();
    let base = app.url("");
    let token = app.token.clone();
    tokio::task::spawn_blocking(move || {
        let mut b = common::cdp::Browser::launch();
        b.open(&format!("{base}/runs"), json!({"Authorization": format!("Bearer {token}")}));
        b.viewport(1280, 900, false);
        assert!(b.wait_for("document.readyState === 'complete' && window.htmx !== undefined", Duration::from_secs(20)));

        // A filter goes into the address, and a reload keeps it.
        b.eval("(function(){var s=document.querySelector('#run-filters select[name=status]');s.value='FAILED';s.dispatchEvent(new Event('change',{bubbles:true}));})()");
        assert!(
            b.wait_for("location.search.includes('status=FAILED')", Duration::from_secs(10)),
            "the filter is not in the URL: {}",
            b.eval("location.href")
        );
        assert!(b.wait_for("document.querySelectorAll('#runs tbody tr').length === 1", Duration::from_secs(10)));
        b.eval("location.reload()");
        std::thread::sleep(Duration::from_millis(300));
        assert!(b.wait_for("document.readyState === 'complete'", Duration::from_secs(20)));
        assert_eq!(b.eval("document.querySelector('#run-filters select[name=status]').value"), json!("FAILED"));
        assert_eq!(b.eval("document.querySelectorAll('#runs tbody tr').length"), json!(1));
        assert_eq!(b.eval("document.querySelector('#runs tbody').textContent.includes('failing')"), json!(true));
        // Back returns to the unfiltered list.
        b.eval("(function(){var s=document.querySelector('#run-filters select[name=error_type]');s.value='oom';s.dispatchEvent(new Event('change',{bubbles:true}));})()");
        assert!(
            b.wait_for("document.getElementById('runs').textContent.includes('No runs match these filters')", Duration::from_secs(10)),
            "an empty filter result should say so: {}",
            b.eval("document.getElementById('runs').textContent")
        );
        assert_eq!(b.eval("document.querySelector('#runs a[href=\"/runs\"]') !== null"), json!(true), "no way to clear the filters");
        b.screenshot("runs-filtered-empty-desktop");

        // The pipelines search narrows as one types, and the address keeps it.
        b.navigate(&format!("{base}/pipelines"));
        assert!(b.wait_for("window.htmx !== undefined", Duration::from_secs(10)));
        b.eval("(function(){var i=document.querySelector('input[name=q]');i.value='nightly';i.dispatchEvent(new Event('input',{bubbles:true}));})()");
        assert!(
            b.wait_for("document.querySelectorAll('#pipelines a.name').length === 1 && location.search.includes('q=nightly')", Duration::from_secs(10)),
            "the search did not narrow the list: {}",
            b.eval("document.getElementById('pipelines').textContent")
        );
        assert_eq!(b.eval("document.querySelector('#pipelines a.name').textContent"), json!("report_with_a_long_name"), "a tag matches");
        b.eval("location.reload()");
        std::thread::sleep(Duration::from_millis(300));
        assert!(b.wait_for("document.readyState === 'complete'", Duration::from_secs(20)));
        assert_eq!(b.eval("document.querySelector('input[name=q]').value"), json!("nightly"));
        assert_eq!(b.eval("document.querySelectorAll('#pipelines a.name').length"), json!(1));
        b.screenshot("pipelines-search-desktop");

        // The state filter (the form's second select) narrows by itself too.
        b.eval("(function(){var i=document.querySelector('input[name=q]');i.value='';var s=document.querySelector('select[name=state]');s.value='invalid';s.dispatchEvent(new Event('change',{bubbles:true}));})()");
        assert!(
            b.wait_for("location.search.includes('state=invalid') && document.querySelectorAll('#pipelines a.name').length === 1", Duration::from_secs(10)),
            "choosing a state did not filter: {}",
            b.eval("location.search + ' ' + document.getElementById('pipelines').textContent")
        );
        assert_eq!(b.eval("document.querySelector('#pipelines a.name').textContent"), json!("broken"));

        let overflow = "document.documentElement.scrollWidth - window.innerWidth";
        let mut wide = Vec::new();
        for (name, path) in pages(&run) {
            for (width, height, mobile, label) in [(1280, 900, false, "desktop"), (390, 844, true, "phone")] {
                b.viewport(width, height, mobile);
                b.navigate(&format!("{base}{path}"));
                // Fragments loaded on `load` (engine status, lists) settle first.
                std::thread::sleep(Duration::from_millis(400));
                let extra = b.eval(overflow).as_i64().unwrap_or(i64::MAX);
                if mobile && extra > 0 {
                    wide.push(format!("{path}: {extra} px wider than the phone"));
                }
                b.screenshot(&format!("{name}-{label}"));
            }
        }
        assert!(wide.is_empty(), "pages scroll sideways on a phone: {wide:?}");

        b.viewport(1280, 900, false);
        b.navigate(&format!("{base}/no/such/page"));
        assert_eq!(b.eval("document.querySelector('h1') && document.querySelector('h1').textContent.includes('404')"), json!(true), "{}", b.dom());
        assert_eq!(b.eval("document.querySelector('header.top a.brand[href=\"/\"]') !== null"), json!(true), "the 404 page keeps the way home");
    })
    .await
    .unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_counts_todays_runs_shows_failures_and_refreshes_in_place() {
    let app = TestApp::start(&[
        ("daily/main.py", "print('ok')\n"),
        ("daily/pipeline.json", r#"{"schedule_cron": "0 3 * * *"}"#),
        (
            "flaky/main.py",
            "raise ValueError('the source table is empty')\n",
        ),
    ])
    .await;
    let (ok, _) = app.run_to_end("daily", "").await;
    assert_eq!(ok["status"], "SUCCESS");
    let (failed, _) = app.run_to_end("flaky", "").await;
    assert_eq!(failed["status"], "FAILED");
    let failed_id = failed["id"].as_str().unwrap_or_default().to_string();

    // Plain curl gets the same numbers as the browser.
    let (status, fragment) = app.get_text("/fragments/dashboard").await;
    assert_eq!(status, 200);
    assert!(fragment.contains("<strong>2</strong> runs"), "{fragment}");
    assert!(fragment.contains("50 % succeeded"), "{fragment}");
    assert!(
        fragment.contains(&format!("/runs/{failed_id}")),
        "the failure is listed"
    );
    assert!(
        fragment.contains("pipeline_error") || fragment.contains("exited with code"),
        "{fragment}"
    );
    assert!(fragment.contains("1 of 1 succeeded") && fragment.contains("0 of 1 succeeded"));
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(
        fragment.contains(&format!("{today}: 2 runs, 1 succeeded, 1 failed")),
        "today's cell"
    );
    assert!(
        fragment.contains("daily</a> <span title="),
        "the next cron run is listed: {fragment}"
    );

    let url = app.url("/");
    let token = app.token.clone();
    let client = app.client.clone();
    let trigger = app.url("/api/pipelines/daily/run");
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut b = common::cdp::Browser::launch();
        b.open(&url, json!({"Authorization": format!("Bearer {token}")}));
        b.viewport(1280, 900, false);
        assert!(
            b.wait_for(
                "document.querySelector('#dashboard svg.heat') !== null",
                Duration::from_secs(20)
            ),
            "{}",
            b.dom()
        );
        b.eval("window.__samePage = true");
        let started = handle.block_on(async {
            client
                .post(&trigger)
                .json(&json!({}))
                .send()
                .await
                .map(|r| r.status())
        });
        assert!(
            started.as_ref().is_ok_and(|s| s.is_success()),
            "{started:?}"
        );
        assert!(
            b.wait_for(
                "document.querySelector('#dashboard .stat strong').textContent === '3'",
                Duration::from_secs(40)
            ),
            "the dashboard did not refresh to 3 runs: {}",
            b.eval("document.querySelector('#dashboard .stats').textContent")
        );
        assert_eq!(
            b.eval("window.__samePage === true"),
            json!(true),
            "the page was reloaded"
        );
        b.screenshot("dashboard-desktop");
        b.viewport(390, 844, true);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            b.eval("document.documentElement.scrollWidth <= window.innerWidth"),
            json!(true),
            "the dashboard scrolls sideways on a phone"
        );
        b.screenshot("dashboard-phone");
    })
    .await
    .unwrap();
    app.stop().await;
}
