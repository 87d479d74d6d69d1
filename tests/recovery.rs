//! Crash recovery and shutdown with real server processes and the real engine:
//! kill -9 mid-run, exit while the server is down, a vanished container, SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{
    ServerProcess, TestApp, get_json_at, get_text_at, trigger_at, wait_finished_at, write_files,
};

const COUNTER: &str = "import sys, time\nfor i in range(1, 81):\n    print(f'line {i}', flush=True)\n    time.sleep(0.05)\nsys.stdout.write('tail without newline')\n";

async fn wait_lines(base: &str, id: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_text_at(base, &format!("/api/runs/{id}/logs"))
        .await
        .lines()
        .count()
        < n
    {
        assert!(
            Instant::now() < deadline,
            "run {id} did not produce {n} lines"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The user's lines of a log (Fast-Flow's own `[fastflow]` notes left out).
fn user_lines(log: &str) -> Vec<String> {
    common::log_texts(log)
        .into_iter()
        .filter(|t| !t.starts_with("[fastflow]"))
        .map(String::from)
        .collect()
}

/// A data root whose pipelines directory holds `files` (the engine must be there).
async fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    write_files(&root.path().join("pipelines"), files);
    root
}

fn expected_counter_lines() -> Vec<String> {
    let mut v: Vec<String> = (1..=80).map(|i| format!("line {i}")).collect();
    v.push("tail without newline".into());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_then_restart_finishes_with_a_complete_log() {
    let root = root_with(&[("counter/main.py", COUNTER)]).await;
    let server = ServerProcess::spawn(root.path(), &[]);
    let id = trigger_at(&server.base, "counter").await;
    wait_lines(&server.base, &id, 15).await;
    server.signal(libc::SIGKILL);
    drop(server);
    // The container keeps running (and printing) while no server is there.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let server = ServerProcess::spawn(root.path(), &[]);
    let run = wait_finished_at(&server.base, &id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["exit_code"], 0);
    let log = get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    assert_eq!(
        user_lines(&log),
        expected_counter_lines(),
        "no line lost, none doubled:\n{log}"
    );
    assert!(log.contains("[fastflow] re-attached"), "{log}");
    common::wait_containers_removed(&id, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_that_exited_while_the_server_was_down_gets_its_real_exit_code() {
    let root = root_with(&[(
        "quitter/main.py",
        "import sys, time\nprint('before', flush=True)\ntime.sleep(1.5)\nprint('after', flush=True)\nsys.exit(3)\n",
    )])
    .await;
    let server = ServerProcess::spawn(root.path(), &[]);
    let id = trigger_at(&server.base, "quitter").await;
    wait_lines(&server.base, &id, 1).await;
    server.signal(libc::SIGKILL);
    drop(server);
    // Wait until the container has exited on its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new("docker")
            .args([
                "ps",
                "-q",
                "--filter",
                &format!("label=fastflow.run_id={id}"),
                "--filter",
                "status=exited",
            ])
            .output()
            .expect("docker ps");
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "container did not exit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = ServerProcess::spawn(root.path(), &[]);
    let run = wait_finished_at(&server.base, &id).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["error_type"], "pipeline_error");
    let log = get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    assert_eq!(user_lines(&log), ["before", "after"], "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_container_fails_with_a_reason_and_queued_runs_survive() {
    let mut app = TestApp::start_with(
        &[(
            "sleeper/main.py",
            "import time\nprint('up', flush=True)\ntime.sleep(120)\n",
        )],
        &[("MAX_CONCURRENT_RUNS", "1")],
    )
    .await;
    let running = app.trigger("sleeper", "").await;
    let queued = app.trigger("sleeper", "").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let container = loop {
        if let Some((c, _)) = common::containers_for_run(&running)
            .await
            .into_iter()
            .next()
        {
            break c;
        }
        assert!(Instant::now() < deadline, "no container");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    app.stop_only().await;
    let status = std::process::Command::new("docker")
        .args(["rm", "-f", &container])
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    app.start_again().await;
    let run = app.wait_finished(&running, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "infrastructure_error");
    assert!(
        run["error_message"]
            .as_str()
            .unwrap()
            .contains("disappeared"),
        "{run}"
    );
    // The queued run survived the restart and now runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, q) = app.get_json(&format!("/api/runs/{queued}")).await;
        if q["status"] == "RUNNING" {
            break;
        }
        assert_eq!(q["status"], "PENDING", "{q}");
        assert!(
            Instant::now() < deadline,
            "queued run did not start after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.post_json(&format!("/api/runs/{queued}/cancel"), "")
        .await;
    app.wait_finished(&queued, Duration::from_secs(60)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_promptly_and_leaves_the_run_to_the_next_start() {
    let root = root_with(&[("counter/main.py", COUNTER)]).await;
    let mut server = ServerProcess::spawn(root.path(), &[]);
    let id = trigger_at(&server.base, "counter").await;
    wait_lines(&server.base, &id, 10).await;
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_secs(10)),
        "server did not exit after SIGTERM"
    );
    assert_eq!(
        common::containers_for_run(&id).await.len(),
        1,
        "the run's container keeps running"
    );
    let server = ServerProcess::spawn(root.path(), &[]);
    let run = wait_finished_at(&server.base, &id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let log = get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    assert_eq!(user_lines(&log), expected_counter_lines(), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_stop_runs_on_shutdown_interrupts_the_run() {
    let root = root_with(&[("counter/main.py", COUNTER)]).await;
    let mut server = ServerProcess::spawn(root.path(), &[("STOP_RUNS_ON_SHUTDOWN", "true")]);
    let id = trigger_at(&server.base, "counter").await;
    wait_lines(&server.base, &id, 10).await;
    server.signal(libc::SIGTERM);
    assert!(
        server.wait_exit(Duration::from_secs(10)),
        "server did not exit after SIGTERM"
    );
    common::wait_containers_removed(&id, Duration::from_secs(30)).await;
    let server = ServerProcess::spawn(root.path(), &[]);
    let (_, run) = get_json_at(&server.base, &format!("/api/runs/{id}")).await;
    assert_eq!(run["status"], "INTERRUPTED", "{run}");
    assert!(
        run["error_message"].as_str().unwrap().contains("shut down"),
        "{run}"
    );
}
