//! Statistics and retention queries: per-pipeline and per-day counters (kept by
//! the triggers of migration 0006 as runs end, never recomputed per request), and
//! which finished runs retention removes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{DbError, Pool};
use crate::run_status::RunStatus;

/// Per-pipeline counters and the latest run, for the pipelines list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PipelineRunStats {
    pub total_runs: i64,
    pub successful_runs: i64,
    pub failed_runs: i64,
    pub last_run_id: Option<String>,
    pub last_run_status: Option<RunStatus>,
    pub last_run_at: Option<DateTime<Utc>>,
}

/// The lifetime counters of `pipeline_counters` (written by the trigger that ends a
/// run), the queued and running runs from `run_totals`, and the latest run. Each part
/// is a primary-key or index lookup per pipeline, whatever the history's size.
pub(super) const STATS_SQL: &str = "SELECT n.pipeline_name AS pipeline_name,
        COALESCE(c.total, 0) + COALESCE((SELECT SUM(t.runs) FROM run_totals t
            WHERE t.pipeline_name = n.pipeline_name AND t.status IN ('PENDING', 'RUNNING')), 0) AS total_runs,
        COALESCE(c.succeeded, 0) AS successful_runs, COALESCE(c.failed, 0) AS failed_runs,
        l.id AS last_run_id, l.status AS last_run_status, l.started_at AS last_run_at
    FROM names n
    LEFT JOIN pipeline_counters c ON c.pipeline_name = n.pipeline_name
    LEFT JOIN runs l ON l.id = (SELECT id FROM runs WHERE pipeline_name = n.pipeline_name
                                ORDER BY started_at DESC, id DESC LIMIT 1)";

/// Every pipeline that has counters or rows.
pub(super) const ALL_STATS_SQL: &str = "WITH names AS (
        SELECT pipeline_name FROM pipeline_counters
        UNION SELECT pipeline_name FROM run_totals WHERE runs > 0)";

/// One pipeline.
pub(super) const ONE_STATS_SQL: &str = "WITH names AS (SELECT ? AS pipeline_name)";

/// The pipelines named in `n` bound parameters (one page of the list).
pub(super) fn some_stats_sql(n: usize) -> String {
    let values = vec!["(?)"; n.max(1)].join(", ");
    format!("WITH names (pipeline_name) AS (VALUES {values})")
}

/// Most names asked for at once (well under SQLite's bound-parameter limit).
const MAX_STATS_NAMES: usize = 500;

/// A row of the per-pipeline statistics query.
#[derive(sqlx::FromRow)]
struct StatsRow {
    pipeline_name: String,
    total_runs: i64,
    successful_runs: i64,
    failed_runs: i64,
    last_run_id: Option<String>,
    last_run_status: Option<RunStatus>,
    last_run_at: Option<DateTime<Utc>>,
}

impl StatsRow {
    fn into_pair(self) -> (String, PipelineRunStats) {
        let stats = PipelineRunStats {
            total_runs: self.total_runs,
            successful_runs: self.successful_runs,
            failed_runs: self.failed_runs,
            last_run_id: self.last_run_id,
            last_run_status: self.last_run_status,
            last_run_at: self.last_run_at,
        };
        (self.pipeline_name, stats)
    }
}

/// Counters (they survive retention) and the latest run, per pipeline.
pub async fn pipeline_stats(pool: &Pool) -> Result<HashMap<String, PipelineRunStats>, DbError> {
    let rows: Vec<StatsRow> = sqlx::query_as(&format!("{ALL_STATS_SQL} {STATS_SQL}"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(StatsRow::into_pair).collect())
}

/// [`pipeline_stats`] of the named pipelines only (asked [`MAX_STATS_NAMES`] at a time; a
/// page of the list), so a page costs the same however many pipelines there are.
pub async fn pipeline_stats_for(
    pool: &Pool,
    names: &[&str],
) -> Result<HashMap<String, PipelineRunStats>, DbError> {
    let mut stats = HashMap::with_capacity(names.len());
    for part in names.chunks(MAX_STATS_NAMES) {
        let sql = format!("{} {STATS_SQL}", some_stats_sql(part.len()));
        let mut q = sqlx::query_as::<_, StatsRow>(&sql);
        for name in part {
            q = q.bind(*name);
        }
        stats.extend(
            q.fetch_all(pool)
                .await?
                .into_iter()
                .map(StatsRow::into_pair),
        );
    }
    Ok(stats)
}

/// [`pipeline_stats`] of one pipeline (zeros if it never ran).
pub async fn pipeline_stats_of(pool: &Pool, pipeline: &str) -> Result<PipelineRunStats, DbError> {
    let row: StatsRow = sqlx::query_as(&format!("{ONE_STATS_SQL} {STATS_SQL}"))
        .bind(pipeline)
        .fetch_one(pool)
        .await?;
    Ok(row.into_pair().1)
}

/// At most this many runs are removed per retention step, so enabling retention on
/// a long history never loads it whole.
pub const RETENTION_BATCH: i64 = 2_000;

/// Finished runs that ended before `older_than`, oldest first (up to [`RETENTION_BATCH`]).
pub(super) const EXPIRED_BY_AGE_SQL: &str = "SELECT id, log_file FROM runs
    WHERE finished_at < ? AND status IN ('SUCCESS', 'FAILED', 'INTERRUPTED')
    ORDER BY finished_at LIMIT ?";

/// Finished runs of one pipeline beyond its newest `keep` finished ones.
pub(super) const EXPIRED_BY_COUNT_SQL: &str = "SELECT id, log_file FROM runs
    WHERE pipeline_name = ? AND status IN ('SUCCESS', 'FAILED', 'INTERRUPTED')
    ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?";

/// Finished runs that retention removes: finished before `older_than`, or beyond the
/// newest `keep_per_pipeline` finished runs of their pipeline; at most
/// [`RETENTION_BATCH`] per call (call again until it returns fewer). Queued and
/// running runs are never returned.
pub async fn expired(
    pool: &Pool,
    older_than: Option<DateTime<Utc>>,
    keep_per_pipeline: Option<u32>,
) -> Result<Vec<(String, String)>, DbError> {
    let mut found: Vec<(String, String)> = Vec::new();
    if let Some(cutoff) = older_than {
        found = sqlx::query_as(EXPIRED_BY_AGE_SQL)
            .bind(cutoff)
            .bind(RETENTION_BATCH)
            .fetch_all(pool)
            .await?;
    }
    if let Some(keep) = keep_per_pipeline {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT pipeline_name FROM run_totals WHERE runs > 0")
                .fetch_all(pool)
                .await?;
        for name in names {
            let room = RETENTION_BATCH - found.len() as i64;
            if room <= 0 {
                break;
            }
            let more: Vec<(String, String)> = sqlx::query_as(EXPIRED_BY_COUNT_SQL)
                .bind(&name)
                .bind(room)
                .bind(i64::from(keep))
                .fetch_all(pool)
                .await?;
            found.extend(more);
        }
        found.sort_unstable();
        found.dedup();
    }
    Ok(found)
}

/// Recounts `run_totals` from the rows. The triggers keep it exact; this repairs a
/// database edited by hand. One pass over an index of `runs`, so retention (daily)
/// runs it, never a request.
pub async fn repair_totals(pool: &Pool) -> Result<(), DbError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query("DELETE FROM run_totals")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO run_totals (pipeline_name, status, runs)
         SELECT pipeline_name, status, COUNT(*) FROM runs GROUP BY pipeline_name, status",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes finished runs by id (open runs are never deleted).
pub async fn delete_finished(pool: &Pool, ids: &[String]) -> Result<u64, DbError> {
    let mut deleted = 0;
    let mut tx = pool.begin().await?;
    for id in ids {
        deleted += sqlx::query(
            "DELETE FROM runs WHERE id = ? AND status IN ('SUCCESS', 'FAILED', 'INTERRUPTED')",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Per-day counters of the last days.
pub(super) const DAILY_SQL: &str =
    "SELECT day, pipeline_name, total, succeeded, failed, interrupted, duration_sum
    FROM run_counters WHERE day >= strftime('%Y-%m-%d', 'now', ?) ORDER BY day DESC, pipeline_name";

/// Per-day counters (they survive retention), newest day first.
pub async fn daily_counters(pool: &Pool, days: i64) -> Result<Vec<DailyCounter>, DbError> {
    Ok(sqlx::query_as(DAILY_SQL)
        .bind(format!("-{days} days"))
        .fetch_all(pool)
        .await?)
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct DailyCounter {
    pub day: String,
    pub pipeline_name: String,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub interrupted: i64,
    pub duration_sum: f64,
}
