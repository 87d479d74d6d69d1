//! Full disks, for real: each test mounts a small tmpfs (CI runs as root), puts
//! LOGS_DIR or DATA_DIR (database included) on it, fills it, and checks that runs
//! keep draining, end with the reason, can be cancelled, and are stored once the
//! space is back, also across a kill -9.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ServerProcess, TestApp, get_json_at, write_files};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "these tests mount a tmpfs and need root (CI runs as root)"
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes a filler file until the file system is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.flush();
    }

    fn free(&self) {
        std::fs::remove_file(self.dir.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

const CHATTY: &str = "for i in range(400_000):\n    print(f'line {i:06d} ' + 'x' * 40)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_disk_ends_the_run_with_the_reason_after_draining_all_output() {
    let root = tempfile::tempdir().unwrap();
    let logs = Tmpfs::mount(&root.path().join("logs"), "2m");
    let logs_dir = logs.dir.display().to_string();
    let app = TestApp::start_with(
        &[
            ("chatty/main.py", CHATTY),
            ("forever/main.py", "while True:\n    print('y' * 100)\n"),
        ],
        // No reserve: this test is about the disk really running full.
        &[("LOGS_DIR", &logs_dir), ("MIN_FREE_DISK_MB", "0")],
    )
    .await;
    let (run, log) = app.run_to_end("chatty", "{}").await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "infrastructure_error", "{run}");
    let message = run["error_message"].as_str().unwrap();
    assert!(
        message.starts_with("log storage failed: No space left on device"),
        "{message}"
    );
    assert!(message.contains("were not stored"), "{message}");
    // main.py printed every line and exited 0: its output was drained to the end.
    assert_eq!(run["exit_code"], 0, "{run}");
    assert!(message.ends_with("main.py exited with code 0"), "{message}");
    // What was stored is a clean prefix, in order, and the run's counters say so.
    let texts = common::log_texts(&log);
    assert_eq!(run["log_lines"], texts.len() as u64, "{run}");
    assert!(texts.len() > 1000, "some lines were stored");
    for (i, text) in texts.iter().enumerate() {
        assert!(
            text.starts_with(&format!("line {i:06} ")),
            "line {i}: {text}"
        );
    }
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 503);
    assert!(
        ready["reason"].as_str().unwrap().starts_with("LOGS_DIR"),
        "{ready}"
    );
    assert_eq!(ready["checks"]["disk"]["ok"], false, "{ready}");
    assert_eq!(
        ready["checks"]["engine"]["ok"], true,
        "only the disk fails: {ready}"
    );

    // Cancel works at any time, also while the output cannot be stored.
    let id = app.trigger("forever", "{}").await;
    app.wait_status(&id, "RUNNING").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = app.post_json(&format!("/api/runs/{id}/cancel"), "").await;
    assert_eq!(status, 200, "{body}");
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "INTERRUPTED", "{run}");
    common::wait_containers_removed(&id, Duration::from_secs(30)).await;
    app.stop().await;
}

/// Database and logs on one small disk: the log stops while half of
/// MIN_FREE_DISK_MB is still free, so the run's end is recorded at once (it used
/// to stay RUNNING until someone freed space).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_filling_the_shared_disk_stops_at_the_reserve_and_the_run_ends() {
    let root = tempfile::tempdir().unwrap();
    let data = Tmpfs::mount(&root.path().join("data"), "16m");
    let data_dir = data.dir.display().to_string();
    let uv_cache = root.path().join("uv").display().to_string();
    let app = TestApp::start_with(
        &[("chatty/main.py", CHATTY)],
        &[
            ("DATA_DIR", &data_dir),
            ("MIN_FREE_DISK_MB", "8"),
            ("UV_CACHE_DIR", &uv_cache),
        ],
    )
    .await;
    let (run, log) = app.run_to_end("chatty", "{}").await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "infrastructure_error", "{run}");
    let message = run["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("nearly full") && message.contains("MIN_FREE_DISK_MB"),
        "{message}"
    );
    assert!(message.contains("were not stored"), "{message}");
    assert_eq!(run["exit_code"], 0, "{run}");
    let texts = common::log_texts(&log);
    assert!(texts.len() > 1000, "lines were stored up to the reserve");
    assert_eq!(run["log_lines"], texts.len() as u64, "{run}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_disk_delays_results_and_never_breaks_the_pool() {
    let root = tempfile::tempdir().unwrap();
    let data = Tmpfs::mount(&root.path().join("data"), "8m");
    let data_dir = data.dir.display().to_string();
    let uv_cache = root.path().join("uv").display().to_string();
    let app = TestApp::start_with(
        &[
            (
                "short/main.py",
                "import time\ntime.sleep(4)\nprint('done')\n",
            ),
            ("long/main.py", "import time\ntime.sleep(120)\n"),
        ],
        &[
            ("DATA_DIR", &data_dir),
            ("MIN_FREE_DISK_MB", "1"),
            // The pipeline's own cache stays on a disk with room: the database is what is tested.
            ("UV_CACHE_DIR", &uv_cache),
        ],
    )
    .await;
    let short = app.trigger("short", "{}").await;
    let long = app.trigger("long", "{}").await;
    app.wait_status(&short, "RUNNING").await;
    app.wait_status(&long, "RUNNING").await;
    data.fill();

    // Triggers fail clearly while the database cannot be written...
    for _ in 0..4 {
        let (status, body) = app.post_json("/api/pipelines/short/run", "{}").await;
        assert_eq!(status, 503, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("disk is full"),
            "{body}"
        );
    }
    // ...a cancel still stops the container at once...
    let (status, body) = app.post_json(&format!("/api/runs/{long}/cancel"), "").await;
    assert_eq!(status, 200, "{body}");
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 503);
    assert!(
        ready["reason"].as_str().unwrap().contains("DATA_DIR"),
        "{ready}"
    );
    // ...and a finished run stays RUNNING (not lost) while its result cannot be stored.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, run) = app.get_json(&format!("/api/runs/{short}")).await;
    assert_eq!(run["status"], "RUNNING", "{run}");

    data.free();
    let run = app.wait_finished(&short, Duration::from_secs(60)).await;
    assert!(
        matches!(run["status"].as_str(), Some("SUCCESS" | "FAILED")),
        "{run}"
    );
    assert_eq!(run["exit_code"], 0, "{run}");
    let run = app.wait_finished(&long, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "INTERRUPTED", "{run}");
    // Every pooled connection works again (a failed COMMIT used to break one for good).
    for _ in 0..12 {
        let (status, body) = app.post_json("/api/pipelines/short/run", "{}").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!(status, 200, "{ready}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_not_stored_before_kill_9_is_stored_by_the_next_start() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    write_files(
        &root.path().join("pipelines"),
        &[("short/main.py", "import time\ntime.sleep(3)\n")],
    );
    let data = Tmpfs::mount(&root.path().join("data"), "8m");
    let uv_cache = root.path().join("uv").display().to_string();
    let mut server = ServerProcess::spawn(root.path(), &[("UV_CACHE_DIR", &uv_cache)]);
    let id = common::trigger_at(&server.base, "short").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_json_at(&server.base, &format!("/api/runs/{id}"))
        .await
        .1["status"]
        != "RUNNING"
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    data.fill();
    // The container exits; its result cannot be written.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        !common::containers_for_run(&id).await.is_empty(),
        "the container is kept: {}",
        server.log()
    );
    server.signal(libc::SIGKILL);
    assert!(server.wait_exit(Duration::from_secs(10)));
    data.free();

    let server = ServerProcess::spawn(root.path(), &[("UV_CACHE_DIR", &uv_cache)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let (_, run) = get_json_at(&server.base, &format!("/api/runs/{id}")).await;
        if run["status"] != "RUNNING" {
            break run;
        }
        assert!(
            Instant::now() < deadline,
            "start-up repair did not finish the run: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["exit_code"], 0);
    common::wait_containers_removed(&id, Duration::from_secs(30)).await;
}
