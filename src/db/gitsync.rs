//! Git sync records: the active snapshot (one row), the sync log, the commit
//! each run ran, and which commits running runs still need.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::types::Json;

use super::{DbError, Pool};

/// The snapshot pipelines are served from.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ActiveCommit {
    /// The repository (credentials stripped); "" for snapshots synced before it was recorded.
    pub repo_url: String,
    /// The folder of the snapshot that held the pipelines (`None`: not recorded,
    /// snapshots synced before it was; the configured one applies).
    pub pipelines_subdir: Option<String>,
    pub commit_sha: String,
    pub branch: String,
    pub subject: String,
    pub commit_time: Option<DateTime<Utc>>,
    pub synced_at: DateTime<Utc>,
}

pub async fn active(pool: &Pool) -> Result<Option<ActiveCommit>, DbError> {
    Ok(sqlx::query_as(
        "SELECT repo_url, pipelines_subdir, commit_sha, branch, subject, commit_time, synced_at FROM git_sync_state WHERE id = 1",
    )
    .fetch_optional(pool)
    .await?)
}

/// Forgets the active snapshot (the pipelines come from `PIPELINES_DIR` again).
pub async fn clear_active(pool: &Pool) -> Result<(), DbError> {
    sqlx::query("DELETE FROM git_sync_state WHERE id = 1")
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_active(pool: &Pool, active: &ActiveCommit) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO git_sync_state (id, repo_url, pipelines_subdir, commit_sha, branch, subject, commit_time, synced_at)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET repo_url = excluded.repo_url,
             pipelines_subdir = excluded.pipelines_subdir,
             commit_sha = excluded.commit_sha, branch = excluded.branch,
             subject = excluded.subject, commit_time = excluded.commit_time, synced_at = excluded.synced_at",
    )
    .bind(&active.repo_url)
    .bind(&active.pipelines_subdir)
    .bind(&active.commit_sha)
    .bind(&active.branch)
    .bind(&active.subject)
    .bind(active.commit_time)
    .bind(active.synced_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// One sync, as the log shows it.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct SyncLogEntry {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub trigger: String,
    pub success: bool,
    pub branch: String,
    pub old_commit: Option<String>,
    pub new_commit: Option<String>,
    pub subject: Option<String>,
    pub added: Json<Vec<String>>,
    pub changed: Json<Vec<String>>,
    pub removed: Json<Vec<String>>,
    pub error: Option<String>,
}

/// A sync to record (the id is given by the database).
pub struct NewSyncLogEntry<'a> {
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub trigger: &'a str,
    pub success: bool,
    pub branch: &'a str,
    pub old_commit: Option<&'a str>,
    pub new_commit: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub added: &'a [String],
    pub changed: &'a [String],
    pub removed: &'a [String],
    pub error: Option<&'a str>,
}

/// Entries kept in the sync log; older ones are removed as new ones are written.
pub const SYNC_LOG_KEEP: i64 = 1_000;

pub async fn add_log(pool: &Pool, e: &NewSyncLogEntry<'_>) -> Result<SyncLogEntry, DbError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let entry = sqlx::query_as(
        "INSERT INTO git_sync_log (started_at, duration_ms, trigger, success, branch, old_commit,
                                   new_commit, subject, added, changed, removed, error)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
    )
    .bind(e.started_at)
    .bind(e.duration_ms)
    .bind(e.trigger)
    .bind(e.success)
    .bind(e.branch)
    .bind(e.old_commit)
    .bind(e.new_commit)
    .bind(e.subject)
    .bind(Json(e.added))
    .bind(Json(e.changed))
    .bind(Json(e.removed))
    .bind(e.error)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM git_sync_log WHERE id <= (SELECT id FROM git_sync_log ORDER BY id DESC LIMIT 1 OFFSET ?)",
    )
    .bind(SYNC_LOG_KEEP)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(entry)
}

/// The newest `limit` entries, newest first.
pub async fn logs(pool: &Pool, limit: i64) -> Result<Vec<SyncLogEntry>, DbError> {
    Ok(
        sqlx::query_as("SELECT * FROM git_sync_log ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(pool)
            .await?,
    )
}

/// Records the commit a run's files come from (when it starts).
pub async fn set_run_revision(
    pool: &Pool,
    run_id: &str,
    sha: &str,
    branch: &str,
    subject: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET git_sha = ?, git_branch = ?, git_subject = ? WHERE id = ?")
        .bind(sha)
        .bind(branch)
        .bind(subject)
        .bind(run_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Commits whose snapshot a running run has mounted.
pub async fn commits_in_use(pool: &Pool) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT git_sha FROM runs WHERE status = 'RUNNING' AND git_sha IS NOT NULL",
    )
    .fetch_all(pool)
    .await?)
}

/// A pinned SSH host key, with when it was pinned.
#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct PinnedHostKey {
    pub host: String,
    pub key_type: String,
    pub key_base64: String,
    pub pinned_at: DateTime<Utc>,
}

pub async fn pinned_host_key(pool: &Pool, host: &str) -> Result<Option<PinnedHostKey>, DbError> {
    Ok(sqlx::query_as(
        "SELECT host, key_type, key_base64, pinned_at FROM git_host_keys WHERE host = ?",
    )
    .bind(host)
    .fetch_optional(pool)
    .await?)
}

/// Pins a key for `host` unless one is pinned already (the first one wins).
pub async fn pin_host_key(
    pool: &Pool,
    host: &str,
    key_type: &str,
    key_base64: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO git_host_keys (host, key_type, key_base64, pinned_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (host) DO NOTHING",
    )
    .bind(host)
    .bind(key_type)
    .bind(key_base64)
    .bind(Utc::now())
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn unpin_host_key(pool: &Pool, host: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM git_host_keys WHERE host = ?")
        .bind(host)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// A stored sync setting (`auto_sync_enabled`, `auto_sync_interval`).
pub async fn setting(pool: &Pool, key: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar("SELECT value FROM git_sync_settings WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn set_setting(pool: &Pool, key: &str, value: &str) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO git_sync_settings (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(Utc::now())
    .execute(pool)
    .await?;
    Ok(())
}
