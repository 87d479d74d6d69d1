//! Following `PIPELINES_DIR` by folder: a change rereads only its folder, yet the
//! checks across pipelines (downstream targets) follow every change.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, write_files};
use serde_json::Value;

/// Polls `/api/pipelines/{name}` until `check` holds (the watcher, not a refresh call).
async fn wait_for(app: &TestApp, name: &str, what: &str, check: impl Fn(u16, &Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, p) = app.get_json(&format!("/api/pipelines/{name}")).await;
        if check(status, &p) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {what}; last answer {status} {p}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_changes_are_followed_and_cross_checks_redone() {
    let app = TestApp::start(&[
        ("a/main.py", "print('a')\n"),
        (
            "a/pipeline.json",
            r#"{"downstream_triggers": [{"pipeline": "b"}]}"#,
        ),
        ("b/main.py", "print('b')\n"),
    ])
    .await;
    let (_, a) = app.get_json("/api/pipelines/a").await;
    assert_eq!(a["valid"], true, "{a}");
    let dir = app.pipelines_dir();

    // The target goes away: `a` (not touched on disk) becomes invalid, naming it.
    std::fs::remove_dir_all(dir.join("b")).unwrap();
    wait_for(&app, "b", "removed", |s, _| s == 404).await;
    wait_for(&app, "a", "invalid without its target", |_, p| {
        p["valid"] == false && p.to_string().contains("`b` does not exist")
    })
    .await;

    // It comes back, with metadata: both follow.
    write_files(
        &dir,
        &[
            ("b/main.py", "print('b again')\n"),
            ("b/pipeline.json", r#"{"description": "second life"}"#),
        ],
    );
    wait_for(&app, "b", "back with its description", |s, p| {
        s == 200 && p["description"] == "second life"
    })
    .await;
    wait_for(&app, "a", "valid again", |_, p| p["valid"] == true).await;

    // An edit in one folder among others changes only what it says.
    write_files(&dir, &[("b/pipeline.json", r#"{"description": "edited"}"#)]);
    wait_for(&app, "b", "edited", |_, p| p["description"] == "edited").await;
    let (_, a) = app.get_json("/api/pipelines/a").await;
    assert_eq!(a["valid"], true, "{a}");

    // A folder without main.py is no pipeline; a hidden one is ignored.
    write_files(
        &dir,
        &[
            ("c/README.md", "no code\n"),
            (".hidden/main.py", "print()\n"),
        ],
    );
    write_files(&dir, &[("d/main.py", "print('d')\n")]);
    wait_for(&app, "d", "discovered", |s, _| s == 200).await;
    let (_, list) = app.get_json("/api/pipelines").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b", "d"]);
    let (_, ready) = app.get_json("/ready").await;
    assert!(
        !ready.to_string().contains("still being discovered"),
        "{ready}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pipeline_list_is_one_valid_json_array() {
    let files: Vec<(String, String)> = (0..150)
        .map(|i| (format!("p{i:03}/main.py"), format!("print({i})\n")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let app = TestApp::start(&refs).await;
    let (status, list) = app.get_json("/api/pipelines").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list
        .as_array()
        .expect("an array")
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    let want: Vec<String> = (0..150).map(|i| format!("p{i:03}")).collect();
    assert_eq!(
        names, want,
        "every pipeline once, in name order, across the streamed chunks"
    );
    assert_eq!(list[64]["total_runs"], 0);
    assert!(list[149]["last_run_id"].is_null());
    app.stop().await;
}
