//! Queries on the `runs` table: insert, read, list, claim from the queue, finish.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{DbError, Pool};
use crate::run_status::{ErrorType, RunStatus};

pub type EnvMap = BTreeMap<String, String>;

/// One row of `runs`.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct Run {
    pub id: String,
    pub pipeline_name: String,
    pub status: RunStatus,
    pub triggered_by: String,
    #[serde(skip)]
    pub env_vars: Json<EnvMap>,
    #[serde(skip)]
    pub parameters: Json<EnvMap>,
    pub started_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub container_started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub exit_code: Option<i64>,
    pub error_type: Option<ErrorType>,
    pub error_message: Option<String>,
    pub image: Option<String>,
    #[serde(skip)]
    pub container_id: Option<String>,
    pub log_file: String,
    pub log_lines: i64,
    pub log_bytes: i64,
    pub log_truncated: bool,
    pub attempt: i64,
    pub previous_run_id: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub setup_duration: Option<f64>,
    pub peak_cpu_percent: Option<f64>,
    pub peak_memory_bytes: Option<i64>,
    pub soft_limit_warning: Option<String>,
    /// Why the run has no (or incomplete) resource samples.
    pub metrics_error: Option<String>,
    /// The `schedules[].id` whose settings the run used.
    pub run_config_id: Option<String>,
    /// The run whose end started this one (downstream trigger).
    pub parent_run_id: Option<String>,
    /// Starts only when no earlier run of its pipeline and run configuration runs (overlap "queue").
    pub wait_for_previous: bool,
    /// The git commit, branch and commit subject of the files the run ran (git sync).
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_subject: Option<String>,
    /// The names of the secret values the run received, each with its source
    /// (`secret`, `parameter`, `encrypted_env`); never a value.
    #[serde(skip)]
    pub injected_secrets: Json<EnvMap>,
}

impl Run {
    /// Wall time from container start to end (or to now while it runs).
    pub fn duration_seconds(&self) -> Option<f64> {
        // A run that never started a container has no duration (it waited, or failed before).
        let start = self.container_started_at?;
        let end = self
            .finished_at
            .or_else(|| (!self.status.is_terminal()).then(Utc::now))?;
        Some((end - start).num_milliseconds() as f64 / 1000.0)
    }
}

/// What a trigger records.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub id: String,
    pub pipeline_name: String,
    pub triggered_by: String,
    pub env_vars: EnvMap,
    pub parameters: EnvMap,
    pub log_file: String,
    pub attempt: i64,
    pub previous_run_id: Option<String>,
    pub not_before: Option<DateTime<Utc>>,
    pub run_config_id: Option<String>,
    pub parent_run_id: Option<String>,
    pub wait_for_previous: bool,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub error_type: Option<ErrorType>,
    pub error_message: Option<String>,
    pub log_lines: u64,
    pub log_bytes: u64,
    pub log_truncated: bool,
    /// When the container exited (the run's end), if it ran; else the time of writing.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Queued runs that may start now.
pub(super) const STARTABLE_SQL: &str = "SELECT * FROM runs r WHERE r.status = 'PENDING' AND (r.not_before IS NULL OR r.not_before <= ?)
           AND (r.wait_for_previous = 0 OR NOT EXISTS (
                SELECT 1 FROM runs o WHERE o.pipeline_name = r.pipeline_name AND o.run_config_id IS r.run_config_id
                  AND o.status IN ('PENDING', 'RUNNING') AND o.id <> r.id
                  AND (o.status = 'RUNNING' OR o.started_at < r.started_at)))
         ORDER BY r.started_at, r.id LIMIT ?";

/// The earliest future `not_before` of a queued run.
pub(super) const NEXT_WAKEUP_SQL: &str =
    "SELECT MIN(not_before) FROM runs WHERE status = 'PENDING' AND not_before > ?";

/// RUNNING runs per pipeline and run configuration.
pub(super) const RUNNING_BY_CONFIG_SQL: &str =
    "SELECT pipeline_name, run_config_id, COUNT(*) FROM runs WHERE status = 'RUNNING'
         GROUP BY pipeline_name, run_config_id";

/// Queued or running runs of a pipeline.
pub(super) const ACTIVE_OF_PIPELINE_SQL: &str = "SELECT * FROM runs WHERE pipeline_name = ? AND status IN ('PENDING', 'RUNNING') ORDER BY started_at";

/// Runs started by a run's end.
pub(super) const CHILDREN_SQL: &str =
    "SELECT * FROM runs WHERE parent_run_id = ? ORDER BY started_at LIMIT 100";

/// Queued runs ahead of one.
pub(super) const QUEUED_AHEAD_SQL: &str =
    "SELECT COUNT(*) FROM runs WHERE status = 'PENDING' AND (started_at, id) < (?1, ?2)";

/// Runs left RUNNING.
pub(super) const RUNNING_SQL: &str =
    "SELECT * FROM runs WHERE status = 'RUNNING' ORDER BY started_at";

/// Queues a run. The trigger time is taken while holding SQLite's write lock, so
/// queue order by `started_at` is exactly insertion order, even for concurrent triggers.
pub async fn insert(pool: &Pool, new: &NewRun) -> Result<Run, DbError> {
    // A dropped transaction rolls back, even if the request that triggered it is cancelled.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let run = insert_in(&mut tx, new).await?;
    tx.commit().await?;
    Ok(run)
}

/// [`insert`] inside a transaction the caller commits (with the slot that started it).
pub(super) async fn insert_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    new: &NewRun,
) -> Result<Run, DbError> {
    Ok(sqlx::query_as::<_, Run>(
        "INSERT INTO runs (id, pipeline_name, status, triggered_by, env_vars, parameters, started_at, log_file,
                           attempt, previous_run_id, not_before, run_config_id, parent_run_id, wait_for_previous)
         VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(&new.id)
    .bind(&new.pipeline_name)
    .bind(&new.triggered_by)
    .bind(Json(&new.env_vars))
    .bind(Json(&new.parameters))
    .bind(Utc::now())
    .bind(&new.log_file)
    .bind(new.attempt)
    .bind(&new.previous_run_id)
    .bind(new.not_before)
    .bind(&new.run_config_id)
    .bind(&new.parent_run_id)
    .bind(new.wait_for_previous)
    .fetch_one(&mut **tx)
    .await?)
}

pub async fn get(pool: &Pool, id: &str) -> Result<Option<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>("SELECT * FROM runs WHERE id = ?")
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Queued runs that may start now (`not_before` passed), oldest first.
///
/// A run that waits for the previous run of its pipeline and run configuration
/// (overlap "queue") is left out while that one is running or queued before it,
/// so a long backlog of one job never hides the runs queued behind it.
pub async fn startable(pool: &Pool, limit: i64) -> Result<Vec<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>(STARTABLE_SQL)
        .bind(Utc::now())
        .bind(limit)
        .fetch_all(pool)
        .await?)
}

/// The earliest `not_before` of a queued run that is still in the future.
pub async fn next_wakeup(pool: &Pool) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(sqlx::query_scalar(NEXT_WAKEUP_SQL)
        .bind(Utc::now())
        .fetch_one(pool)
        .await?)
}

/// Number of RUNNING runs per pipeline and run configuration.
pub async fn running_by_config(
    pool: &Pool,
) -> Result<HashMap<(String, Option<String>), i64>, DbError> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(RUNNING_BY_CONFIG_SQL)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(p, c, n)| ((p, c), n)).collect())
}

/// Queued or running runs of a pipeline (any run configuration), oldest first.
pub async fn active_of_pipeline(pool: &Pool, pipeline: &str) -> Result<Vec<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>(ACTIVE_OF_PIPELINE_SQL)
        .bind(pipeline)
        .fetch_all(pool)
        .await?)
}

/// Runs started by `parent`'s end (downstream triggers).
pub async fn children(pool: &Pool, parent: &str) -> Result<Vec<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>(CHILDREN_SQL)
        .bind(parent)
        .fetch_all(pool)
        .await?)
}

/// Marks one queued run RUNNING; `None` if it is no longer queued (e.g. cancelled).
///
/// Every `… RETURNING` write here runs in an explicit transaction: in autocommit
/// mode SQLite commits when the statement is reset, and an error there (a full
/// disk) would be lost after the row was already read, reporting a write that
/// did not happen.
pub async fn claim(pool: &Pool, id: &str) -> Result<Option<Run>, DbError> {
    let mut tx = pool.begin().await?;
    let run = sqlx::query_as::<_, Run>(
        "UPDATE runs SET status = 'RUNNING', claimed_at = ? WHERE id = ? AND status = 'PENDING' RETURNING *",
    )
    .bind(Utc::now())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(run)
}

/// Queued runs started before this one (its place in the queue is this + 1).
pub async fn queued_ahead(pool: &Pool, run: &Run) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(QUEUED_AHEAD_SQL)
        .bind(run.started_at)
        .bind(&run.id)
        .fetch_one(pool)
        .await?)
}

/// Records a cancel: PENDING or RUNNING become INTERRUPTED/cancelled. Returns the
/// status the run had, or `None` if it had already finished.
pub async fn cancel(pool: &Pool, id: &str, reason: &str) -> Result<Option<RunStatus>, DbError> {
    // IMMEDIATE: it reads, then writes. A deferred transaction would have to upgrade
    // its lock, which SQLite refuses at once (SQLITE_BUSY) instead of waiting.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let before: Option<RunStatus> = sqlx::query_scalar("SELECT status FROM runs WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(before) = before.filter(|s| !s.is_terminal()) else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE runs SET status = 'INTERRUPTED', error_type = 'cancelled', error_message = ?,
                         finished_at = ? WHERE id = ?",
    )
    .bind(reason)
    .bind(Utc::now())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(before))
}

pub async fn set_container(
    pool: &Pool,
    id: &str,
    container_id: &str,
    image: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET container_id = ?, image = ? WHERE id = ?")
        .bind(container_id)
        .bind(image)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_container_started(
    pool: &Pool,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET container_started_at = ? WHERE id = ?")
        .bind(at)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records the end of a run. Status and error are written only if the run is
/// still PENDING/RUNNING (a cancel written first is never overwritten); the exit
/// code and log counters are always recorded. Returns whether the status was set.
pub async fn finish(pool: &Pool, id: &str, outcome: &RunOutcome) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let open: Option<bool> = sqlx::query_scalar(
        "UPDATE runs SET
            error_type    = CASE WHEN status IN ('PENDING', 'RUNNING') THEN ?2 ELSE error_type END,
            error_message = CASE WHEN status IN ('PENDING', 'RUNNING') THEN ?3 ELSE error_message END,
            status        = CASE WHEN status IN ('PENDING', 'RUNNING') THEN ?1 ELSE status END,
            finished_at   = COALESCE(finished_at, ?4),
            exit_code = ?5, log_lines = ?6, log_bytes = ?7, log_truncated = ?8
         WHERE id = ?9
         RETURNING status = ?1",
    )
    .bind(outcome.status)
    .bind(outcome.error_type)
    .bind(&outcome.error_message)
    .bind(outcome.ended_at.unwrap_or_else(Utc::now))
    .bind(outcome.exit_code)
    .bind(outcome.log_lines as i64)
    .bind(outcome.log_bytes as i64)
    .bind(outcome.log_truncated)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(open.unwrap_or(false))
}

pub async fn set_setup_duration(pool: &Pool, id: &str, seconds: f64) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET setup_duration = ? WHERE id = ?")
        .bind(seconds)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records the latest resource peaks of a running run.
pub async fn set_peaks(
    pool: &Pool,
    id: &str,
    cpu_percent: f64,
    memory_bytes: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE runs SET peak_cpu_percent = MAX(COALESCE(peak_cpu_percent, 0), ?),
                         peak_memory_bytes = MAX(COALESCE(peak_memory_bytes, 0), ?) WHERE id = ?",
    )
    .bind(cpu_percent)
    .bind(memory_bytes)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records why a run has no (or incomplete) resource samples; the first reason is kept.
pub async fn set_metrics_error(pool: &Pool, id: &str, reason: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET metrics_error = ? WHERE id = ? AND metrics_error IS NULL")
        .bind(reason)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Flags a run that exceeded a soft limit; only the first warning is kept.
pub async fn set_soft_limit_warning(pool: &Pool, id: &str, warning: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE runs SET soft_limit_warning = ? WHERE id = ? AND soft_limit_warning IS NULL",
    )
    .bind(warning)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks a running run INTERRUPTED with a reason (before its container is stopped).
pub async fn interrupt(pool: &Pool, id: &str, reason: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE runs SET status = 'INTERRUPTED', error_type = 'cancelled', error_message = ?, finished_at = ?
         WHERE id = ? AND status IN ('PENDING', 'RUNNING')",
    )
    .bind(reason)
    .bind(Utc::now())
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts a claimed run back in the queue (its container never started).
pub async fn requeue(pool: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET status = 'PENDING', claimed_at = NULL, container_id = NULL WHERE id = ? AND status = 'RUNNING'")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs left RUNNING by a previous process; returned so their containers can be handled.
pub async fn running(pool: &Pool) -> Result<Vec<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>(RUNNING_SQL)
        .fetch_all(pool)
        .await?)
}
