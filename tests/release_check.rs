//! The release check against a local stand-in for GitHub's "latest release"
//! endpoint: a newer tag, the same tag, a missing release, a broken answer, a
//! feed that does not answer, the once-a-minute cap on forced checks, and
//! `VERSION_CHECK=false`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use common::TestApp;

/// Serves `/new` (a newer tag), `/same` (this version), `/missing` (404),
/// `/broken` (not JSON) and counts every request.
async fn feed() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let app = Router::new()
        .route(
            "/new",
            get(|| async { r#"{"tag_name": "v99.0.1", "name": "big"}"# }),
        )
        .route(
            "/same",
            get(|| async { format!(r#"{{"tag_name": "v{}"}}"#, env!("CARGO_PKG_VERSION")) }),
        )
        .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "{}") }))
        .route("/broken", get(|| async { "<html>rate limited</html>" }))
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| {
                count.fetch_add(1, Ordering::SeqCst);
                async move { next.run(req).await }
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

async fn version_with(url: &str, force: bool) -> serde_json::Value {
    let app = TestApp::start_with(&[], &[("VERSION_CHECK_URL", url)]).await;
    let path = if force {
        "/api/system/version?force_check=true"
    } else {
        "/api/system/version"
    };
    let (status, body) = app.get_json(path).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_release_is_reported_with_fastflows_fields() {
    let (base, hits) = feed().await;
    let app = TestApp::start_with(&[], &[("VERSION_CHECK_URL", &format!("{base}/new"))]).await;
    let (_, info) = app.get_json("/api/system/version?force_check=true").await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert_eq!(info["latest_version"], "99.0.1", "{info}");
    assert_eq!(info["update_available"], true, "{info}");
    assert!(
        info["last_checked"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{info}"
    );
    assert_eq!(info["check_error"], serde_json::Value::Null, "{info}");
    // The start-up check and the forced one; more forced checks within a minute
    // answer the last result without asking the feed again.
    let asked = hits.load(Ordering::SeqCst);
    assert!((1..=2).contains(&asked), "{asked}");
    for _ in 0..5 {
        let (_, again) = app.get_json("/api/system/version?force_check=true").await;
        assert_eq!(again, info);
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        asked,
        "forced checks are capped"
    );
    // The System page shows both.
    let (_, page) = app.get_text("/system").await;
    assert!(
        page.contains("99.0.1"),
        "the System page names the newer release"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_release_missing_broken_and_unreachable_feeds() {
    let (base, _) = feed().await;
    let same = version_with(&format!("{base}/same"), true).await;
    assert_eq!(same["update_available"], false, "{same}");
    assert_eq!(same["latest_version"], env!("CARGO_PKG_VERSION"), "{same}");

    let missing = version_with(&format!("{base}/missing"), true).await;
    assert_eq!(
        missing["check_error"], "Repository or release not found",
        "{missing}"
    );
    assert_eq!(missing["update_available"], false, "{missing}");

    let broken = version_with(&format!("{base}/broken"), true).await;
    let error = broken["check_error"].as_str().unwrap_or_default();
    assert!(error.contains("did not answer JSON"), "{broken}");

    // A port nobody listens on: the error says so without repeating the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}/releases?token=s3cr3t");
    let down = version_with(&url, true).await;
    let error = down["check_error"].as_str().unwrap_or_default();
    assert!(error.contains("cannot reach the release feed"), "{down}");
    assert!(
        !error.contains("s3cr3t"),
        "the URL stays out of the error: {down}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_check_false_never_asks() {
    let (base, hits) = feed().await;
    let app = TestApp::start_with(
        &[],
        &[
            ("VERSION_CHECK_URL", &format!("{base}/new")),
            ("VERSION_CHECK", "false"),
        ],
    )
    .await;
    let (_, info) = app.get_json("/api/system/version?force_check=true").await;
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert_eq!(info["latest_version"], serde_json::Value::Null, "{info}");
    assert_eq!(info["last_checked"], serde_json::Value::Null, "{info}");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    app.stop().await;
}
