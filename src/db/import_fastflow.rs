//! The statements of `fastflow import-fastflow`: reading a Python Fast-Flow 1.x
//! database (its `pipeline_runs` and `secrets` tables, columns by name) and
//! writing what it held into ours without touching rows we already have.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;

use super::{DbError, Pool};

/// One run as Fast-Flow 1.x stored it (timestamps naive UTC, JSON as text).
pub struct SourceRun {
    pub id: String,
    pub pipeline_name: String,
    pub status: String,
    pub env_vars: Option<String>,
    pub parameters: Option<String>,
    pub setup_duration: Option<f64>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    pub triggered_by: String,
    pub run_config_id: Option<String>,
    pub git_sha: Option<String>,
    pub git_branch: Option<String>,
    pub git_commit_message: Option<String>,
}

/// The Alembic revision the source database is at, if it has one.
pub async fn source_revision(source: &Pool) -> Result<Option<String>, DbError> {
    let has_table: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
    )
    .fetch_optional(source)
    .await?;
    if has_table.is_none() {
        return Ok(None);
    }
    let row: Option<(String,)> = sqlx::query_as("SELECT version_num FROM alembic_version")
        .fetch_optional(source)
        .await?;
    Ok(row.map(|(v,)| v))
}

/// Every run of the source, oldest first.
pub async fn source_runs(source: &Pool) -> Result<Vec<SourceRun>, DbError> {
    let rows = sqlx::query(
        "SELECT id, pipeline_name, status, env_vars, parameters, setup_duration, started_at,
                finished_at, exit_code, triggered_by, run_config_id, git_sha, git_branch,
                git_commit_message
         FROM pipeline_runs ORDER BY started_at, id",
    )
    .fetch_all(source)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SourceRun {
                id: r.try_get("id")?,
                pipeline_name: r.try_get("pipeline_name")?,
                status: r.try_get("status")?,
                env_vars: r.try_get("env_vars")?,
                parameters: r.try_get("parameters")?,
                setup_duration: r.try_get("setup_duration")?,
                started_at: r.try_get("started_at")?,
                finished_at: r.try_get("finished_at")?,
                exit_code: r.try_get("exit_code")?,
                triggered_by: r.try_get("triggered_by")?,
                run_config_id: r.try_get("run_config_id")?,
                git_sha: r.try_get("git_sha")?,
                git_branch: r.try_get("git_branch")?,
                git_commit_message: r.try_get("git_commit_message")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// `(key, value, is_parameter, created_at, updated_at)` of every source secret.
pub async fn source_secrets(
    source: &Pool,
) -> Result<Vec<(String, String, bool, String, String)>, DbError> {
    Ok(sqlx::query_as(
        r#"SELECT "key", value, is_parameter, created_at, updated_at FROM secrets ORDER BY "key""#,
    )
    .fetch_all(source)
    .await?)
}

/// A Fast-Flow 1.x timestamp (`YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC without an
/// offset; an RFC 3339 one is taken too).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(|t| t.and_utc())
        })
}

/// A finished run to store as it was.
pub struct ImportedRun<'a> {
    pub id: &'a str,
    pub pipeline_name: &'a str,
    pub status: &'a str,
    pub triggered_by: &'a str,
    pub env_vars: &'a str,
    pub parameters: &'a str,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub exit_code: Option<i64>,
    pub error_type: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub log_file: &'a str,
    pub attempt: i64,
    pub previous_run_id: Option<&'a str>,
    pub setup_duration: Option<f64>,
    pub run_config_id: Option<&'a str>,
    pub git_sha: Option<&'a str>,
    pub git_branch: Option<&'a str>,
    pub git_subject: Option<&'a str>,
}

/// Stores `run` unless a run with its id exists; true when it was stored. It is
/// written as running and ended in the same transaction, so the database's own
/// end-of-run trigger counts it (per day and pipeline) like any other run.
pub async fn insert_run(pool: &Pool, run: &ImportedRun<'_>) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "INSERT OR IGNORE INTO runs (id, pipeline_name, status, triggered_by, env_vars, parameters,
             started_at, finished_at, exit_code, error_type, error_message, log_file, attempt,
             previous_run_id, setup_duration, run_config_id, git_sha, git_branch, git_subject)
         VALUES (?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(run.id)
    .bind(run.pipeline_name)
    .bind(run.triggered_by)
    .bind(run.env_vars)
    .bind(run.parameters)
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(run.exit_code)
    .bind(run.error_type)
    .bind(run.error_message)
    .bind(run.log_file)
    .bind(run.attempt)
    .bind(run.previous_run_id)
    .bind(run.setup_duration)
    .bind(run.run_config_id)
    .bind(run.git_sha)
    .bind(run.git_branch)
    .bind(run.git_subject)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("UPDATE runs SET status = ? WHERE id = ? AND status = 'RUNNING'")
        .bind(run.status)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Stores a secret or parameter unless the key exists; true when it was stored.
pub async fn insert_secret(
    pool: &Pool,
    key: &str,
    value: &str,
    is_parameter: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT OR IGNORE INTO secrets (key, value, is_parameter, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(key)
    .bind(value)
    .bind(is_parameter)
    .bind(created_at)
    .bind(updated_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
