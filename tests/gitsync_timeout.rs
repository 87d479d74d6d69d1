//! A remote that accepts the connection and then never answers (its own test
//! binary: `GIT_TIMEOUT` is a process-wide libgit2 setting): the sync ends with
//! an error after `GIT_TIMEOUT`, the previous pipelines keep serving, and a new
//! configuration can be put in force after it.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::git_repo::{commit_files, git};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_remote_times_out_and_the_next_configuration_takes_over() {
    // Accepts connections, reads, never writes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    let first = commit_files(&repo, &[("job/main.py", "print(1)\n")], "one");
    let good = json!({"repo_url": format!("file://{}", repo.display())}).to_string();
    let app = TestApp::start_with(&[], &[("GIT_TIMEOUT", "5")]).await;
    let (code, saved) = app.post_json("/api/sync/repo-config", &good).await;
    assert_eq!((code, &saved["synced"]), (200, &json!(true)), "{saved}");

    let clock = Instant::now();
    let (code, saved) = app
        .post_json(
            "/api/sync/repo-config",
            &json!({"repo_url": format!("http://{silent_addr}/x.git")}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(
        saved["synced"], false,
        "the silent remote's sync failed: {saved}"
    );
    assert!(
        clock.elapsed() < Duration::from_secs(25),
        "ended by GIT_TIMEOUT"
    );
    let (_, status) = app.get_json("/api/sync/status").await;
    assert_eq!(status["running"], false, "{status}");
    assert_eq!(
        status["commit"],
        first.as_str(),
        "the previous commit serves: {status}"
    );
    let (_, list) = app.get_json("/api/pipelines").await;
    assert_eq!(list[0]["name"], "job", "{list}");

    // A sync on the silent remote runs; a new configuration waits for it, then
    // takes over (the answers stay honest meanwhile).
    let sync = {
        let url = app.url("/api/sync");
        let client = app.client.clone();
        tokio::spawn(async move { client.post(url).send().await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, during) = app.get_json("/api/sync/status").await;
    assert_eq!(during["repo_configured"], true, "{during}");
    let (code, saved) = app.post_json("/api/sync/repo-config", &good).await;
    assert_eq!((code, &saved["synced"]), (200, &json!(true)), "{saved}");
    let answered = sync.await.expect("task").expect("POST");
    assert_eq!(
        answered.status().as_u16(),
        502,
        "the silent remote's sync failed"
    );
    let (_, status) = app.get_json("/api/sync/status").await;
    assert_eq!(status["last_sync_ok"], true, "{status}");
    app.stop().await;
}
