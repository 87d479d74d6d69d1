//! Statistics and retention queries on `runs` and `run_counters`: per-pipeline
//! counters, per-day counters, and which finished runs retention removes.

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

/// Adds a finished run to the counters that outlive log retention. Call once per run.
pub async fn count_finished(pool: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO run_counters (day, pipeline_name, total, succeeded, failed, interrupted, duration_sum)
         SELECT strftime('%Y-%m-%d', finished_at), pipeline_name, 1,
                status = 'SUCCESS', status = 'FAILED', status = 'INTERRUPTED',
                COALESCE((julianday(finished_at) - julianday(COALESCE(container_started_at, started_at))) * 86400.0, 0)
         FROM runs WHERE id = ? AND status IN ('SUCCESS', 'FAILED', 'INTERRUPTED') AND finished_at IS NOT NULL
         ON CONFLICT (day, pipeline_name) DO UPDATE SET
            total = total + excluded.total, succeeded = succeeded + excluded.succeeded,
            failed = failed + excluded.failed, interrupted = interrupted + excluded.interrupted,
            duration_sum = duration_sum + excluded.duration_sum",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

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

/// Counters (from `run_counters`, so they survive retention) and the latest run per pipeline.
pub async fn pipeline_stats(pool: &Pool) -> Result<HashMap<String, PipelineRunStats>, DbError> {
    let rows: Vec<StatsRow> = sqlx::query_as(
        "WITH names AS (SELECT pipeline_name FROM run_counters UNION SELECT DISTINCT pipeline_name FROM runs),
              counts AS (SELECT pipeline_name, SUM(total) AS total, SUM(succeeded) AS ok, SUM(failed) AS failed
                         FROM run_counters GROUP BY pipeline_name),
              open AS (SELECT pipeline_name, COUNT(*) AS n FROM runs
                       WHERE status IN ('PENDING', 'RUNNING') GROUP BY pipeline_name)
         SELECT n.pipeline_name AS pipeline_name,
                COALESCE(c.total, 0) + COALESCE(o.n, 0) AS total_runs,
                COALESCE(c.ok, 0) AS successful_runs, COALESCE(c.failed, 0) AS failed_runs,
                l.id AS last_run_id, l.status AS last_run_status, l.started_at AS last_run_at
         FROM names n
         LEFT JOIN counts c ON c.pipeline_name = n.pipeline_name
         LEFT JOIN open o ON o.pipeline_name = n.pipeline_name
         LEFT JOIN runs l ON l.id = (SELECT id FROM runs WHERE pipeline_name = n.pipeline_name
                                     ORDER BY started_at DESC, rowid DESC LIMIT 1)",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let stats = PipelineRunStats {
                total_runs: r.total_runs,
                successful_runs: r.successful_runs,
                failed_runs: r.failed_runs,
                last_run_id: r.last_run_id,
                last_run_status: r.last_run_status,
                last_run_at: r.last_run_at,
            };
            (r.pipeline_name, stats)
        })
        .collect())
}

/// Finished runs that retention removes: finished before `older_than`, or beyond the
/// newest `keep_per_pipeline` finished runs of their pipeline. Queued and running
/// runs are never returned.
pub async fn expired(
    pool: &Pool,
    older_than: Option<DateTime<Utc>>,
    keep_per_pipeline: Option<u32>,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(sqlx::query_as(
        "SELECT id, log_file FROM (
             SELECT id, log_file, finished_at,
                    ROW_NUMBER() OVER (PARTITION BY pipeline_name ORDER BY started_at DESC, rowid DESC) AS newest
             FROM runs WHERE status IN ('SUCCESS', 'FAILED', 'INTERRUPTED'))
         WHERE (?1 IS NOT NULL AND finished_at < ?1) OR (?2 IS NOT NULL AND newest > ?2)",
    )
    .bind(older_than)
    .bind(keep_per_pipeline.map(i64::from))
    .fetch_all(pool)
    .await?)
}

/// Deletes finished runs by id (open runs are never deleted).
pub async fn delete_finished(pool: &Pool, ids: &[String]) -> Result<u64, DbError> {
    let mut deleted = 0;
    for id in ids {
        deleted += sqlx::query(
            "DELETE FROM runs WHERE id = ? AND status IN ('SUCCESS', 'FAILED', 'INTERRUPTED')",
        )
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(deleted)
}

/// Per-day counters (they survive retention), newest day first.
pub async fn daily_counters(pool: &Pool, days: i64) -> Result<Vec<DailyCounter>, DbError> {
    Ok(sqlx::query_as(
        "SELECT day, pipeline_name, total, succeeded, failed, interrupted, duration_sum FROM run_counters
         WHERE day >= strftime('%Y-%m-%d', 'now', ?) ORDER BY day DESC, pipeline_name",
    )
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
