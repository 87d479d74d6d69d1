//! The pipeline page's tabs over plain HTTP: overview (outcomes and duration
//! chart), runs, configuration and source (highlighted on the server, escaped,
//! confined to the pipeline's directory), an unknown tab as a 404,
//! "Run with changes…" pre-filling the form from an earlier run, and a run too
//! short for a resource sample saying so instead of drawing empty charts.

mod common;

use common::TestApp;

const MAIN: &str = "# say <b>hi</b>\nimport os\nprint(\"hi\", os.environ.get(\"A\"))\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_render_and_source_is_escaped_and_confined() {
    let app = TestApp::start(&[
        ("hello/main.py", MAIN),
        ("hello/requirements.txt", "requests==2.32.3\n"),
        (
            "hello/pipeline.json",
            r#"{"description": "Says hi", "timeout": 60, "schedule_cron": "0 3 * * *"}"#,
        ),
        ("leaky/main.py", "print('x')\n"),
    ])
    .await;
    // A requirements file that points out of its directory must never be shown.
    let outside = app.pipelines_dir().join("..").join("secret.txt");
    std::fs::write(&outside, "TOP-SECRET-CONTENT\n").expect("write outside file");
    std::os::unix::fs::symlink(&outside, app.pipelines_dir().join("leaky/requirements.txt"))
        .expect("symlink");
    app.refresh_pipelines().await;
    app.run_to_end("hello", "").await;

    let (status, overview) = app.get_text("/pipelines/hello").await;
    assert_eq!(status, 200, "{overview}");
    assert!(overview.contains("<nav class=\"tabs\""), "tabs missing");
    assert!(
        overview.contains("href=\"/pipelines/hello\" aria-current=\"page\""),
        "the overview tab is marked current"
    );
    assert!(overview.contains("class=\"chart"), "no duration chart");
    assert!(
        overview.contains("id=\"run\""),
        "no run form on the overview"
    );

    let (status, runs) = app.get_text("/pipelines/hello?tab=runs").await;
    assert_eq!(status, 200);
    assert!(runs.contains("href=\"/runs?pipeline=hello\""), "{runs}");
    assert!(runs.contains("?tab=runs\" aria-current=\"page\""));

    let (status, conf) = app.get_text("/pipelines/hello?tab=configuration").await;
    assert_eq!(status, 200);
    assert!(conf.contains("0 3 * * *"), "schedule missing");
    assert!(conf.contains("requests==2.32.3"), "requirements missing");

    let (status, src) = app.get_text("/pipelines/hello?tab=source").await;
    assert_eq!(status, 200);
    for file in ["main.py", "requirements.txt", "pipeline.json"] {
        assert!(src.contains(file), "{file} not shown");
    }
    // Highlighted by the server into classed spans, and the markup in the
    // comment stays text.
    assert!(src.contains("class=\"hl-"), "no highlighting classes");
    assert!(!src.contains("<b>hi</b>"), "source markup was not escaped");
    assert!(src.contains("&lt;b&gt;hi") || src.contains("&#60;b&#62;hi"));

    let (status, leaky) = app.get_text("/pipelines/leaky?tab=source").await;
    assert_eq!(status, 200, "{leaky}");
    assert!(
        !leaky.contains("TOP-SECRET-CONTENT"),
        "a symlink out of the pipeline directory was followed"
    );
    assert!(
        leaky.contains("requirements.txt"),
        "the refused file is named"
    );
    assert!(leaky.contains("class=\"banner error"), "its error is shown");

    let (status, bad) = app.get_text("/pipelines/hello?tab=%3Cx%3E").await;
    assert_eq!(status, 404);
    assert!(bad.contains("has no tab"), "{bad}");
    assert!(!bad.contains("<x>"), "the bad tab name is escaped");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_changes_prefills_the_form() {
    let app = TestApp::start(&[("hello/main.py", MAIN), ("other/main.py", "print('o')\n")]).await;
    let (run, _) = app
        .run_to_end(
            "hello",
            r#"{"env_vars": {"A": "from <earlier>", "MULTI": "line1\nINJECTED=yes"}, "parameters": {"DAY": "2026-01-31"}}"#,
        )
        .await;
    let id = run["id"].as_str().expect("run id");

    // A run this short ends before its first resource sample: the page says so
    // instead of drawing empty axes.
    let (_, charts) = app.get_text(&format!("/fragments/runs/{id}/metrics")).await;
    assert!(
        charts.contains("ended before its first sample") && !charts.contains("<svg"),
        "{charts}"
    );
    let (_, run_page) = app.get_text(&format!("/runs/{id}")).await;
    assert!(
        run_page.contains(&format!("/pipelines/hello?from_run={id}#run")),
        "the run page links to Run with changes"
    );

    let (status, page) = app
        .get_text(&format!("/pipelines/hello?from_run={id}"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Pre-filled from run"), "no banner");
    // Environment values are masked as the API masks them (they may be secrets),
    // and a line break in a value cannot become a variable of its own.
    assert!(
        !page.contains("from &lt;earlier&gt;") && !page.contains("from &#60;earlier&#62;"),
        "an env value is shown"
    );
    assert!(
        page.contains("A=***") && page.contains("MULTI=***"),
        "env names not pre-filled"
    );
    assert!(
        !page.contains("INJECTED"),
        "a value's second line became a variable"
    );
    assert!(page.contains("DAY=2026-01-31"), "parameters not pre-filled");
    assert!(
        page.contains(&format!(r#"name="from_run" value="{id}""#)),
        "the form names its source run"
    );

    // Sent back unchanged, `***` keeps the earlier run's values; a new value wins.
    let form = [
        ("env", "A=***\nMULTI=***\nB=new"),
        ("parameters", "DAY=2026-02-01"),
        ("from_run", id),
    ];
    let resp = common::no_redirect_client(&app.token)
        .post(app.url("/pipelines/hello/run"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        303,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let copy = location.trim_start_matches("/runs/");
    let stored = fastflow::db::runs::get(&app.state().pool, copy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.env_vars.0["A"], "from <earlier>");
    assert_eq!(stored.env_vars.0["MULTI"], "line1\nINJECTED=yes");
    assert_eq!(stored.env_vars.0["B"], "new");
    assert_eq!(stored.parameters.0["DAY"], "2026-02-01");

    // A READONLY viewer gets no Run form and nothing pre-filled.
    let reader = common::make_token(&app.state().pool, "reader", "READONLY").await;
    let as_reader = common::client_with_token(&reader);
    let page = common::text_with(
        &as_reader,
        &app.url(&format!("/pipelines/hello?from_run={id}")),
    )
    .await;
    assert!(
        page.contains("Starting runs needs the WRITE role"),
        "{page}"
    );
    assert!(
        !page.contains("Pre-filled") && !page.contains("A=***"),
        "prefilled for a reader"
    );
    let run_page = common::text_with(&as_reader, &app.url(&format!("/runs/{id}"))).await;
    assert!(
        !run_page.contains("Run again") && !run_page.contains("Run with changes"),
        "a reader sees buttons that answer 403"
    );

    // A run of another pipeline, or none at all, is not silently ignored.
    let (status, wrong) = app
        .get_text(&format!("/pipelines/other?from_run={id}"))
        .await;
    assert_eq!(status, 404, "{wrong}");
    let (status, _) = app.get_text("/pipelines/hello?from_run=nope").await;
    assert_eq!(status, 404);

    // The recent-runs fragment takes a limit within its documented range.
    let (status, _) = app
        .get_text("/fragments/pipelines/hello/runs?limit=10")
        .await;
    assert_eq!(status, 200);
    for bad in ["0", "21", "ten"] {
        let (status, body) = app
            .get_text(&format!("/fragments/pipelines/hello/runs?limit={bad}"))
            .await;
        assert_eq!(status, 400, "limit={bad}: {body}");
    }
    app.stop().await;
}
