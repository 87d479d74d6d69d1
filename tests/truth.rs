//! Every run's outcome tells the truth, against the real engine: a kill from
//! outside is not an OOM, a failed install is a `dependency_error` in uv's words
//! (naming WORKER_CA_BUNDLE for certificate problems), a long run has resource
//! samples, and a sampling failure is said on the run.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_from_outside_is_reported_as_a_kill_not_as_out_of_memory() {
    let app = TestApp::start(&[
        (
            "idle/main.py",
            "import time\nprint('ready', flush=True)\ntime.sleep(120)\n",
        ),
        ("idle/pipeline.json", r#"{"mem_hard_limit": "128m"}"#),
    ])
    .await;
    let id = app.trigger("idle", "{}").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
        if log.contains("ready") {
            break;
        }
        assert!(Instant::now() < deadline, "the run never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let containers = common::containers_for_run(&id).await;
    let docker =
        fastflow::runner::engine::connect(std::env::var("DOCKER_HOST").ok().as_deref()).unwrap();
    let kill = bollard::query_parameters::KillContainerOptionsBuilder::new()
        .signal("SIGKILL")
        .build();
    docker
        .kill_container(&containers[0].0, Some(kill))
        .await
        .unwrap();
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "pipeline_error", "{run}");
    assert_eq!(run["exit_code"], 137);
    assert_eq!(
        run["error_message"],
        "exit code 137: terminated by signal 9 (SIGKILL), which Fast-Flow did not send"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_install_is_a_dependency_error_in_uvs_words() {
    let app = TestApp::start(&[
        ("missing/main.py", "print('never')\n"),
        (
            "missing/requirements.txt",
            "fastflow-test-no-such-package-4f1c==1.0\n",
        ),
    ])
    .await;
    let (run, log) = app.run_to_end("missing", "{}").await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "dependency_error", "{run}");
    let message = run["error_message"].as_str().unwrap();
    assert!(
        message.starts_with("installing requirements.txt failed; main.py did not start: "),
        "{message}"
    );
    assert!(
        message.contains("fastflow-test-no-such-package-4f1c"),
        "uv's own words: {message}"
    );
    assert!(!log.contains("never"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_names_worker_ca_bundle() {
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/untrusted-ca.pem"
    );
    let app = TestApp::start_with(
        &[
            ("tls/main.py", "print('never')\n"),
            ("tls/requirements.txt", "six==1.16.0\n"),
        ],
        // A CA bundle that trusts nothing real: every HTTPS connection fails verification,
        // as behind a TLS-intercepting proxy whose CA is not configured. The test app's
        // uv cache is new and empty, so uv must go to the index.
        &[("WORKER_CA_BUNDLE", ca)],
    )
    .await;
    let (run, _) = app.run_to_end("tls", "{}").await;
    assert_eq!(run["error_type"], "dependency_error", "{run}");
    let message = run["error_message"].as_str().unwrap();
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("WORKER_CA_BUNDLE"), "{message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_is_sampled_and_a_sampling_failure_is_said() {
    let app = TestApp::start(&[(
        "busy/main.py",
        "import time\nend = time.time() + 5\nwhile time.time() < end:\n    sum(range(10000))\n",
    )])
    .await;
    let (run, _) = app.run_to_end("busy", "{}").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let (_, metrics) = app
        .get_json(&format!(
            "/api/runs/{}/metrics",
            run["id"].as_str().unwrap()
        ))
        .await;
    let samples = metrics["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "a 5 s run has samples: {metrics}");
    assert!(run["metrics_error"].is_null(), "{run}");

    // The samples file cannot be created (a directory is in its place): the run says so.
    let id = app.trigger("busy", "{}").await;
    let path = app
        .dir
        .path()
        .join("data/logs")
        .join(format!("{id}_metrics.jsonl"));
    std::fs::create_dir_all(&path).unwrap();
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    let problem = run["metrics_error"].as_str().unwrap_or_default();
    assert!(
        problem.starts_with("resource sampling: samples cannot be stored"),
        "{run}"
    );
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(log.contains("[fastflow] resource sampling"), "{log}");
    let (_, page) = app.get_text(&format!("/runs/{id}")).await;
    assert!(
        page.contains("resource sampling: samples cannot be stored"),
        "shown on the run page"
    );
    app.stop().await;
}
