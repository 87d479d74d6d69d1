//! The repository configured from the Sync page / `POST /api/sync/repo-config`
//! while the server runs: switching from PIPELINES_DIR to a repository and back,
//! the stored webhook secret, a failing new configuration that keeps the old
//! pipelines serving, restart, the environment winning, and refused input.

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use common::git_repo::{commit_files, git, github_signature};
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn pipeline_names(app: &TestApp) -> Vec<String> {
    names(&app.get_json("/api/pipelines").await.1)
}

async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    let resp = app
        .client
        .clone()
        .delete(app.url(path))
        .send()
        .await
        .expect("DELETE");
    let code = resp.status().as_u16();
    (code, resp.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_repository_takes_over_at_once_and_hands_back() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    let first = commit_files(
        &repo,
        &[("pipelines/from_git/main.py", "print('from git')\n")],
        "first",
    );
    let url = format!("file://{}", repo.display());
    let mut app = TestApp::start_with(&[("local_one/main.py", "print('local')\n")], &[]).await;
    assert_eq!(pipeline_names(&app).await, ["local_one"]);
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    assert_eq!(shown["configured"], false, "{shown}");
    assert_eq!(shown["stored"], false);

    let secret = "whsec_stored_0123456789";
    let body = json!({"repo_url": url, "branch": "main", "pipelines_subdir": "pipelines", "webhook_secret": secret});
    let (code, saved) = app
        .post_json("/api/sync/repo-config", &body.to_string())
        .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["synced"], true, "{saved}");
    assert_eq!(saved["configured"], true);
    assert_eq!(saved["stored"], true);
    assert_eq!(saved["webhook_secret_set"], true);
    assert_eq!(saved["credentials"], "none");
    assert!(!saved.to_string().contains(secret), "{saved}");
    assert_eq!(pipeline_names(&app).await, ["from_git"]);
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    let (run, log) = app.run_to_end("from_git", "{}").await;
    assert!(log.contains("from git"), "{run}: {log}");
    assert_eq!(run["git_sha"], first.as_str());

    // The stored webhook secret verifies pushes.
    let second = commit_files(
        &repo,
        &[("pipelines/second/main.py", "print(2)\n")],
        "second",
    );
    let push = r#"{"ref":"refs/heads/main"}"#;
    let client = app.client.clone();
    let send = |signature: String| {
        client
            .post(app.url("/api/sync/webhook"))
            .header("x-github-event", "push")
            .header("x-hub-signature-256", signature)
            .body(push)
            .send()
    };
    let refused = send(github_signature("wrong", push)).await.expect("POST");
    assert_eq!(refused.status().as_u16(), 401);
    let accepted = send(github_signature(secret, push)).await.expect("POST");
    assert_eq!(accepted.status().as_u16(), 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pipeline_names(&app).await != ["from_git", "second"] {
        assert!(Instant::now() < deadline, "the webhook's sync never came");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.wait_sync_done().await["commit"], second.as_str());

    // A new configuration that cannot be fetched: stored, its error shown, and the
    // previous pipelines keep serving.
    let missing = format!("file://{}/missing", repo.display());
    let (code, saved) = app
        .post_json(
            "/api/sync/repo-config",
            &json!({"repo_url": missing}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["synced"], false, "{saved}");
    assert!(
        saved["message"]
            .as_str()
            .is_some_and(|m| m.contains("keep serving")),
        "{saved}"
    );
    assert_eq!(pipeline_names(&app).await, ["from_git", "second"]);
    let (_, status) = app.get_json("/api/sync/status").await;
    assert_eq!(status["last_sync_ok"], false, "{status}");
    assert!(status["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    // What serves is still shown: the previous configuration's commit.
    assert_eq!(status["commit"], second.as_str(), "{status}");
    assert_eq!(status["from_previous_configuration"], true, "{status}");
    let (_, page) = app.get_text("/sync").await;
    assert!(page.contains("from the previous configuration"), "{page}");
    // The secret was kept (left out of the change).
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    assert_eq!(shown["webhook_secret_set"], true, "{shown}");
    // A restart before the new configuration has synced: the same pipelines serve.
    app.stop_only().await;
    app.start_again().await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], second.as_str(), "{status}");
    assert_eq!(status["from_previous_configuration"], true, "{status}");
    assert_eq!(pipeline_names(&app).await, ["from_git", "second"]);

    // Back to the good repository; a restart serves it from the stored configuration.
    let (code, saved) = app
        .post_json("/api/sync/repo-config", &body.to_string())
        .await;
    assert_eq!((code, &saved["synced"]), (200, &json!(true)), "{saved}");
    app.stop_only().await;
    app.start_again().await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], second.as_str(), "{status}");
    assert_eq!(pipeline_names(&app).await, ["from_git", "second"]);

    // Removed: PIPELINES_DIR serves again, and is watched again.
    let (code, removed) = delete(&app, "/api/sync/repo-config").await;
    assert_eq!(code, 200, "{removed}");
    assert!(
        removed["message"]
            .as_str()
            .is_some_and(|m| m.contains("PIPELINES_DIR")),
        "{removed}"
    );
    assert_eq!(removed["configured"], false);
    assert_eq!(pipeline_names(&app).await, ["local_one"]);
    common::write_files(&app.pipelines_dir(), &[("local_two/main.py", "print(2)\n")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pipeline_names(&app).await != ["local_one", "local_two"] {
        assert!(
            Instant::now() < deadline,
            "PIPELINES_DIR is not watched again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, _) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 400, "no repository: nothing to sync");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused_with_the_field_and_store_nothing() {
    let app = TestApp::start_with(&[("local_one/main.py", "print(1)\n")], &[]).await;
    let passphrase_key = {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success());
        std::fs::read_to_string(&path).expect("key")
    };
    let cases = [
        (
            json!({"repo_url": "https://user:ghp_inline_secret@github.com/o/r.git"}),
            "token field",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "pipelines_subdir": "../etc"}),
            "Pipelines folder",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "pipelines_subdir": "/abs/path"}),
            "not starting with /",
        ),
        (
            json!({"repo_url": "ftp://example.com/r.git"}),
            "must start with",
        ),
        (json!({"branch": "main"}), "Repository URL) is required"),
        (
            json!({"repo_url": "https://github.com/o/r.git", "branch": "bad..name"}),
            "not a valid branch",
        ),
        (
            json!({"repo_url": "git@github.com:o/r.git", "deploy_key": "ssh-ed25519 AAAA public"}),
            "not a public key",
        ),
        (
            json!({"repo_url": "git@github.com:o/r.git", "deploy_key": passphrase_key}),
            "passphrase",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "token": "t", "github_app_id": "1"}),
            "one kind",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "github_app_id": "1", "github_app_installation_id": "2"}),
            "github_app_private_key",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "github_app_id": "1", "github_app_installation_id": "2", "github_app_private_key": "not a pem"}),
            "GITHUB_APP_PRIVATE_KEY",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "surprise": 1}),
            "unknown field",
        ),
        (
            json!({"repo_url": "https://github.com/o/r.git", "token": "a\u{0}b"}),
            "control characters",
        ),
        (
            json!({"repo_url": format!("https://github.com/{}", "a".repeat(3000))}),
            "2048",
        ),
    ];
    for (body, expected) in cases {
        let (code, refused) = app
            .post_json("/api/sync/repo-config", &body.to_string())
            .await;
        assert_eq!(code, 400, "{body}: {refused}");
        let detail = refused["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(expected), "{body}: {detail}");
        assert!(!detail.contains("ghp_inline_secret") && !detail.contains("PRIVATE KEY"));
    }
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    assert_eq!(shown["stored"], false, "{shown}");
    assert_eq!(pipeline_names(&app).await, ["local_one"]);

    // A deploy key can only be generated for an SSH URL.
    let (code, refused) = app
        .post_json(
            "/api/sync/repo-config/generate-deploy-key",
            r#"{"repo_url": "https://github.com/o/r.git"}"#,
        )
        .await;
    assert_eq!(code, 400, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SSH"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_wins_and_is_not_overwritten() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    commit_files(&repo, &[("job/main.py", "print(1)\n")], "one");
    let url = format!("file://{}", repo.display());
    let app = TestApp::start_with(
        &[],
        &[
            ("GIT_REPO_URL", &url),
            ("GIT_WEBHOOK_SECRET", "from-env-secret"),
        ],
    )
    .await;
    app.wait_sync_done().await;
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    assert_eq!(
        shown["from_environment"],
        json!(["repo_url", "webhook_secret"]),
        "{shown}"
    );
    for (body, field) in [
        (
            json!({"repo_url": "https://github.com/o/other.git"}),
            "GIT_REPO_URL",
        ),
        (json!({"webhook_secret": "another"}), "GIT_WEBHOOK_SECRET"),
    ] {
        let (code, refused) = app
            .post_json("/api/sync/repo-config", &body.to_string())
            .await;
        assert_eq!(code, 409, "{body}: {refused}");
        assert!(
            refused["detail"]
                .as_str()
                .is_some_and(|d| d.contains(field))
        );
    }
    // What the environment leaves open can be stored (the URL may be left out).
    let (code, saved) = app
        .post_json("/api/sync/repo-config", r#"{"branch": "main"}"#)
        .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["repo_url"], url.as_str());
    assert_eq!(saved["stored"], true);
    let (code, removed) = delete(&app, "/api/sync/repo-config").await;
    assert_eq!(code, 200);
    assert!(
        removed["message"]
            .as_str()
            .is_some_and(|m| m.contains("environment")),
        "{removed}"
    );
    assert_eq!(pipeline_names(&app).await, ["job"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_encryption_key_keeps_serving_and_asks_for_the_credentials_again() {
    let repo_dir = tempfile::tempdir().expect("tempdir");
    let repo = repo_dir.path().to_path_buf();
    git(&repo, &["init", "-q"]);
    let first = commit_files(&repo, &[("job/main.py", "print(1)\n")], "one");
    let url = format!("file://{}", repo.display());
    let mut app = TestApp::start_with(&[], &[]).await;
    let body =
        json!({"repo_url": url, "token": "tok_before_rotation", "webhook_secret": "hook_before"});
    let (code, saved) = app
        .post_json("/api/sync/repo-config", &body.to_string())
        .await;
    assert_eq!((code, &saved["synced"]), (200, &json!(true)), "{saved}");
    let key_file = app.state().config.data_dir.join("encryption.key");
    app.stop_only().await;
    std::fs::write(&key_file, format!("{}\n", fernet::Fernet::generate_key())).expect("new key");

    app.start_again().await;
    let status = app.wait_sync_done().await;
    assert_eq!(
        status["commit"],
        first.as_str(),
        "the last snapshot serves: {status}"
    );
    assert_eq!(pipeline_names(&app).await, ["job"]);
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    let error = shown["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("ENCRYPTION_KEY")
            && error.contains("token")
            && error.contains("webhook_secret"),
        "{shown}"
    );
    assert_eq!(shown["token_set"], false);
    let (_, page) = app.get_text("/sync").await;
    assert!(
        page.contains("cannot be decrypted"),
        "the Sync page says so"
    );
    // Saving again stores what is entered and drops what cannot be read.
    let (code, saved) = app
        .post_json(
            "/api/sync/repo-config",
            &json!({"repo_url": url, "webhook_secret": "hook_after"}).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{saved}");
    assert!(saved["error"].is_null(), "{saved}");
    assert_eq!(saved["webhook_secret_set"], true);
    assert_eq!(saved["token_set"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_form_keeps_what_was_typed_and_works_without_htmx() {
    let app = TestApp::start_with(&[("local_one/main.py", "print(1)\n")], &[]).await;
    let client = app.client.clone();
    let form = [
        ("repo_url", "https://example.invalid/acme/pipes.git"),
        ("branch", "trunk"),
        ("pipelines_subdir", "../etc"),
        ("token", "tok_typed_secret"),
    ];
    let post = |path: &'static str, htmx: bool| {
        let mut req = client.post(app.url(path)).form(&form);
        if htmx {
            req = req.header("HX-Request", "true");
        }
        req.send()
    };
    // Refused under htmx: the panel with the error and the typed fields (never the token).
    let resp = post("/sync/repo", true).await.expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    let panel = resp.text().await.expect("text");
    assert!(
        panel.contains("Nothing was saved") && panel.contains("Pipelines folder"),
        "{panel}"
    );
    assert!(panel.contains("https://example.invalid/acme/pipes.git") && panel.contains("trunk"));
    assert!(panel.contains("../etc") && !panel.contains("tok_typed_secret"));
    // Without htmx: the whole page with the same message, not a redirect that loses it.
    let resp = post("/sync/repo", false).await.expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    let page = resp.text().await.expect("text");
    assert!(
        page.contains("<html") && page.contains("Nothing was saved"),
        "{page}"
    );
    // A button of a repository that is not (or no longer) configured answers in the page.
    let resp = client
        .post(app.url("/sync"))
        .header("HX-Request", "true")
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    let fragment = resp.text().await.expect("text");
    assert!(
        fragment.contains("No repository is configured"),
        "{fragment}"
    );
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    assert_eq!(shown["stored"], false, "{shown}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_branch_fails_instead_of_serving_a_stale_tip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, c) = (dir.path().join("a"), dir.path().join("c"));
    for repo in [&a, &c] {
        std::fs::create_dir_all(repo).expect("mkdir");
        git(repo, &["init", "-q"]);
    }
    commit_files(&a, &[("job/main.py", "print('a')\n")], "in a");
    commit_files(&c, &[("other/main.py", "print('c')\n")], "in c");
    git(&c, &["branch", "-m", "main", "dev"]);
    git(&a, &["branch", "rel"]);
    let app = TestApp::start_with(&[], &[]).await;
    let save = |url: &std::path::Path, branch: &str| {
        json!({"repo_url": format!("file://{}", url.display()), "branch": branch}).to_string()
    };
    let (_, saved) = app
        .post_json("/api/sync/repo-config", &save(&a, "main"))
        .await;
    assert_eq!(saved["synced"], true, "{saved}");
    // Another repository without `main`: refused, never a tip left from the first.
    let (_, saved) = app
        .post_json("/api/sync/repo-config", &save(&c, "main"))
        .await;
    assert_eq!(saved["synced"], false, "{saved}");
    let message = saved["message"].as_str().unwrap_or_default();
    assert!(message.contains("branch `main` was not found"), "{message}");
    // The same repository loses the branch: the next sync says so.
    let (_, saved) = app
        .post_json("/api/sync/repo-config", &save(&a, "rel"))
        .await;
    assert_eq!(saved["synced"], true, "{saved}");
    git(&a, &["branch", "-D", "rel"]);
    let (code, failed) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{failed}");
    // A branch `rel` followed by `rel/1`: no clash in the mirror.
    git(&a, &["branch", "rel/1"]);
    let (_, saved) = app
        .post_json("/api/sync/repo-config", &save(&a, "rel/1"))
        .await;
    assert_eq!(saved["synced"], true, "{saved}");
    assert_eq!(pipeline_names(&app).await, ["job"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_dir_keeps_serving_and_is_watched_until_a_stored_repository_syncs() {
    let mut app = TestApp::start_with(
        &[(
            "local_one/main.py",
            "import time\ntime.sleep(8)\nprint('done')\n",
        )],
        &[],
    )
    .await;
    let run = app.trigger("local_one", "{}").await;
    app.wait_status(&run, "RUNNING").await;
    let missing = tempfile::tempdir().expect("tempdir");
    let body = json!({"repo_url": format!("file://{}/none", missing.path().display())});
    let (_, saved) = app
        .post_json("/api/sync/repo-config", &body.to_string())
        .await;
    assert_eq!(saved["synced"], false, "{saved}");
    let (_, status) = app.get_json("/api/sync/status").await;
    assert_eq!(status["from_previous_configuration"], true, "{status}");
    // Still watched: a new folder appears by itself.
    common::write_files(&app.pipelines_dir(), &[("local_two/main.py", "print(2)\n")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pipeline_names(&app).await != ["local_one", "local_two"] {
        assert!(
            Instant::now() < deadline,
            "PIPELINES_DIR is no longer watched"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A restart meanwhile: PIPELINES_DIR still serves and the running run goes on.
    app.stop_only().await;
    app.start_again().await;
    assert_eq!(pipeline_names(&app).await, ["local_one", "local_two"]);
    let (_, status) = app.get_json("/api/sync/status").await;
    assert_eq!(status["from_previous_configuration"], true, "{status}");
    let finished = app.wait_finished(&run, Duration::from_secs(60)).await;
    assert_eq!(finished["status"], "SUCCESS", "{finished}");
    app.stop().await;
}
