//! Pre-heating after a git sync: a pipeline whose requirements.txt is new or
//! changed is warmed into the shared uv cache in a runner container; a change to
//! other files warms nothing; a run started during a warm-up waits for it.
//! (Needs PyPI from inside containers, as every run with requirements does.)

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::git_repo::{commit_files, git};
use serde_json::Value;

fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).expect("an RFC 3339 time")
}

async fn wait_warm(app: &TestApp, name: &str, newer_than: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, status) = app.get_json("/api/sync/status").await;
        let warm = status["pre_heat"][name].clone();
        let fresh = newer_than.is_none_or(|t| time(&warm["updated_at"]) > time(&Value::from(t)));
        if fresh && matches!(warm["state"].as_str(), Some("ready" | "failed")) {
            return warm;
        }
        assert!(
            Instant::now() < deadline,
            "warm-up of {name} never ended: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_requirements_are_warmed_and_runs_wait_for_it() {
    common::require_docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    commit_files(
        &repo,
        &[
            (
                "deps/main.py",
                "import six\nprint('six', six.__version__)\n",
            ),
            ("deps/requirements.txt", "six==1.16.0\n"),
            ("plain/main.py", "print('no deps')\n"),
        ],
        "with deps",
    );
    let url = format!("file://{}", repo.display());
    let app = TestApp::start_with(&[], &[("GIT_REPO_URL", &url)]).await;
    app.wait_sync_done().await;
    let warm = wait_warm(&app, "deps", None).await;
    assert_eq!(warm["state"], "ready", "{warm}");
    let (_, status) = app.get_json("/api/sync/status").await;
    assert!(
        status["pre_heat"]["plain"].is_null(),
        "no requirements, no warm-up: {status}"
    );
    let (run, log) = app.run_to_end("deps", "{}").await;
    assert_eq!(run["status"], "SUCCESS", "{run}: {log}");
    assert!(log.contains("six 1.16.0"), "{log}");

    // Other files change: nothing is warmed again.
    let first_ready = warm["updated_at"].as_str().unwrap_or_default().to_string();
    commit_files(
        &repo,
        &[(
            "deps/main.py",
            "import six\nprint('again', six.__version__)\n",
        )],
        "code only",
    );
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    let (_, status) = app.get_json("/api/sync/status").await;
    assert_eq!(
        status["pre_heat"]["deps"]["updated_at"],
        first_ready.as_str(),
        "{status}"
    );

    // The requirements change: warmed again, and a run started meanwhile waits for it.
    commit_files(
        &repo,
        &[("deps/requirements.txt", "six==1.17.0\n")],
        "bump six",
    );
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    let id = app.trigger("deps", "{}").await;
    let warm = wait_warm(&app, "deps", Some(&first_ready)).await;
    assert_eq!(warm["state"], "ready", "{warm}");
    let run = app.wait_finished(&id, Duration::from_secs(180)).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let (started, warmed) = (
        time(&run["container_started_at"]),
        time(&warm["updated_at"]),
    );
    assert!(
        started >= warmed,
        "the run started ({started}) before its warm-up ended ({warmed})"
    );
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert!(log.contains("again 1.17.0"), "{log}");
    app.stop().await;
}
