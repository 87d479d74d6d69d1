//! A long history stays cheap: no list or statistics query reads all of `runs`
//! (checked on the planner's own answer), keyset paging neither skips nor
//! repeats a run while runs are added, and totals and counters stay exact.

mod common;

use std::collections::HashSet;

use chrono::Utc;
use fastflow::db::{self, NewRun, Pool, RunFilter, RunOutcome, query_audit};
use fastflow::run_status::RunStatus;

async fn fresh_db(dir: &tempfile::TempDir) -> Pool {
    let url = format!("sqlite://{}", dir.path().join("history.db").display());
    db::connect(&url).await.expect("open the test database")
}

/// Queues a run that the queue would not start (it is claimed and ended here).
async fn queued(pool: &Pool, pipeline: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    let new = NewRun {
        id: id.clone(),
        pipeline_name: pipeline.into(),
        triggered_by: "manual".into(),
        log_file: format!("{id}.log"),
        attempt: 1,
        not_before: Some(Utc::now() + chrono::Duration::days(1)),
        ..Default::default()
    };
    db::runs::insert(pool, &new).await.expect("insert a run");
    id
}

async fn finished(pool: &Pool, pipeline: &str, status: RunStatus) -> String {
    let id = queued(pool, pipeline).await;
    db::runs::claim(pool, &id)
        .await
        .expect("claim")
        .expect("queued");
    let outcome = RunOutcome {
        status,
        exit_code: Some(i64::from(status != RunStatus::Success)),
        error_type: None,
        error_message: None,
        log_lines: 1,
        log_bytes: 3,
        log_truncated: false,
        ended_at: Some(Utc::now()),
    };
    assert!(db::runs::finish(pool, &id, &outcome).await.expect("finish"));
    id
}

/// Every run of the filter, read page by page with keyset cursors.
async fn all_pages(pool: &Pool, filter: &RunFilter) -> Vec<String> {
    let mut ids = Vec::new();
    let mut filter = filter.clone();
    loop {
        let page = db::run_list::page(pool, &filter).await.expect("page");
        ids.extend(page.runs.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) => filter.after = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn no_list_or_stats_query_reads_all_runs() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fresh_db(&dir).await;
    for i in 0..300 {
        let status = [
            RunStatus::Success,
            RunStatus::Failed,
            RunStatus::Interrupted,
        ][i % 3];
        finished(&pool, &format!("p{}", i % 7), status).await;
    }
    let queries = query_audit::list_and_stats_queries();
    assert!(queries.len() >= 30, "every filter combination is audited");
    let mut problems = Vec::new();
    for q in &queries {
        let steps = query_audit::plan(&pool, &q.sql).await.expect(&q.name);
        assert!(!steps.is_empty(), "{}: no plan", q.name);
        if let Some(step) = query_audit::full_scan_of_runs(&steps, q.ordered_scan_ok) {
            problems.push(format!("{}: `{step}` in {steps:?}\n  {}", q.name, q.sql));
        }
    }
    assert!(
        problems.is_empty(),
        "full scans of runs:\n{}",
        problems.join("\n")
    );

    // The check can fail: the filter style this replaced reads every row.
    let old_style = "SELECT * FROM runs WHERE (?1 IS NULL OR pipeline_name = ?1) AND (?2 IS NULL OR status = ?2)
                     ORDER BY started_at DESC, rowid DESC LIMIT 50";
    let steps = query_audit::plan(&pool, old_style).await.unwrap();
    assert!(
        query_audit::full_scan_of_runs(&steps, false).is_some(),
        "{steps:?}"
    );
    let count_all = query_audit::plan(&pool, "SELECT COUNT(*) FROM runs WHERE status <> 'X'")
        .await
        .unwrap();
    assert!(query_audit::full_scan_of_runs(&count_all, false).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pages_neither_skip_nor_repeat_while_runs_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fresh_db(&dir).await;
    let mut before = Vec::new();
    for i in 0..150 {
        let status = if i % 4 == 0 {
            RunStatus::Failed
        } else {
            RunStatus::Success
        };
        before.push(finished(&pool, ["a", "b"][i % 2], status).await);
    }
    // Runs keep arriving (newer than every page) while the pages are read.
    let writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut added = 0;
            for _ in 0..60 {
                finished(&pool, "a", RunStatus::Success).await;
                added += 1;
                tokio::task::yield_now().await;
            }
            added
        })
    };
    let mut filter = RunFilter {
        limit: 7,
        ..Default::default()
    };
    let first = db::run_list::page(&pool, &filter).await.unwrap();
    let mut seen: Vec<String> = first.runs.iter().map(|r| r.id.clone()).collect();
    filter.after = first.next.clone();
    seen.extend(all_pages(&pool, &filter).await);
    let added = writer.await.unwrap();
    assert_eq!(added, 60);

    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a run was listed twice");
    for id in &before {
        assert!(unique.contains(id), "run {id} was skipped");
    }

    // Newest first, strictly, across all pages; and the totals match the rows.
    let everything = all_pages(
        &pool,
        &RunFilter {
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(everything.len(), 210);
    let total = db::run_list::total(&pool, &RunFilter::default())
        .await
        .unwrap();
    assert_eq!(total, 210);
    let failed = RunFilter {
        status: Some(RunStatus::Failed),
        pipeline_name: Some("a".into()),
        limit: 4,
        ..Default::default()
    };
    let failed_ids = all_pages(&pool, &failed).await;
    assert_eq!(
        failed_ids.len(),
        38,
        "every 4th of the first 150 runs, all in `a`"
    );
    assert_eq!(db::run_list::total(&pool, &failed).await.unwrap(), 38);

    // Walking back with `before` from the last page gives the same pages in reverse.
    let mut forward_pages = Vec::new();
    let mut f = RunFilter {
        limit: 9,
        ..Default::default()
    };
    loop {
        let page = db::run_list::page(&pool, &f).await.unwrap();
        forward_pages.push(page.runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        match page.next {
            Some(n) => f.after = Some(n),
            None => {
                f.after = None;
                f.before = page.previous;
                break;
            }
        }
    }
    let mut backward_pages = vec![forward_pages.last().cloned().unwrap()];
    while f.before.is_some() {
        let page = db::run_list::page(&pool, &f).await.unwrap();
        backward_pages.push(page.runs.iter().map(|r| r.id.clone()).collect());
        f.before = page.previous;
    }
    backward_pages.reverse();
    // The first page read backwards holds the 9 newest runs: the same as forwards
    // whenever 210 is a multiple of 9 or not, because `before` reads the runs just newer.
    assert_eq!(backward_pages.concat(), forward_pages.concat());
}

#[tokio::test]
async fn totals_and_counters_follow_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let pool = fresh_db(&dir).await;
    let ok = finished(&pool, "etl", RunStatus::Success).await;
    finished(&pool, "etl", RunStatus::Failed).await;
    let waiting = queued(&pool, "etl").await;
    let by = |status| RunFilter {
        pipeline_name: Some("etl".into()),
        status: Some(status),
        ..Default::default()
    };
    assert_eq!(
        db::run_list::total(&pool, &by(RunStatus::Pending))
            .await
            .unwrap(),
        1
    );

    // A cancel moves the run between statuses and counts it once, even when the
    // executor's finish follows it.
    db::runs::cancel(&pool, &waiting, "stopped by a test")
        .await
        .unwrap();
    let outcome = RunOutcome {
        status: RunStatus::Success,
        exit_code: Some(0),
        error_type: None,
        error_message: None,
        log_lines: 0,
        log_bytes: 0,
        log_truncated: false,
        ended_at: None,
    };
    assert!(!db::runs::finish(&pool, &waiting, &outcome).await.unwrap());
    assert_eq!(
        db::run_list::total(&pool, &by(RunStatus::Pending))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        db::run_list::total(&pool, &by(RunStatus::Interrupted))
            .await
            .unwrap(),
        1
    );
    let stats = db::run_stats::pipeline_stats_of(&pool, "etl")
        .await
        .unwrap();
    assert_eq!(
        (stats.total_runs, stats.successful_runs, stats.failed_runs),
        (3, 1, 1)
    );
    assert_eq!(stats.last_run_id.as_deref(), Some(waiting.as_str()));
    let all = db::run_stats::pipeline_stats(&pool).await.unwrap();
    assert_eq!(all["etl"].total_runs, 3);
    let daily = db::run_stats::daily_counters(&pool, 1).await.unwrap();
    assert_eq!(daily.iter().map(|d| d.total).sum::<i64>(), 3, "{daily:?}");

    // Retention removes rows: list totals follow, lifetime counters stay.
    db::run_stats::delete_finished(&pool, std::slice::from_ref(&ok))
        .await
        .unwrap();
    assert_eq!(
        db::run_list::total(&pool, &by(RunStatus::Success))
            .await
            .unwrap(),
        0
    );
    let total = RunFilter {
        pipeline_name: Some("etl".into()),
        ..Default::default()
    };
    assert_eq!(db::run_list::total(&pool, &total).await.unwrap(), 2);
    assert_eq!(
        db::run_stats::pipeline_stats_of(&pool, "etl")
            .await
            .unwrap()
            .total_runs,
        3
    );
    db::run_stats::repair_totals(&pool).await.unwrap();
    assert_eq!(db::run_list::total(&pool, &total).await.unwrap(), 2);
    let unknown = db::run_stats::pipeline_stats_of(&pool, "never-ran")
        .await
        .unwrap();
    assert_eq!((unknown.total_runs, unknown.last_run_id), (0, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_pages_page_by_cursor() {
    let app = common::TestApp::start(&[("etl/main.py", "print('hi')\n")]).await;
    let pool = app.state().pool.clone();
    let mut ids = Vec::new();
    for _ in 0..60 {
        ids.push(finished(&pool, "etl", RunStatus::Success).await);
    }
    ids.reverse();

    let (status, first) = app.get_json("/api/runs?limit=25").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["total"], 60);
    assert_eq!(first["page"], 1);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_string();
    let (_, second) = app
        .get_json(&format!("/api/runs?limit=25&cursor={cursor}"))
        .await;
    let (_, third) = app
        .get_json(&format!(
            "/api/runs?limit=25&cursor={}",
            second["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert!(third["next_cursor"].is_null(), "{third}");
    assert!(second["page"].is_null());
    let listed: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["runs"].as_array().unwrap().iter())
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids);
    // The offset contract of Fast-Flow 1.x gives the same rows.
    let (_, by_offset) = app.get_json("/api/runs?limit=25&offset=25").await;
    assert_eq!(by_offset["runs"], second["runs"]);

    for bad in [
        "cursor=nonsense",
        "cursor=%00%01",
        &format!("cursor={cursor}&offset=5"),
    ] {
        let (status, body) = app.get_json(&format!("/api/runs?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("cursor"),
            "{body}"
        );
    }

    // The runs page links older and newer pages by cursor; both links work without htmx.
    let (status, page1) = app.get_text("/runs?pipeline=etl").await;
    assert_eq!(status, 200);
    assert!(
        !page1.contains("← newer"),
        "the first page has no newer page"
    );
    let older = link_after(&page1, "/runs?", "older →");
    let (status, page2) = app.get_text(&older).await;
    assert_eq!(status, 200, "{older}");
    assert!(
        page2.contains(short(&ids[55])),
        "the second page holds runs 51-60: {older}\n{page2}"
    );
    assert!(!page2.contains(short(&ids[0])));
    let newer = link_after(&page2, "/runs?", "← newer");
    let (status, back) = app.get_text(&newer).await;
    assert_eq!(status, 200);
    assert!(back.contains(short(&ids[0])), "back on the newest page");
    let (status, damaged) = app.get_text("/runs?after=zzz").await;
    assert_eq!(status, 400, "{damaged}");
    app.stop().await;
}

/// The `href` of the link whose text is `label` (first `href="{prefix}…"` before it).
fn link_after(html: &str, prefix: &str, label: &str) -> String {
    let at = html
        .find(label)
        .unwrap_or_else(|| panic!("no `{label}` link in {html}"));
    let start = html[..at].rfind(&format!("href=\"{prefix}")).expect("href") + 6;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&").replace("&#38;", "&")
}

/// How the pages show a run id (its last 8 characters).
fn short(id: &str) -> &str {
    &id[id.len() - 8..]
}
