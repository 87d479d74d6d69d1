//! `fastflow backup` while real runs start, log and finish, then `fastflow
//! restore`: into a fresh DATA_DIR (every run finished before the backup is
//! there with its log, byte for byte) and over the live one with `--force` (the
//! runs made after the backup are gone, the replaced database kept aside). The
//! refusals: a running server, an existing database without `--force`, a
//! non-empty target, a backup without its manifest.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_fastflow");

fn fastflow(args: &[&str], data_dir: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .output()
        .expect("run fastflow")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn finished_ids(app: &TestApp) -> Vec<String> {
    let (_, runs) = app.get_json("/api/runs?limit=500").await;
    runs["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("{runs}"))
        .iter()
        .filter(|r| r["finished_at"].is_string())
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_finished_run_and_its_log() {
    let chatty = "import os, time\nfor i in range(200):\n    print(os.environ['FASTFLOW_RUN_ID'], i)\n    time.sleep(0.005)\n";
    let mut app = TestApp::start_with(
        &[("chatty/main.py", chatty)],
        &[("MAX_CONCURRENT_RUNS", "3")],
    )
    .await;
    let data = app.dir.path().join("data");
    let first: Vec<String> =
        futures_util::future::join_all((0..4).map(|_| app.trigger("chatty", ""))).await;
    for id in &first {
        app.wait_finished(id, Duration::from_secs(120)).await;
    }
    // Under load: more runs queue, start and write their logs while the backup runs.
    let during: Vec<String> =
        futures_util::future::join_all((0..6).map(|_| app.trigger("chatty", ""))).await;
    let before = finished_ids(&app).await;
    assert!(before.len() >= 4, "{before:?}");
    let backup = tempfile::tempdir().unwrap();
    let target = backup.path().join("bk");
    let data_for_backup = data.clone();
    let target_for_backup = target.clone();
    let out = tokio::task::spawn_blocking(move || {
        fastflow(
            &["backup", target_for_backup.to_str().unwrap()],
            &data_for_backup,
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backup written to"), "{}", text(&out));
    for id in &during {
        app.wait_finished(id, Duration::from_secs(120)).await;
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(target.join("backup.json")).unwrap()).unwrap();
    assert!(manifest["runs"].as_i64().unwrap() >= 4, "{manifest}");
    assert_eq!(
        manifest["includes_encryption_key"], true,
        "the generated key is kept: {manifest}"
    );

    // A server runs on this DATA_DIR: restore refuses.
    let out = fastflow(&["restore", target.to_str().unwrap(), "--force"], &data);
    assert!(!out.status.success());
    assert!(text(&out).contains("server is running"), "{}", text(&out));
    // The target of a backup must be new or empty.
    let out = fastflow(&["backup", target.to_str().unwrap()], &data);
    assert!(
        !out.status.success() && text(&out).contains("is not empty"),
        "{}",
        text(&out)
    );

    // Into a fresh DATA_DIR.
    let fresh = tempfile::tempdir().unwrap();
    let out = fastflow(&["restore", target.to_str().unwrap()], fresh.path());
    assert!(out.status.success(), "{}", text(&out));
    let pool = fastflow::db::connect(&format!(
        "sqlite://{}",
        fresh.path().join("fastflow.db").display()
    ))
    .await
    .unwrap();
    for id in &before {
        let run = fastflow::db::runs::get(&pool, id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("run {id} restored"));
        assert!(run.finished_at.is_some(), "{id} finished");
        let original = std::fs::read(data.join("logs").join(format!("{id}.log"))).unwrap();
        let restored = std::fs::read(fresh.path().join("logs").join(format!("{id}.log")))
            .unwrap_or_else(|e| panic!("log of {id}: {e}"));
        assert_eq!(restored, original, "the log of {id}");
        assert_eq!(
            String::from_utf8_lossy(&restored).lines().count(),
            200,
            "{id}"
        );
    }
    // Any run the snapshot holds as finished has its whole log in the backup.
    let filter = fastflow::db::run_list::RunFilter {
        limit: 500,
        ..Default::default()
    };
    for run in fastflow::db::run_list::page(&pool, &filter)
        .await
        .unwrap()
        .runs
    {
        if run.finished_at.is_some() {
            let log =
                std::fs::read_to_string(fresh.path().join("logs").join(format!("{}.log", run.id)))
                    .unwrap();
            assert_eq!(log.lines().count() as i64, run.log_lines, "{}", run.id);
        }
    }
    pool.close().await;
    assert_eq!(
        std::fs::read(fresh.path().join("encryption.key")).unwrap(),
        std::fs::read(data.join("encryption.key")).unwrap()
    );

    // Over the live DATA_DIR: a run made after the backup disappears.
    let later = app.trigger("chatty", "").await;
    app.wait_finished(&later, Duration::from_secs(120)).await;
    app.stop_only().await;
    let out = fastflow(&["restore", target.to_str().unwrap()], &data);
    assert!(
        !out.status.success() && text(&out).contains("--force"),
        "{}",
        text(&out)
    );
    let out = fastflow(&["restore", target.to_str().unwrap(), "--force"], &data);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("before-restore-"), "{}", text(&out));
    app.start_again().await;
    let (status, _) = app.get_json(&format!("/api/runs/{later}")).await;
    assert_eq!(status, 404, "the run made after the backup is not in it");
    for id in &before {
        let (status, run) = app.get_json(&format!("/api/runs/{id}")).await;
        assert_eq!(status, 200, "{id}");
        assert!(run["finished_at"].is_string(), "{run}");
        let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
        assert_eq!(common::log_texts(&log).len(), 200, "{id}");
    }
    app.stop().await;
}

#[test]
fn a_backup_without_its_manifest_is_refused() {
    let partial = tempfile::tempdir().unwrap();
    std::fs::write(partial.path().join("fastflow.db"), b"not a database").unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = fastflow(&["restore", partial.path().to_str().unwrap()], data.path());
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not a complete backup"),
        "{}",
        text(&out)
    );
    assert!(
        !data.path().join("fastflow.db").exists(),
        "nothing was put in place"
    );
}

#[test]
fn a_damaged_backup_database_is_refused_and_nothing_replaced() {
    let bk = tempfile::tempdir().unwrap();
    std::fs::write(bk.path().join("fastflow.db"), vec![0x55u8; 64 * 1024]).unwrap();
    std::fs::write(
        bk.path().join("backup.json"),
        r#"{"fastflow_version":"0.1.0","created_at":"2026-12-06T00:00:00Z","runs":1,"finished_runs":1,"database_bytes":65536,"log_files":0,"log_bytes":0,"includes_encryption_key":false}"#,
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = fastflow(&["restore", bk.path().to_str().unwrap()], data.path());
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("cannot be opened") || text(&out).contains("damaged"),
        "{}",
        text(&out)
    );
    assert!(
        !data.path().join("fastflow.db").exists(),
        "nothing was put in place"
    );
}
