//! The dashboard's numbers: runs in a time window by status (an index range on
//! `runs_by_started`), queued and running now (`run_totals`), the latest
//! failures (`runs_by_status`), runs per day (`run_counters`, kept as runs end)
//! and each pipeline's last outcomes (`runs_by_pipeline`). Each is an index
//! read, so the page costs the same with 100 000 runs as with 100.

use chrono::{DateTime, Utc};

use super::{DbError, Pool, Run};
use crate::run_status::RunStatus;

/// How many runs of each status were triggered since `since`.
pub async fn statuses_since(
    pool: &Pool,
    since: DateTime<Utc>,
) -> Result<Vec<(RunStatus, i64)>, DbError> {
    Ok(sqlx::query_as(STATUSES_SINCE_SQL)
        .bind(since)
        .fetch_all(pool)
        .await?)
}

/// `+status`: grouping by the status index would walk every run; the time
/// range of `runs_by_started` reads only the window.
pub const STATUSES_SINCE_SQL: &str =
    "SELECT status, COUNT(*) FROM runs WHERE started_at >= ? GROUP BY +status";
/// The latest failures.
pub const RECENT_FAILURES_SQL: &str =
    "SELECT * FROM runs WHERE status = 'FAILED' ORDER BY started_at DESC, id DESC LIMIT ?";
/// A pipeline's latest outcomes.
pub const LAST_OUTCOMES_SQL: &str = "SELECT id, status FROM runs WHERE pipeline_name = ?
         ORDER BY started_at DESC, id DESC LIMIT ?";

/// Queued (`PENDING`) and running runs now: `(pending, running)`.
pub async fn active_now(pool: &Pool) -> Result<(i64, i64), DbError> {
    let rows: Vec<(RunStatus, i64)> = sqlx::query_as(
        "SELECT status, COALESCE(SUM(runs), 0) FROM run_totals
         WHERE status IN ('PENDING', 'RUNNING') GROUP BY status",
    )
    .fetch_all(pool)
    .await?;
    let of = |s: RunStatus| rows.iter().find(|(st, _)| *st == s).map_or(0, |(_, n)| *n);
    Ok((of(RunStatus::Pending), of(RunStatus::Running)))
}

/// The latest failed runs, newest first.
pub async fn recent_failures(pool: &Pool, limit: i64) -> Result<Vec<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>(RECENT_FAILURES_SQL)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// One day of the heat map: `day` is `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DayTotal {
    pub day: String,
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// Finished runs per day over the last `days` days, all pipelines together.
pub async fn days(pool: &Pool, days: i64) -> Result<Vec<DayTotal>, DbError> {
    Ok(sqlx::query_as(
        "SELECT day, SUM(total) AS total, SUM(succeeded) AS succeeded, SUM(failed) AS failed
         FROM run_counters WHERE day >= strftime('%Y-%m-%d', 'now', ?)
         GROUP BY day ORDER BY day",
    )
    .bind(format!("-{days} days"))
    .fetch_all(pool)
    .await?)
}

/// The latest runs of each of `pipelines`, newest first, in one statement (one
/// index seek per pipeline, one round trip): `(pipeline, id, status)`.
pub async fn last_outcomes_of(
    pool: &Pool,
    pipelines: &[&str],
    limit: i64,
) -> Result<Vec<(String, String, RunStatus)>, DbError> {
    if pipelines.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("");
    for (i, name) in pipelines.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT * FROM (SELECT pipeline_name, id, status FROM runs WHERE pipeline_name = ")
            .push_bind(*name)
            .push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(limit)
            .push(")");
    }
    Ok(q.build_query_as().fetch_all(pool).await?)
}

/// A pipeline's latest runs, newest first: `(id, status)`.
pub async fn last_outcomes(
    pool: &Pool,
    pipeline: &str,
    limit: i64,
) -> Result<Vec<(String, RunStatus)>, DbError> {
    Ok(sqlx::query_as(LAST_OUTCOMES_SQL)
        .bind(pipeline)
        .bind(limit)
        .fetch_all(pool)
        .await?)
}
