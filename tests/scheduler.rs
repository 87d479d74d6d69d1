//! The scheduler on real SQLite, real pipelines and real containers. Passes are
//! driven with a controlled clock (`Scheduler::pass_at`) with the background
//! scheduler off, except the end-to-end test, which uses the real clock.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::TestApp;
use serde_json::Value;

const QUICK: &str = "print('tick')\n";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn off() -> [(&'static str, &'static str); 1] {
    [("SCHEDULER_ENABLED", "false")]
}

async fn pass(app: &TestApp, now: &str) -> fastflow::scheduler::PassReport {
    app.state().scheduler.pass_at(at(now)).await.expect("pass")
}

/// The single job of a pipeline (or the one with this run configuration).
async fn job_of(app: &TestApp, pipeline: &str, run_config: Option<&str>) -> Value {
    let (status, jobs) = app.get_json("/api/scheduler/jobs").await;
    assert_eq!(status, 200, "{jobs}");
    jobs.as_array()
        .expect("list")
        .iter()
        .find(|j| j["pipeline_name"] == pipeline && j["run_config_id"].as_str() == run_config)
        .unwrap_or_else(|| panic!("no job for {pipeline} {run_config:?} in {jobs}"))
        .clone()
}

async fn slots(app: &TestApp, job: &str) -> Vec<Value> {
    let (status, v) = app
        .get_json(&format!("/api/scheduler/jobs/{job}/slots?limit=1000"))
        .await;
    assert_eq!(status, 200, "{v}");
    v.as_array().expect("slots").clone()
}

fn outcomes(slots: &[Value]) -> Vec<(String, String)> {
    // Oldest first, "HH:MM" and outcome.
    let mut out: Vec<(String, String)> = slots
        .iter()
        .map(|s| {
            let t = s["scheduled_time"].as_str().expect("time");
            (
                t[11..16].to_string(),
                s["outcome"].as_str().expect("outcome").to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

#[tokio::test]
async fn every_slot_fires_once_across_a_restart_and_missed_slots_follow_catchup() {
    let mut app = TestApp::start_with(
        &[
            ("latest/main.py", QUICK),
            // "allow": a run of the previous slot may still be going; overlap has its own test.
            (
                "latest/pipeline.json",
                r#"{"schedule_cron": "* * * * *", "overlap": "allow"}"#,
            ),
            ("none/main.py", QUICK),
            (
                "none/pipeline.json",
                r#"{"schedule_cron": "* * * * *", "catchup": "none", "overlap": "allow"}"#,
            ),
            ("all/main.py", QUICK),
            (
                "all/pipeline.json",
                r#"{"schedule_interval_seconds": 60, "catchup": "all", "overlap": "allow"}"#,
            ),
            ("once/main.py", QUICK),
            (
                "once/pipeline.json",
                r#"{"run_once_at": "2030-01-01T00:00:30Z"}"#,
            ),
        ],
        &off(),
    )
    .await;
    // First sight of the jobs: nothing before this moment is theirs.
    assert_eq!(pass(&app, "2030-01-01T00:00:00Z").await.recorded, 0);
    let first = pass(&app, "2030-01-01T00:01:05Z").await;
    assert_eq!(
        first.started, 4,
        "three minute jobs and the one-off: {first:?}"
    );
    assert_eq!(
        pass(&app, "2030-01-01T00:01:06Z").await.recorded,
        0,
        "nothing twice"
    );
    // Two schedulers at once (as two processes on one database would be): the
    // ledger's key lets each slot fire once.
    let state = app.state();
    let twin = fastflow::scheduler::Scheduler::new(
        state.runner.clone(),
        state.pool.clone(),
        state.registry.clone(),
    );
    let (a, b) = tokio::join!(
        state.scheduler.pass_at(at("2030-01-01T00:02:05Z")),
        twin.pass_at(at("2030-01-01T00:02:05Z"))
    );
    assert_eq!(
        a.expect("pass").started + b.expect("pass").started,
        3,
        "the 00:02 slot of each minute job, once"
    );

    app.stop_only().await;
    app.start_again().await;
    // Down from 00:02:05 to 00:05:10.
    let after = pass(&app, "2030-01-01T00:05:10Z").await;
    assert!(after.started > 0);
    let once = job_of(&app, "once", None).await;
    assert_eq!(once["trigger_type"], "DATE");
    assert_eq!(
        outcomes(&slots(&app, once["id"].as_str().expect("id")).await),
        [("00:00".into(), "started".into())],
        "run_once_at fires once, and never again"
    );
    let latest = job_of(&app, "latest", None).await;
    assert_eq!(
        outcomes(&slots(&app, latest["id"].as_str().expect("id")).await),
        [
            ("00:01".into(), "started".into()),
            ("00:02".into(), "started".into()),
            ("00:03".into(), "missed".into()),
            ("00:04".into(), "missed".into()),
            ("00:05".into(), "started".into()),
        ]
    );
    let none = job_of(&app, "none", None).await;
    let none_slots = slots(&app, none["id"].as_str().expect("id")).await;
    assert!(
        none_slots
            .iter()
            .filter(|s| s["outcome"] == "missed")
            .all(|s| s["reason"]
                .as_str()
                .unwrap_or("")
                .contains("catchup: \"none\"")),
        "{none_slots:?}"
    );
    let all = job_of(&app, "all", None).await;
    let all_slots = slots(&app, all["id"].as_str().expect("id")).await;
    assert_eq!(
        outcomes(&all_slots),
        [
            ("00:01".into(), "started".into()),
            ("00:02".into(), "started".into()),
            ("00:03".into(), "caught_up".into()),
            ("00:04".into(), "caught_up".into()),
            ("00:05".into(), "started".into()),
        ]
    );
    // Each slot that started something points at its run, started by the scheduler.
    for s in all_slots.iter().filter(|s| s["run_id"].is_string()) {
        let (status, run) = app
            .get_json(&format!("/api/runs/{}", s["run_id"].as_str().expect("id")))
            .await;
        assert_eq!(status, 200);
        assert_eq!(run["triggered_by"], "scheduler");
    }
    assert_eq!(all["run_count"], 5);
    app.stop().await;
}

#[tokio::test]
async fn overlap_skip_records_the_skipped_slot_with_its_reason() {
    let app = TestApp::start_with(
        &[
            ("slow/main.py", "import time\ntime.sleep(120)\n"),
            ("slow/pipeline.json", r#"{"schedule_cron": "* * * * *"}"#),
            ("stacked/main.py", "import time\ntime.sleep(120)\n"),
            (
                "stacked/pipeline.json",
                r#"{"schedule_cron": "* * * * *", "overlap": "queue"}"#,
            ),
        ],
        &off(),
    )
    .await;
    pass(&app, "2030-01-01T00:00:00Z").await;
    pass(&app, "2030-01-01T00:01:00Z").await;
    pass(&app, "2030-01-01T00:02:00Z").await;
    let job = job_of(&app, "slow", None).await;
    let got = slots(&app, job["id"].as_str().expect("id")).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["outcome"], "skipped_overlap");
    let first_run = got[1]["run_id"].as_str().expect("first slot's run");
    let reason = got[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains(first_run) && reason.contains("overlap"),
        "{reason}"
    );
    // "queue": the second run is queued, and waits for the first.
    let stacked = job_of(&app, "stacked", None).await;
    let queued = slots(&app, stacked["id"].as_str().expect("id")).await;
    assert!(
        queued.iter().all(|s| s["outcome"] == "started"),
        "{queued:?}"
    );
    let first = queued[1]["run_id"].as_str().expect("run");
    let second = queued[0]["run_id"].as_str().expect("run");
    app.wait_status(first, "RUNNING").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, run) = app.get_json(&format!("/api/runs/{second}")).await;
    assert_eq!(run["status"], "PENDING", "overlap queue waits: {run}");
    app.stop().await;
}

#[tokio::test]
async fn an_override_survives_a_restart_and_a_pipeline_json_change() {
    let mut app = TestApp::start_with(
        &[
            ("p/main.py", QUICK),
            (
                "p/pipeline.json",
                r#"{"schedule_cron": "0 * * * *", "schedule_timezone": "Europe/Berlin"}"#,
            ),
        ],
        &off(),
    )
    .await;
    let job = job_of(&app, "p", None).await;
    let id = job["id"].as_str().expect("id").to_string();
    assert_eq!(job["enabled"], true);
    assert_eq!(job["timezone"], "Europe/Berlin");
    assert_eq!(job["description"], "every hour at :00, Europe/Berlin");
    // No pass has run yet (the background scheduler is off): the override is stored all the same.
    let resp = app
        .client
        .put(app.url(&format!("/api/scheduler/jobs/{id}")))
        .header("content-type", "application/json")
        .body(r#"{"enabled": false}"#)
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    let changed: Value = resp.json().await.expect("json");
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["override_differs"], true);
    // The file changes (another schedule), and the server restarts: the override stays.
    common::write_files(
        &app.pipelines_dir(),
        &[(
            "p/pipeline.json",
            r#"{"schedule_cron": "30 * * * *", "description": "edited"}"#,
        )],
    );
    app.refresh_pipelines().await;
    app.stop_only().await;
    app.start_again().await;
    let job = job_of(&app, "p", None).await;
    assert_eq!(
        job["id"],
        id.as_str(),
        "same pipeline and run configuration: same id"
    );
    assert_eq!(job["trigger_value"], "30 * * * *");
    assert_eq!(job["enabled"], false);
    assert_eq!(job["enabled_override"], false);
    // The trigger changed: its slots count from now; the disabled ones are recorded.
    pass(&app, "2030-01-01T00:10:00Z").await;
    pass(&app, "2030-01-01T00:30:05Z").await;
    let got = slots(&app, &id).await;
    assert_eq!(got[0]["outcome"], "skipped_disabled", "{got:?}");
    assert!(got[0]["reason"].as_str().unwrap_or("").contains("override"));
    // `null` returns the job to the file.
    let resp = app
        .client
        .put(app.url(&format!("/api/scheduler/jobs/{id}")))
        .header("content-type", "application/json")
        .body(r#"{"enabled": null}"#)
        .send()
        .await
        .expect("PUT");
    let back: Value = resp.json().await.expect("json");
    assert_eq!(back["enabled"], true);
    assert_eq!(back["enabled_override"], Value::Null);
    // Bad bodies and unknown jobs are refused clearly.
    let resp = app
        .client
        .put(app.url(&format!("/api/scheduler/jobs/{id}")))
        .header("content-type", "application/json")
        .body(r#"{"enabled": "yes"}"#)
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 400);
    let (status, _) = app.get_json("/api/scheduler/jobs/nope/next-runs").await;
    assert_eq!(status, 404);
    let (status, next) = app
        .get_json(&format!("/api/scheduler/jobs/{id}/next-runs?count=3"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        next["next_runs"].as_array().map(Vec::len),
        Some(3),
        "{next}"
    );
    let (status, _) = app
        .get_json(&format!("/api/scheduler/jobs/{id}/next-runs?count=0"))
        .await;
    assert_eq!(status, 400);
    let (status, page) = app.get_text(&format!("/scheduler/{id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("skipped_disabled") && page.contains("30 * * * *"));
    app.stop().await;
}

#[tokio::test]
async fn restart_interval_replaces_the_running_run() {
    let app = TestApp::start_with(
        &[
            (
                "daemon/main.py",
                "import time\nprint('up', flush=True)\ntime.sleep(300)\n",
            ),
            (
                "daemon/pipeline.json",
                r#"{"timeout": 0, "restart_interval": "0 3 * * *", "restart_cooldown": 1}"#,
            ),
        ],
        &off(),
    )
    .await;
    let old = app.trigger("daemon", "").await;
    app.wait_status(&old, "RUNNING").await;
    pass(&app, "2030-01-01T02:59:00Z").await;
    let report = pass(&app, "2030-01-01T03:00:01Z").await;
    assert_eq!(report.started, 1);
    let old_run = app.wait_finished(&old, Duration::from_secs(60)).await;
    assert_eq!(old_run["status"], "INTERRUPTED");
    assert!(
        old_run["error_message"]
            .as_str()
            .unwrap_or("")
            .contains("restart_interval"),
        "{old_run}"
    );
    let job = job_of(&app, "daemon", None).await;
    assert_eq!(job["kind"], "restart");
    let got = slots(&app, job["id"].as_str().expect("id")).await;
    let new = got[0]["run_id"].as_str().expect("restart run");
    let run = app.wait_status(new, "RUNNING").await;
    assert_eq!(run["triggered_by"], "daemon_restart");
    app.stop().await;
}

#[tokio::test]
async fn a_real_slot_starts_a_real_run_on_the_real_clock() {
    let app = TestApp::start(&[
        ("every2s/main.py", "print('scheduled hello')\n"),
        (
            "every2s/pipeline.json",
            r#"{"schedule_cron": "*/2 * * * * *", "overlap": "allow"}"#,
        ),
    ])
    .await;
    let job = job_of(&app, "every2s", None).await;
    assert_eq!(job["description"], "every 2 seconds");
    let id = job["id"].as_str().expect("id").to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        let got = slots(&app, &id).await;
        if let Some(s) = got.iter().find(|s| s["outcome"] == "started") {
            break s["run_id"].as_str().expect("run").to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no slot fired: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let run = app.wait_finished(&run_id, Duration::from_secs(120)).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["triggered_by"], "scheduler");
    let (_, log) = app.get_text(&format!("/api/runs/{run_id}/logs")).await;
    assert!(log.contains("scheduled hello"), "{log}");
    // The run page says which slot started it.
    let (_, page) = app.get_text(&format!("/runs/{run_id}")).await;
    assert!(
        page.contains(&format!("/scheduler/{id}")),
        "run page links its slot"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_removed_schedule_stops_at_once_and_old_ledger_rows_are_pruned_without_refiring() {
    let app = TestApp::start_with(
        &[
            ("gone/main.py", QUICK),
            (
                "gone/pipeline.json",
                r#"{"schedule_cron": "* * * * *", "overlap": "allow"}"#,
            ),
            ("kept/main.py", QUICK),
            (
                "kept/pipeline.json",
                r#"{"schedule_cron": "* * * * *", "overlap": "allow", "catchup": "none"}"#,
            ),
        ],
        &[("SCHEDULER_ENABLED", "false"), ("LOG_RETENTION_DAYS", "1")],
    )
    .await;
    let gone = job_of(&app, "gone", None).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let kept = job_of(&app, "kept", None).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    pass(&app, "2020-01-01T00:00:00Z").await;
    assert_eq!(pass(&app, "2020-01-01T00:01:01Z").await.started, 2);
    // The schedule leaves pipeline.json: the next pass fires nothing for it.
    common::write_files(&app.pipelines_dir(), &[("gone/pipeline.json", "{}")]);
    app.refresh_pipelines().await;
    let report = pass(&app, "2020-01-01T00:02:01Z").await;
    assert_eq!(report.started, 1, "only `kept` fires: {report:?}");
    assert_eq!(slots(&app, &gone).await.len(), 1);
    let (status, _) = app.get_json(&format!("/api/scheduler/jobs/{gone}")).await;
    assert_eq!(status, 404, "a removed job is no longer listed");
    // Cleanup drops ledger rows older than LOG_RETENTION_DAYS; the cursor stays,
    // so the removed slots never fire again.
    let (status, cleaned) = app.post_json("/api/system/cleanup", "").await;
    assert_eq!(status, 200, "{cleaned}");
    assert_eq!(cleaned["slots_deleted"], 3, "{cleaned}");
    assert!(slots(&app, &kept).await.is_empty());
    let again = pass(&app, "2020-01-01T00:02:30Z").await;
    assert_eq!(again.recorded, 0, "{again:?}");
    // The schedule comes back later: the time it was gone is not caught up.
    common::write_files(
        &app.pipelines_dir(),
        &[(
            "gone/pipeline.json",
            r#"{"schedule_cron": "* * * * *", "overlap": "allow"}"#,
        )],
    );
    app.refresh_pipelines().await;
    pass(&app, "2020-01-01T00:10:30Z").await;
    pass(&app, "2020-01-01T00:11:01Z").await;
    let back = outcomes(&slots(&app, &gone).await);
    assert_eq!(back.last(), Some(&("00:11".into(), "started".into())));
    assert!(
        back.iter().all(|(_, o)| o != "missed" && o != "caught_up"),
        "{back:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_long_queue_of_one_job_does_not_hold_up_other_pipelines() {
    let app = TestApp::start_with(
        &[
            ("backlog/main.py", "import time\ntime.sleep(120)\n"),
            (
                "backlog/pipeline.json",
                r#"{"schedule_cron": "* * * * *", "overlap": "queue", "catchup": "all"}"#,
            ),
            ("other/main.py", "print('not stuck')\n"),
        ],
        &off(),
    )
    .await;
    pass(&app, "2030-01-01T00:00:00Z").await;
    // Ten hours down: 600 slots, each a queued run waiting for the one before it.
    let report = pass(&app, "2030-01-01T10:00:30Z").await;
    assert_eq!(report.started, 600, "{report:?}");
    let other = app.trigger("other", "").await;
    let run = app.wait_finished(&other, Duration::from_secs(120)).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    app.stop().await;
}
