//! Re-attaching after kill -9 tells the truth: a run that ended while the server
//! was down is classified by its own exit (not a timeout that passed meanwhile)
//! with its real duration; the log continues without loss or repetition, also
//! when the crash came in the middle of a long line; when the engine's copy was
//! rotated, everything it still has follows without repetition and the gap is
//! said; a capped log keeps one truncation marker.

mod common;

use std::time::Duration;

use common::{ServerProcess, get_text_at, trigger_at, wait_finished_at, write_files};

/// Waits until the run's log shows `needle`.
async fn wait_log(base: &str, id: &str, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !get_text_at(base, &format!("/api/runs/{id}/logs"))
        .await
        .contains(needle)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "`{needle}` never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the server, waits, and starts a new one on the same data.
async fn crash_and_restart(
    server: ServerProcess,
    root: &std::path::Path,
    down: Duration,
    extra: &[(&str, &str)],
) -> ServerProcess {
    server.signal(libc::SIGKILL);
    let mut server = server;
    assert!(server.wait_exit(Duration::from_secs(10)));
    tokio::time::sleep(down).await;
    ServerProcess::spawn(root, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_ended_while_the_server_was_down_is_not_a_timeout() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    write_files(
        &root.path().join("pipelines"),
        &[
            (
                "quick/main.py",
                "import time\nprint('go', flush=True)\ntime.sleep(4)\n",
            ),
            (
                "quick/pipeline.json",
                r#"{"timeout": 8, "retry_attempts": 1}"#,
            ),
        ],
    );
    let server = ServerProcess::spawn(root.path(), &[]);
    // Three runs: the old race chose the timeout about three times in four.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(trigger_at(&server.base, "quick").await);
    }
    for id in &ids {
        wait_log(&server.base, id, "go").await;
    }
    // Down for longer than the timeout; the containers exit 0 after 4 s meanwhile.
    let server = crash_and_restart(server, root.path(), Duration::from_secs(10), &[]).await;
    for id in &ids {
        let run = wait_finished_at(&server.base, id).await;
        assert_eq!(run["status"], "SUCCESS", "{run}");
        assert_eq!(run["exit_code"], 0);
        let duration = run["duration_seconds"].as_f64().unwrap();
        assert!(
            (3.0..8.0).contains(&duration),
            "the container's own lifetime, not the time until re-attach: {run}"
        );
    }
    let (_, runs) = common::get_json_at(&server.base, "/api/runs").await;
    assert_eq!(runs["total"], 3, "no retry was started: {runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_from_a_rotated_engine_copy_loses_nothing_it_still_has_and_says_so() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    // 300 control characters per line: the engine's JSON stores each as \u0001, so its
    // five 1 MiB files rotate (dropping the first ~550 lines) before our 1 MiB log is full.
    write_files(
        &root.path().join("pipelines"),
        &[(
            "ctrl/main.py",
            "import time\nfor i in range(3000):\n    print('\\x01' * 300 + f' L{i:05d}', flush=True)\n    if i == 2000: print('MARK', flush=True)\n    time.sleep(0.002)\n",
        )],
    );
    let extra = [("LOG_MAX_SIZE_MB", "1")];
    let server = ServerProcess::spawn(root.path(), &extra);
    let id = trigger_at(&server.base, "ctrl").await;
    wait_log(&server.base, &id, "MARK").await;
    let server = crash_and_restart(server, root.path(), Duration::from_secs(12), &extra).await;
    let run = wait_finished_at(&server.base, &id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["log_truncated"], false, "{run}");
    let log = get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    let numbers: Vec<u32> = log
        .lines()
        .filter_map(|l| l.rsplit_once(" L").and_then(|(_, n)| n.parse().ok()))
        .collect();
    // The copy lost its first few hundred lines to rotation, but it still holds our last
    // stored line (the crash came at line 2000): the log continues exactly after it.
    let notes: Vec<&str> = log.lines().filter(|l| l.contains("[fastflow")).collect();
    let expected: Vec<u32> = (0..3000).collect();
    assert!(
        numbers == expected,
        "{} lines, first {:?}, last {:?}, gaps {}; notes {notes:?}",
        numbers.len(),
        numbers.first(),
        numbers.last(),
        numbers.windows(2).filter(|w| w[1] != w[0] + 1).count()
    );
    assert!(
        log.contains("the engine kept only the newest part of this run's stdout"),
        "the rotation is said"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_long_line_stores_it_once() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    write_files(
        &root.path().join("pipelines"),
        &[(
            "long/main.py",
            "import sys, time\nprint('start', flush=True)\nfor _ in range(10):\n    sys.stdout.write('a' * 262144)\n    sys.stdout.flush()\n    time.sleep(0.4)\nprint()\nprint('END', flush=True)\n",
        )],
    );
    let server = ServerProcess::spawn(root.path(), &[]);
    let id = trigger_at(&server.base, "long").await;
    wait_log(&server.base, &id, "start").await;
    // Late enough that at least one 1 MiB piece of the long line is stored.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let server = crash_and_restart(server, root.path(), Duration::from_secs(4), &[]).await;
    let run = wait_finished_at(&server.base, &id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let log = get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    let marker = "[fastflow: line longer than 1 MiB, continued on the next line]";
    let a_count: usize = common::log_texts(&log)
        .iter()
        .map(|t| t.trim_end_matches(marker).trim_end())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b == b'a'))
        .map(str::len)
        .sum();
    assert_eq!(a_count, 10 * 262144, "the long line is stored exactly once");
    assert!(log.contains("END"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_log_keeps_one_truncation_marker_across_a_restart() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    write_files(
        &root.path().join("pipelines"),
        &[(
            "chatty/main.py",
            "import time\nfor i in range(4000):\n    print(f'line {i} ' + 'x' * 40, flush=True)\n    time.sleep(0.001)\n",
        )],
    );
    let extra = [("LOG_MAX_SIZE_MB", "0.05")];
    let server = ServerProcess::spawn(root.path(), &extra);
    let id = trigger_at(&server.base, "chatty").await;
    wait_log(&server.base, &id, "log truncated").await;
    let server = crash_and_restart(server, root.path(), Duration::from_secs(1), &extra).await;
    wait_finished_at(&server.base, &id).await;
    let log = get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    assert_eq!(log.matches("log truncated").count(), 1, "{log}");
}
