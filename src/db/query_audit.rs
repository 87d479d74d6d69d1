//! The list and statistics queries, named, with how the planner answers them:
//! a test fails when one of them would read the whole `runs` table, so the
//! pages stay as fast with a million runs as with a hundred (no timing needed).

use super::run_list::{RunCursor, RunFilter, capped_total_sql, page_sql, total_sql};
use super::{DbError, Pool, dashboard, run_attempts, run_stats, runs};
use crate::run_status::{ErrorType, RunStatus};

/// A query to audit.
pub struct AuditedQuery {
    pub name: String,
    pub sql: String,
    /// Walking an index of `runs` is fine here: in list order when the query
    /// stops after a page (an unfiltered `ORDER BY … LIMIT`), or a partial index
    /// that holds only the rows the query counts.
    pub ordered_scan_ok: bool,
}

/// Every list and statistics query the pages and the API run, for each filter combination.
pub fn list_and_stats_queries() -> Vec<AuditedQuery> {
    let cursor = RunCursor::decode(&RunCursor::example().encode());
    let mut out = Vec::new();
    let mut add = |name: String, sql: String, ordered_scan_ok: bool| {
        out.push(AuditedQuery {
            name,
            sql,
            ordered_scan_ok,
        })
    };
    for pipeline in [None, Some("p".to_string())] {
        for status in [None, Some(RunStatus::Failed)] {
            let unfiltered = pipeline.is_none() && status.is_none();
            let base = RunFilter {
                pipeline_name: pipeline.clone(),
                status,
                limit: 50,
                ..Default::default()
            };
            let label = format!(
                "pipeline={} status={}",
                pipeline.is_some(),
                status.is_some()
            );
            let modes = [
                ("first page", base.clone()),
                (
                    "offset",
                    RunFilter {
                        offset: 100,
                        ..base.clone()
                    },
                ),
                (
                    "after cursor",
                    RunFilter {
                        after: cursor.clone(),
                        ..base.clone()
                    },
                ),
                (
                    "before cursor",
                    RunFilter {
                        before: cursor.clone(),
                        ..base.clone()
                    },
                ),
            ];
            for (mode, filter) in modes {
                add(
                    format!("run list, {label}, {mode}"),
                    page_sql(&filter),
                    unfiltered,
                );
            }
            add(format!("run total, {label}"), total_sql(&base), false);
        }
    }
    // The filters only `runs` keeps: each reads its own index range.
    for pipeline in [None, Some("p".to_string())] {
        let narrowings = [
            (
                "trigger",
                RunFilter {
                    trigger: Some("scheduler".into()),
                    ..Default::default()
                },
            ),
            (
                "error type",
                RunFilter {
                    error_type: Some(ErrorType::Oom),
                    ..Default::default()
                },
            ),
        ];
        for (what, narrowing) in narrowings {
            let filter = RunFilter {
                pipeline_name: pipeline.clone(),
                limit: 50,
                ..narrowing
            };
            let label = format!("{what}, pipeline={}", pipeline.is_some());
            add(format!("run list, {label}"), page_sql(&filter), false);
            let after = RunFilter {
                after: cursor.clone(),
                ..filter.clone()
            };
            add(
                format!("run list, {label}, after cursor"),
                page_sql(&after),
                false,
            );
            add(
                format!("run count, {label}"),
                capped_total_sql(&filter),
                false,
            );
        }
    }
    add(
        "runs list: later attempts of a page".into(),
        run_attempts::later_attempts_sql(3),
        false,
    );
    // Walks the partial index `runs_retries`, which holds only the retries counted.
    add(
        "runs list: retries count".into(),
        run_attempts::LATER_ATTEMPTS_COUNT_SQL.into(),
        true,
    );
    for (name, sql) in [
        ("dashboard: statuses since", dashboard::STATUSES_SINCE_SQL),
        ("dashboard: recent failures", dashboard::RECENT_FAILURES_SQL),
        ("dashboard: last outcomes", dashboard::LAST_OUTCOMES_SQL),
    ] {
        add(name.into(), sql.into(), false);
    }
    let stats = |head: &str| format!("{head} {}", run_stats::STATS_SQL);
    add(
        "pipeline stats, all".into(),
        stats(run_stats::ALL_STATS_SQL),
        false,
    );
    add(
        "pipeline stats, one".into(),
        stats(run_stats::ONE_STATS_SQL),
        false,
    );
    add(
        "pipeline stats, a page of names".into(),
        stats(&run_stats::some_stats_sql(3)),
        false,
    );
    add("daily counters".into(), run_stats::DAILY_SQL.into(), false);
    add(
        "retention by age".into(),
        run_stats::EXPIRED_BY_AGE_SQL.into(),
        false,
    );
    add(
        "retention by count".into(),
        run_stats::EXPIRED_BY_COUNT_SQL.into(),
        false,
    );
    for (name, sql) in [
        ("queue: startable", runs::STARTABLE_SQL),
        ("queue: next wake-up", runs::NEXT_WAKEUP_SQL),
        ("queue: running by config", runs::RUNNING_BY_CONFIG_SQL),
        ("queue: active of pipeline", runs::ACTIVE_OF_PIPELINE_SQL),
        ("queue: children", runs::CHILDREN_SQL),
        ("queue: ahead of a run", runs::QUEUED_AHEAD_SQL),
        ("queue: running", runs::RUNNING_SQL),
    ] {
        add(name.into(), sql.into(), false);
    }
    out
}

/// The planner's steps for `sql` (`EXPLAIN QUERY PLAN`, parameters unbound).
pub async fn plan(pool: &Pool, sql: &str) -> Result<Vec<String>, DbError> {
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(_, _, _, detail)| detail).collect())
}

/// Why a plan reads all of `runs` (under its name or the aliases our queries give it), if it does.
pub fn full_scan_of_runs(steps: &[String], ordered_scan_ok: bool) -> Option<String> {
    steps.iter().find_map(|step| {
        let scanned = step.strip_prefix("SCAN ")?;
        let table = scanned.split_whitespace().next()?;
        let is_runs = ["runs", "r", "o", "l"].contains(&table);
        let by_index = scanned.contains(" USING ") && scanned.contains("INDEX");
        (is_runs && !(ordered_scan_ok && by_index)).then(|| step.clone())
    })
}
