//! Git sync over smart HTTP with a token: a real `git http-backend` behind a
//! small loopback server that demands Basic authentication, as GitHub does.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine;
use common::TestApp;
use common::git_repo::{bare_with_work_tree, push};

#[derive(Clone)]
struct GitServer {
    root: PathBuf,
    /// The token the server accepts now (tests rotate it).
    token: Arc<Mutex<String>>,
}

/// Answers one request through `git http-backend` (CGI), if it carries the token.
async fn serve(
    State(server): State<GitServer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = {
        let token = server.token.lock().map(|t| t.clone()).unwrap_or_default();
        let pair = format!("x-access-token:{token}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Basic realm=\"git\"")
            .body(Body::from("authentication required"))
            .unwrap_or_default();
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let root = server.root.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new("git")
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", &root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", method.as_str())
            .env("PATH_INFO", uri.path())
            .env("QUERY_STRING", uri.query().unwrap_or_default())
            .env("CONTENT_TYPE", content_type)
            .env("CONTENT_LENGTH", body.len().to_string())
            .env("REMOTE_USER", "x-access-token")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, &body)?;
        }
        child.wait_with_output()
    })
    .await;
    let Ok(Ok(output)) = output else {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::empty())
            .unwrap_or_default();
    };
    // CGI: header lines, a blank line, the body.
    let raw = output.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, sep)) = split else {
        return Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::empty())
            .unwrap_or_default();
    };
    let mut response = Response::builder();
    for line in String::from_utf8_lossy(&raw[..end]).lines() {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("status") {
                let code = v.trim().split(' ').next().and_then(|c| c.parse().ok());
                response = response.status(code.unwrap_or(200));
            } else {
                response = response.header(k.trim(), v.trim());
            }
        }
    }
    response
        .body(Body::from(raw[end + sep..].to_vec()))
        .unwrap_or_default()
}

async fn start_git_server(root: &Path, token: &str) -> (String, Arc<Mutex<String>>) {
    let token = Arc::new(Mutex::new(token.to_string()));
    let state = GitServer {
        root: root.to_path_buf(),
        token: token.clone(),
    };
    let app = axum::Router::new().fallback(serve).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_token_sync_and_a_refused_token_keeps_the_snapshot() {
    common::require_docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (repos, work) = bare_with_work_tree(dir.path(), "team.git");
    let first = push(&work, &[("etl/main.py", "print('one')\n")], "one");

    let token = "ghs_test_token_0123456789";
    let (base, accepted) = start_git_server(&repos, token).await;
    let url = format!("{base}/team.git");
    let app = TestApp::start_with(&[], &[("GIT_REPO_URL", &url), ("GIT_SYNC_TOKEN", token)]).await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    assert_eq!(status["repo_url"], url.as_str());
    let (run, log) = app.run_to_end("etl", "{}").await;
    assert!(log.contains("one"), "{run}: {log}");

    let second = push(&work, &[("etl/main.py", "print('two')\n")], "two");
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    assert_eq!(synced["new_commit"], second.as_str());
    assert_eq!(synced["changed"], serde_json::json!(["etl"]));

    // The host now refuses the token: the sync fails clearly, the snapshot stays.
    *accepted.lock().expect("lock") = "rotated".into();
    push(&work, &[("etl/main.py", "print('three')\n")], "three");
    let (code, failed) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{failed}");
    let detail = failed["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("credentials"), "{detail}");
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], second.as_str());
    let (run, log) = app.run_to_end("etl", "{}").await;
    assert!(log.contains("two"), "{run}: {log}");
    let (code, tested) = app.post_json("/api/sync/repo-config/test", "").await;
    assert_eq!(code, 200);
    assert_eq!(tested["success"], false, "{tested}");

    // The token appears nowhere the server shows.
    for path in [
        "/api/sync/status",
        "/api/sync/logs",
        "/sync",
        "/fragments/sync",
    ] {
        let (_, text) = app.get_text(path).await;
        assert!(!text.contains(token), "{path} shows the token");
    }
    assert!(!failed.to_string().contains(token) && !tested.to_string().contains(token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_url_are_used_but_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repos, work) = bare_with_work_tree(dir.path(), "r.git");
    let sha = push(&work, &[("p/main.py", "print(1)\n")], "init");
    let token = "url_embedded_secret_42";
    let (base, _) = start_git_server(&repos, token).await;
    let with_creds = base.replace("http://", &format!("http://x-access-token:{token}@"));
    let app = TestApp::start_with(&[], &[("GIT_REPO_URL", &format!("{with_creds}/r.git"))]).await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], sha.as_str(), "{status}");
    assert_eq!(status["repo_url"], format!("{base}/r.git"));
    for path in ["/api/sync/status", "/api/sync/logs", "/sync"] {
        let (_, text) = app.get_text(path).await;
        assert!(!text.contains(token), "{path} shows the token");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_never_gets_the_token() {
    redirect_gets_no_token("127.0.0.2:0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_port_of_the_same_host_never_gets_the_token() {
    redirect_gets_no_token("127.0.0.1:0").await;
}

/// A remote that redirects to a server bound at `elsewhere_bind`, which asks for
/// credentials: the sync fails and the token never reaches it.
async fn redirect_gets_no_token(elsewhere_bind: &str) {
    // The host a redirect leads to: it asks for credentials and records any it gets.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let catcher = axum::Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
                record.lock().expect("lock").push(auth.to_string());
            }
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Basic realm=\"elsewhere\"")
                .body(Body::empty())
                .unwrap_or_default()
        }
    });
    let listener = tokio::net::TcpListener::bind(elsewhere_bind)
        .await
        .expect("bind the other server");
    let elsewhere = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, catcher).await });
    // The configured remote only redirects there.
    let redirector = axum::Router::new().fallback(move |uri: Uri| async move {
        let target = format!(
            "http://{elsewhere}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        Response::builder()
            .status(StatusCode::FOUND)
            .header("location", target)
            .body(Body::empty())
            .unwrap_or_default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let remote = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, redirector).await });

    let token = "ghp_never_leaves_this_host";
    let url = format!("http://{remote}/team.git");
    let app = TestApp::start_with(&[], &[("GIT_REPO_URL", &url), ("GIT_SYNC_TOKEN", token)]).await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["last_sync_ok"], false, "{status}");
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("another host"), "{error}");
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    let seen = seen.lock().expect("lock").clone();
    assert!(
        !seen.iter().any(|a| a.contains(&encoded)),
        "the token reached the other host: {seen:?}"
    );
    app.stop().await;
}

/// A stand-in of GitHub's installation-token endpoint: checks the app JWT with the
/// app's public key (RS256, issuer = the app id), then issues a token that the git
/// server accepts from then on. `lifetime` is how long each token is said to live.
async fn start_token_endpoint(
    public_pem: String,
    app_id: &'static str,
    installation: &'static str,
    accepted: Arc<Mutex<String>>,
    lifetime: chrono::Duration,
) -> (String, Arc<Mutex<u32>>) {
    let issued = Arc::new(Mutex::new(0u32));
    let count = issued.clone();
    let route = format!("/app/installations/{installation}/access_tokens");
    let app = axum::Router::new().route(
        &route,
        axum::routing::post(move |headers: HeaderMap| {
            let (public_pem, accepted, count) =
                (public_pem.clone(), accepted.clone(), count.clone());
            async move {
                let jwt = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_string();
                let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes())
                    .expect("public key");
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.set_issuer(&[app_id]);
                validation.set_required_spec_claims(&["exp", "iat", "iss"]);
                if jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation).is_err() {
                    return (
                        StatusCode::UNAUTHORIZED,
                        axum::Json(
                            serde_json::json!({"message": "A JSON web token could not be decoded"}),
                        ),
                    );
                }
                let n = {
                    let mut c = count.lock().expect("lock");
                    *c += 1;
                    *c
                };
                let token = format!("ghs_issued_{n}_{}", uuid_like());
                *accepted.lock().expect("lock") = token.clone();
                let expires_at = chrono::Utc::now() + lifetime;
                (
                    StatusCode::CREATED,
                    axum::Json(serde_json::json!({"token": token, "expires_at": expires_at})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), issued)
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn rsa_key_pair(dir: &Path) -> (String, String) {
    let private = dir.join("app.pem");
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .output()
        .expect("openssl runs");
    assert!(public.status.success());
    (
        std::fs::read_to_string(&private).expect("private key"),
        String::from_utf8_lossy(&public.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_app_tokens_are_issued_used_and_renewed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repos, work) = bare_with_work_tree(dir.path(), "app.git");
    let first = push(&work, &[("p/main.py", "print(1)\n")], "one");
    let (private, public) = rsa_key_pair(dir.path());
    let public_again = public.clone();
    // The git server accepts no token until the endpoint issues one.
    let (git_base, accepted) = start_git_server(&repos, "nothing-issued-yet").await;
    // Tokens said to expire in 4 minutes: inside the 5-minute margin, so each use renews.
    let (api, issued) = start_token_endpoint(
        public,
        "4242",
        "77",
        accepted.clone(),
        chrono::Duration::minutes(4),
    )
    .await;
    let url = format!("{git_base}/app.git");
    let app = start_as_github_app(&url, &private, &api).await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    assert_eq!(*issued.lock().expect("lock"), 1);
    let second = push(&work, &[("p/main.py", "print(2)\n")], "two");
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    assert_eq!(synced["new_commit"], second.as_str());
    assert_eq!(
        *issued.lock().expect("lock"),
        2,
        "a token near its expiry is renewed"
    );
    let issued_token = accepted.lock().expect("lock").clone();
    for path in ["/api/sync/status", "/api/sync/logs", "/sync"] {
        let (_, text) = app.get_text(path).await;
        assert!(
            !text.contains(&issued_token),
            "{path} shows the installation token"
        );
    }
    app.stop().await;

    // A long-lived token is reused, not asked for at every sync.
    let (api, issued) = start_token_endpoint(
        public_again,
        "4242",
        "77",
        accepted.clone(),
        chrono::Duration::hours(1),
    )
    .await;
    let app = start_as_github_app(&url, &private, &api).await;
    assert_eq!(app.wait_sync_done().await["last_sync_ok"], true);
    push(&work, &[("p/main.py", "print(3)\n")], "three");
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    assert_eq!(
        *issued.lock().expect("lock"),
        1,
        "the first token still had an hour"
    );
    app.stop().await;

    // Another app's key: the endpoint refuses the JWT, and the sync says so.
    let (api, issued) = start_token_endpoint(
        rsa_key_pair(dir.path()).1,
        "4242",
        "77",
        accepted.clone(),
        chrono::Duration::hours(1),
    )
    .await;
    let app = start_as_github_app(&url, &private, &api).await;
    let status = app.wait_sync_done().await;
    assert_eq!(
        status["last_sync_ok"], false,
        "a key the endpoint does not know: {status}"
    );
    let error = status["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("GitHub refused") && error.contains("401"),
        "{error}"
    );
    assert_eq!(*issued.lock().expect("lock"), 0);
    app.stop().await;
}

/// A server syncing `url` as GitHub App 4242, installation 77, via the token endpoint `api`.
async fn start_as_github_app(url: &str, private_key: &str, api: &str) -> TestApp {
    TestApp::start_with(
        &[],
        &[
            ("GIT_REPO_URL", url),
            ("GITHUB_APP_ID", "4242"),
            ("GITHUB_APP_PRIVATE_KEY", private_key),
            ("GITHUB_APP_INSTALLATION_ID", "77"),
            ("GITHUB_API_URL", api),
        ],
    )
    .await
}

/// Every file under `dir` (the SQLite database, its WAL, logs) as bytes.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_stored_from_the_sync_page_is_encrypted_used_and_never_shown() {
    common::require_docker().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (repos, work) = bare_with_work_tree(dir.path(), "team.git");
    let first = push(&work, &[("etl/main.py", "print('stored')\n")], "one");
    let token = "ghs_stored_token_9876543210";
    let (base, accepted) = start_git_server(&repos, token).await;
    let url = format!("{base}/team.git");
    let app = TestApp::start_with(&[], &[]).await;

    // The Sync page's form, as htmx sends it.
    let client = app.client.clone();
    let form = [
        ("repo_url", url.as_str()),
        ("branch", "main"),
        ("pipelines_subdir", ""),
        ("token", token),
        ("deploy_key", ""),
        ("webhook_secret", ""),
    ];
    let resp = client
        .post(app.url("/sync/repo"))
        .header("HX-Request", "true")
        .form(&form)
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("hx-trigger")
            .and_then(|v| v.to_str().ok()),
        Some("sync-changed")
    );
    let panel = resp.text().await.expect("text");
    assert!(panel.contains("Saved; synced"), "{panel}");
    assert!(panel.contains("set — leave empty to keep it"), "{panel}");
    assert!(!panel.contains(token));
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    let (run, log) = app.run_to_end("etl", "{}").await;
    assert!(log.contains("stored"), "{run}: {log}");
    let (_, shown) = app.get_json("/api/sync/repo-config").await;
    assert_eq!(shown["token_set"], true, "{shown}");
    assert_eq!(shown["credentials"], "token");
    for path in [
        "/api/sync/repo-config",
        "/sync",
        "/api/sync/status",
        "/api/sync/logs",
    ] {
        let (_, text) = app.get_text(path).await;
        assert!(!text.contains(token), "{path} shows the token");
    }

    // Saving again without a token keeps it; the host rotates it and a new one is stored.
    let (code, saved) = app
        .post_json(
            "/api/sync/repo-config",
            &serde_json::json!({"repo_url": url}).to_string(),
        )
        .await;
    assert_eq!(
        (code, &saved["synced"]),
        (200, &serde_json::json!(true)),
        "{saved}"
    );
    *accepted.lock().expect("lock") = "ghs_rotated_token_1111".into();
    push(&work, &[("etl/main.py", "print('rotated')\n")], "two");
    let (code, failed) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{failed}");
    let (code, saved) = app
        .post_json(
            "/api/sync/repo-config",
            &serde_json::json!({"repo_url": url, "token": "ghs_rotated_token_1111"}).to_string(),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(saved["synced"], true, "{saved}");

    // On disk the tokens are Fernet tokens that Python's `cryptography` opens with
    // the server's key; no plaintext anywhere under DATA_DIR.
    let data_dir = app.state().config.data_dir.clone();
    let stored = fastflow::db::git_repo_config::get(&app.state().pool)
        .await
        .expect("read")
        .expect("stored");
    let encrypted = stored.token_encrypted.expect("token stored");
    let mut app = app;
    app.stop_only().await;
    let files = all_bytes(&data_dir);
    assert!(
        files
            .iter()
            .any(|(p, b)| p.ends_with("fastflow.db") && !b.is_empty()),
        "the scan reads the database"
    );
    for (path, bytes) in files {
        for secret in [token, "ghs_rotated_token_1111"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a token in plain text",
                path.display()
            );
        }
    }
    let key = std::fs::read_to_string(data_dir.join("encryption.key")).expect("key file");
    assert_eq!(
        common::python_fernet_decrypt(&key, &encrypted),
        "ghs_rotated_token_1111"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_credentials_never_go_to_a_host_just_typed_in() {
    use axum::http::header;
    let dir = tempfile::tempdir().expect("tempdir");
    let (repos, work) = bare_with_work_tree(dir.path(), "team.git");
    push(&work, &[("etl/main.py", "print(1)\n")], "one");
    let token = "ghs_bound_token_4242";
    let (base, _) = start_git_server(&repos, token).await;
    // Another host (another port is another origin) that asks for credentials and
    // writes down what it gets.
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let record = seen.clone();
    let thief = axum::Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            if let Some(auth) = headers.get(header::AUTHORIZATION) {
                record
                    .lock()
                    .expect("lock")
                    .push(auth.to_str().unwrap_or("?").to_string());
            }
            Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, "Basic realm=\"x\"")
                .body(Body::empty())
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let thief_url = format!("http://{}/steal.git", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, thief).await });

    let app = TestApp::start_with(&[], &[]).await;
    let url = format!("{base}/team.git");
    let body = serde_json::json!({"repo_url": url, "token": token}).to_string();
    let (code, saved) = app.post_json("/api/sync/repo-config", &body).await;
    assert_eq!(
        (code, &saved["synced"]),
        (200, &serde_json::json!(true)),
        "{saved}"
    );
    // Testing, then saving, the other host without typing a token sends none.
    let other = serde_json::json!({"repo_url": thief_url}).to_string();
    let (code, tested) = app.post_json("/api/sync/repo-config/test", &other).await;
    assert_eq!(code, 200);
    assert_eq!(tested["success"], false, "{tested}");
    let (code, saved) = app.post_json("/api/sync/repo-config", &other).await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(
        saved["token_set"], false,
        "the token stayed with its host: {saved}"
    );
    let (code, _) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502);
    let got = seen.lock().expect("lock").clone();
    assert!(got.is_empty(), "credentials went to another host: {got:?}");
    // A token in the environment without GIT_REPO_URL goes nowhere a page can point it.
    let env_only = TestApp::start_with(&[], &[("GIT_SYNC_TOKEN", "ghs_env_only_token")]).await;
    let (code, tested) = env_only
        .post_json("/api/sync/repo-config/test", &other)
        .await;
    assert_eq!(
        (code, &tested["success"]),
        (200, &serde_json::json!(false)),
        "{tested}"
    );
    let (_, saved) = env_only.post_json("/api/sync/repo-config", &other).await;
    assert_eq!(saved["credentials"], "none", "{saved}");
    let got = seen.lock().expect("lock").clone();
    assert!(
        got.is_empty(),
        "the environment's token went to a stored URL: {got:?}"
    );
    env_only.stop().await;
    // Back to the first host: the token has to be typed again.
    let (_, saved) = app
        .post_json(
            "/api/sync/repo-config",
            &serde_json::json!({"repo_url": url}).to_string(),
        )
        .await;
    assert_eq!(saved["synced"], false, "{saved}");
    let (_, saved) = app.post_json("/api/sync/repo-config", &body).await;
    assert_eq!(saved["synced"], true, "{saved}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_stored_from_the_sync_page_fetches_with_its_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repos, work) = bare_with_work_tree(dir.path(), "app.git");
    let first = push(&work, &[("p/main.py", "print('app')\n")], "one");
    let (private, public) = rsa_key_pair(dir.path());
    let (git_base, accepted) = start_git_server(&repos, "nothing-issued-yet").await;
    let (api, issued) = start_token_endpoint(
        public,
        "4242",
        "77",
        accepted,
        chrono::Duration::minutes(60),
    )
    .await;
    // The API URL is the server's setting; the app itself comes from the page.
    let app = TestApp::start_with(&[], &[("GITHUB_API_URL", &api)]).await;
    let body = serde_json::json!({
        "repo_url": format!("{git_base}/app.git"),
        "github_app_id": "4242",
        "github_app_installation_id": "77",
        "github_app_private_key": private,
    });
    let (code, saved) = app
        .post_json("/api/sync/repo-config", &body.to_string())
        .await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(saved["synced"], true, "{saved}");
    assert_eq!(saved["credentials"], "github_app");
    assert_eq!(saved["github_app_private_key_set"], true);
    assert!(!saved.to_string().contains("PRIVATE KEY"), "{saved}");
    assert_eq!(*issued.lock().expect("lock"), 1);
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    let stored = fastflow::db::git_repo_config::get(&app.state().pool)
        .await
        .expect("read")
        .expect("stored");
    let pem = stored.github_app_private_key_encrypted.expect("stored key");
    assert!(!pem.contains("PRIVATE KEY"), "the key is stored encrypted");
    app.stop().await;
}
