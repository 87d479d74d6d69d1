//! Git sync against a real repository on disk (`file://`): first clone at start,
//! a new commit picked up by `POST /api/sync`, runs keeping the files they
//! started with, a failed sync keeping the previous snapshot, restart.

mod common;

use std::time::Duration;

use common::TestApp;
use common::git_repo::{commit_files, git, github_signature};

/// Reads `data.txt` at start, waits for `go` to appear in its folder's parent
/// (it never does: the folder is read-only), then reads it again after a pause.
const SLOW_READER: &str = "import time\nprint('first', open('data.txt').read().strip(), flush=True)\ntime.sleep(6)\nprint('second', open('data.txt').read().strip(), flush=True)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_switches_atomically_and_runs_keep_their_files() {
    common::require_docker().await;
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    let first = commit_files(
        &repo,
        &[
            ("pipelines/hello/main.py", "print('v1')\n"),
            ("pipelines/slow/main.py", SLOW_READER),
            ("pipelines/slow/data.txt", "old\n"),
            ("pipelines/gone/main.py", "print('bye')\n"),
            ("README.md", "not a pipeline\n"),
        ],
        "first version",
    );
    let url = format!("file://{}", repo.display());
    let mut app = TestApp::start_with(
        // PIPELINES_DIR's own files must not be served in git mode.
        &[("local_only/main.py", "print('local')\n")],
        &[
            ("GIT_REPO_URL", &url),
            ("GIT_BRANCH", "main"),
            ("PIPELINES_SUBDIR", "pipelines"),
        ],
    )
    .await;

    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    assert_eq!(status["branch"], "main");
    assert_eq!(status["last_sync_ok"], true, "{status}");
    assert_eq!(status["subject"], "first version");
    let (_, list) = app.get_json("/api/pipelines").await;
    let names: Vec<&str> = list
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["gone", "hello", "slow"], "{list}");

    let (run, log) = app.run_to_end("hello", "{}").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert!(log.contains("v1"), "{log}");
    assert_eq!(run["git_sha"], first.as_str());
    assert_eq!(run["git_branch"], "main");
    assert_eq!(run["git_subject"], "first version");

    // A long run starts on the first commit...
    let slow = app.trigger("slow", "{}").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, log) = app.get_text(&format!("/api/runs/{slow}/logs")).await;
        if log.contains("first old") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "slow run never printed: {log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ...then a second commit is synced while it runs.
    std::fs::remove_dir_all(repo.join("pipelines/gone")).expect("rm");
    let second = commit_files(
        &repo,
        &[
            ("pipelines/hello/main.py", "print('v2')\n"),
            ("pipelines/slow/data.txt", "new\n"),
            ("pipelines/added/main.py", "print('added')\n"),
        ],
        "second version",
    );
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    assert_eq!(synced["success"], true);
    assert_eq!(synced["old_commit"], first.as_str());
    assert_eq!(synced["new_commit"], second.as_str());
    assert_eq!(synced["added"], serde_json::json!(["added"]));
    assert_eq!(synced["changed"], serde_json::json!(["hello", "slow"]));
    assert_eq!(synced["removed"], serde_json::json!(["gone"]));

    // A run started after the sync reads the new files...
    let (run, log) = app.run_to_end("hello", "{}").await;
    assert!(log.contains("v2") && !log.contains("v1"), "{log}");
    assert_eq!(run["git_sha"], second.as_str());
    // ...while the one started before still reads the old ones to its end.
    let slow_run = app.wait_finished(&slow, Duration::from_secs(120)).await;
    assert_eq!(slow_run["status"], "SUCCESS", "{slow_run}");
    let (_, slow_log) = app.get_text(&format!("/api/runs/{slow}/logs")).await;
    assert!(slow_log.contains("second old"), "{slow_log}");
    assert_eq!(slow_run["git_sha"], first.as_str());

    // Nothing new: up to date, and the first snapshot (no run needs it) is removed.
    let (code, again) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["message"], "already up to date");
    let snapshots = app
        .pipelines_dir()
        .parent()
        .map(|d| d.join("data/git/snapshots"));
    let snapshots = snapshots.expect("data dir");
    assert!(!snapshots.join(&first).exists(), "unused snapshot kept");
    assert!(snapshots.join(&second).is_dir());

    // A failed sync (the repository is gone) keeps the previous snapshot serving.
    let moved = repo_dir.path().join("moved");
    std::fs::rename(&repo, &moved).expect("mv");
    let (code, failed) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{failed}");
    assert_eq!(failed["success"], false);
    let detail = failed["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("fetching failed") || detail.contains("repository"),
        "{detail}"
    );
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], second.as_str());
    assert_eq!(status["last_sync_ok"], false);
    let (run, log) = app.run_to_end("added", "{}").await;
    assert_eq!(run["status"], "SUCCESS", "{run}: {log}");
    let (_, logs) = app.get_json("/api/sync/logs?limit=10").await;
    let logs = logs.as_array().cloned().unwrap_or_default();
    assert_eq!(logs.len(), 4, "startup, two manual syncs and the failure");
    assert_eq!(logs[0]["success"], false);
    assert_eq!(logs[3]["trigger"], "startup");

    // After a restart the active snapshot serves at once, before any fetch succeeds.
    app.stop_only().await;
    app.start_again().await;
    let (run, log) = app.run_to_end("hello", "{}").await;
    assert!(log.contains("v2"), "{run}: {log}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_that_fails_serves_nothing_and_says_why() {
    let missing = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}/nothing-here", missing.path().display());
    let app = TestApp::start_with(
        &[("local_only/main.py", "print('local')\n")],
        &[("GIT_REPO_URL", &url)],
    )
    .await;
    let (_, list) = app.get_json("/api/pipelines").await;
    assert_eq!(
        list,
        serde_json::json!([]),
        "PIPELINES_DIR is not served in git mode"
    );
    let status = app.wait_sync_done().await;
    assert_eq!(status["last_sync_ok"], false, "{status}");
    assert!(status["commit"].is_null());
    assert!(status["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    let (code, tested) = app.post_json("/api/sync/repo-config/test", "").await;
    assert_eq!(code, 200);
    assert_eq!(tested["success"], false, "{tested}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_webhook_checks_signatures_and_branches() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    commit_files(&repo, &[("one/main.py", "print(1)\n")], "one");
    let url = format!("file://{}", repo.display());
    let secret = "s3cr3t-webhook";
    let app = TestApp::start_with(
        &[],
        &[("GIT_REPO_URL", &url), ("GIT_WEBHOOK_SECRET", secret)],
    )
    .await;
    let second = commit_files(&repo, &[("two/main.py", "print(2)\n")], "two");
    let client = app.client.clone();
    let post = |body: &str, headers: Vec<(&'static str, String)>| {
        let mut req = client
            .post(app.url("/api/sync/webhook"))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let push_main = r#"{"ref":"refs/heads/main","after":"x"}"#;

    // Unsigned, wrongly signed, a wrong GitLab token: refused, nothing synced.
    for headers in [
        vec![("x-github-event", "push".to_string())],
        vec![
            ("x-github-event", "push".to_string()),
            ("x-hub-signature-256", github_signature("wrong", push_main)),
        ],
        vec![
            ("x-gitlab-token", "nope".to_string()),
            ("x-gitlab-event", "Push Hook".to_string()),
        ],
    ] {
        let resp = post(push_main, headers).await.expect("POST");
        assert_eq!(resp.status().as_u16(), 401);
    }
    let status = app.wait_sync_done().await;
    assert_ne!(status["commit"], second.as_str());

    let ping = r#"{"zen":"Keep it logically awesome."}"#;
    let resp = post(
        ping,
        vec![
            ("x-github-event", "ping".into()),
            ("x-hub-signature-256", github_signature(secret, ping)),
        ],
    )
    .await
    .expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert_eq!(body["message"], "pong");

    let other = r#"{"ref":"refs/heads/feature"}"#;
    let resp = post(
        other,
        vec![
            ("x-github-event", "push".into()),
            ("x-hub-signature-256", github_signature(secret, other)),
        ],
    )
    .await
    .expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.expect("JSON");
    assert!(
        body["ignored"]
            .as_str()
            .is_some_and(|i| i.contains("feature")),
        "{body}"
    );

    // A signed push to the branch syncs (in the background), GitHub's and GitLab's.
    let resp = post(
        push_main,
        vec![
            ("x-github-event", "push".into()),
            ("x-hub-signature-256", github_signature(secret, push_main)),
        ],
    )
    .await
    .expect("POST");
    assert_eq!(resp.status().as_u16(), 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.wait_sync_done().await;
        if status["commit"] == second.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "webhook sync never landed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, logs) = app.get_json("/api/sync/logs").await;
    assert_eq!(logs[0]["trigger"], "webhook", "{logs}");
    assert_eq!(logs[0]["added"], serde_json::json!(["two"]));
    let resp = post(
        push_main,
        vec![
            ("x-gitlab-token", secret.into()),
            ("x-gitlab-event", "Push Hook".into()),
        ],
    )
    .await
    .expect("POST");
    assert_eq!(resp.status().as_u16(), 202);

    // The Sync page and its fragment show the same, without htmx too.
    let (code, page) = app.get_text("/sync").await;
    assert_eq!(code, 200);
    assert!(
        page.contains(&second[..12]) && page.contains("two"),
        "{page}"
    );
    assert!(page.contains("webhook") && page.contains("Sync log"));
    let (code, fragment) = app.get_text("/fragments/sync").await;
    assert_eq!(code, 200);
    assert!(!fragment.contains("<html") && fragment.contains(&second[..12]));
    let (code, log) = app.get_text("/fragments/sync/log").await;
    assert_eq!(code, 200);
    assert!(!log.contains("<html") && log.contains("Sync log") && log.contains("webhook"));
    let no_redirects = reqwest::Client::builder()
        .default_headers(common::auth_headers(&app.token))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = no_redirects
        .post(app.url("/sync"))
        .header("origin", app.url(""))
        .send()
        .await
        .expect("POST");
    assert_eq!(
        resp.status().as_u16(),
        303,
        "a form post without htmx is redirected"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sync_settings_are_stored_and_the_environment_wins() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    commit_files(&repo, &[("one/main.py", "print(1)\n")], "one");
    let url = format!("file://{}", repo.display());
    let mut app = TestApp::start_with(&[], &[("GIT_REPO_URL", &url)]).await;
    let (code, s) = app.get_json("/api/sync/settings").await;
    assert_eq!(code, 200);
    assert_eq!(s["auto_sync_enabled"], false);
    assert_eq!(s["auto_sync_interval"], 900);
    let client = app.client.clone();
    let put = |body: &'static str| {
        client
            .put(app.url("/api/sync/settings"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let resp = put(r#"{"auto_sync_enabled": true, "auto_sync_interval": 120}"#)
        .await
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 200);
    for bad in [
        r#"{"auto_sync_interval": 59}"#,
        r#"{"auto_sync_interval": -5}"#,
        r#"{"every": 60}"#,
    ] {
        let resp = put(bad).await.expect("PUT");
        assert_eq!(resp.status().as_u16(), 400, "{bad}");
    }
    // The Sync page's form does the same (a checkbox left out means off).
    let resp = reqwest::Client::builder()
        .default_headers(common::auth_headers(&app.token))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(app.url("/sync/settings"))
        .form(&[("auto_sync_interval", "300")])
        .send()
        .await
        .expect("POST form");
    assert_eq!(resp.status().as_u16(), 303);
    let (_, s) = app.get_json("/api/sync/settings").await;
    assert_eq!(s["auto_sync_enabled"], false, "{s}");
    assert_eq!(s["auto_sync_interval"], 300);
    let (_, page) = app.get_text("/sync").await;
    assert!(
        page.contains("name=\"auto_sync_interval\"") && page.contains("value=\"300\""),
        "{page}"
    );
    let resp = put(r#"{"auto_sync_enabled": true, "auto_sync_interval": 120}"#)
        .await
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 200);

    // Stored: a restart keeps them.
    app.stop_only().await;
    app.start_again().await;
    let (_, s) = app.get_json("/api/sync/settings").await;
    assert_eq!(s["auto_sync_enabled"], true, "{s}");
    assert_eq!(s["auto_sync_interval"], 120);
    app.stop().await;

    let app = TestApp::start_with(
        &[],
        &[("GIT_REPO_URL", &url), ("AUTO_SYNC_ENABLED", "false")],
    )
    .await;
    let (_, s) = app.get_json("/api/sync/settings").await;
    assert_eq!(
        s["from_environment"],
        serde_json::json!(["auto_sync_enabled"])
    );
    let resp = app
        .client
        .clone()
        .put(app.url("/api/sync/settings"))
        .header("content-type", "application/json")
        .body(r#"{"auto_sync_enabled": true}"#)
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status().as_u16(), 409);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_commits_are_refused_and_the_snapshot_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q"]);
    let good = commit_files(&repo, &[("pipelines/ok/main.py", "print('ok')\n")], "good");
    // A folder of the host with a pipeline in it, which must never be served.
    let outside = dir.path().join("outside");
    common::write_files(&outside, &[("stolen/main.py", "print('host files')\n")]);
    let url = format!("file://{}", repo.display());
    let app = TestApp::start_with(
        &[],
        &[("GIT_REPO_URL", &url), ("PIPELINES_SUBDIR", "pipelines")],
    )
    .await;
    assert_eq!(app.wait_sync_done().await["commit"], good.as_str());

    // PIPELINES_SUBDIR replaced by a symlink to the host folder.
    git(&repo, &["rm", "-r", "-q", "pipelines"]);
    std::os::unix::fs::symlink(&outside, repo.join("pipelines")).expect("symlink");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "escape"]);
    let (code, refused) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("symlink")),
        "{refused}"
    );
    let (_, list) = app.get_json("/api/pipelines").await;
    assert!(!list.to_string().contains("stolen"), "{list}");
    assert_eq!(app.wait_sync_done().await["commit"], good.as_str());

    // A few hundred bytes of trees that name 90 300 folders.
    let empty = git(&repo, &["hash-object", "-t", "tree", "-w", "/dev/null"]);
    let folders_of = |child: &str| -> String {
        (0..300)
            .map(|i| format!("040000 tree {child}\td{i}\n"))
            .collect()
    };
    let level1 = mktree(&repo, &folders_of(&empty));
    let level2 = mktree(&repo, &folders_of(&level1));
    let top = mktree(&repo, &format!("040000 tree {level2}\tpipelines\n"));
    let bomb = git(&repo, &["commit-tree", &top, "-p", "HEAD", "-m", "bomb"]);
    git(&repo, &["update-ref", "refs/heads/main", &bomb]);
    let (code, refused) = app.post_json("/api/sync", "").await;
    // On a loaded machine the refusal can come after the request's wait (202):
    // then the sync's status carries it.
    let reason = match code {
        502 => refused["detail"].as_str().unwrap_or_default().to_string(),
        202 => {
            let status = app.wait_sync_done().await;
            assert_eq!(status["last_sync_ok"], false, "{status}");
            status["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
        other => panic!("{other}: {refused}"),
    };
    assert!(
        reason.contains("more than 50000 files and folders"),
        "{refused} {reason}"
    );
    assert_eq!(app.wait_sync_done().await["commit"], good.as_str());
    let snapshots = std::fs::read_dir(
        app.pipelines_dir()
            .with_file_name("data")
            .join("git/snapshots"),
    )
    .expect("snapshots")
    .count();
    assert_eq!(snapshots, 1, "nothing but the serving snapshot is left");
    app.stop().await;
}

/// `git mktree` of `listing` (its `ls-tree` lines); the new tree's id.
fn mktree(repo: &std::path::Path, listing: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut p = Command::new("git")
        .arg("mktree")
        .current_dir(repo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("git mktree");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(listing.as_bytes())
        .expect("write");
    let out = p.wait_with_output().expect("mktree output");
    assert!(out.status.success(), "git mktree failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
