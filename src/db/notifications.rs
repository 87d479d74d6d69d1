//! Notifications and their delivery: one row per message and target (pending,
//! sent or failed, with attempts and the last error), and each pipeline's last
//! final outcome, which tells a recovery from a plain success.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";
/// A test message its caller is sending now (never taken by the dispatcher).
pub const SENDING: &str = "sending";

/// A message to record. `status` is `PENDING`, or `FAILED` with `last_error`
/// when it cannot be sent at all (the channel is off, the queue is full).
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub run_id: Option<&'a str>,
    pub pipeline_name: &'a str,
    pub event: &'a str,
    pub channel: &'a str,
    pub source: &'a str,
    pub target: &'a str,
    pub format: Option<&'a str>,
    pub status: &'a str,
    pub last_error: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Delivery {
    pub id: i64,
    pub run_id: Option<String>,
    pub pipeline_name: String,
    pub event: String,
    pub channel: String,
    /// Where the target comes from: `email`, `settings:webhook`, `settings:teams`
    /// or `pipeline:webhook` (the pipeline's own `notify.webhook`).
    pub source: String,
    pub target: String,
    pub format: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// The target's origin in words, for pages.
    pub fn origin(&self) -> &'static str {
        match self.source.as_str() {
            "settings:webhook" => "the server's webhook",
            "settings:teams" => "Teams",
            "pipeline:webhook" => "the pipeline's webhook",
            _ => "e-mail",
        }
    }
}

const COLUMNS: &str = "id, run_id, pipeline_name, event, channel, source, target, format, status, \
     attempts, last_error, created_at, next_attempt_at, sent_at";

pub async fn insert(pool: &Pool, d: &NewDelivery<'_>, now: DateTime<Utc>) -> Result<i64, DbError> {
    let next = (d.status == PENDING).then_some(now);
    let id = sqlx::query_scalar(
        "INSERT INTO notifications (run_id, pipeline_name, event, channel, source, target, format, \
         status, attempts, last_error, created_at, next_attempt_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id",
    )
    .bind(d.run_id)
    .bind(d.pipeline_name)
    .bind(d.event)
    .bind(d.channel)
    .bind(d.source)
    .bind(d.target)
    .bind(d.format)
    .bind(d.status)
    .bind(d.last_error)
    .bind(now)
    .bind(next)
    .fetch_one(pool)
    .await?;
    Ok(id)
}

pub async fn get(pool: &Pool, id: i64) -> Result<Option<Delivery>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM notifications WHERE id = ?"))
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn pending_count(pool: &Pool) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE status = 'pending'")
            .fetch_one(pool)
            .await?,
    )
}

/// Pending messages of `channel` whose time has come, oldest first.
pub async fn due(
    pool: &Pool,
    channel: &str,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE status = 'pending' AND channel = ? \
         AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?"
    ))
    .bind(channel)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// When the next pending message is due.
pub async fn next_due(pool: &Pool) -> Result<Option<DateTime<Utc>>, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending'",
    )
    .fetch_one(pool)
    .await?)
}

/// Takes a due message for sending: not due again before `lease` (unless its
/// attempt is recorded or it is released). Whether it was still due.
pub async fn claim(
    pool: &Pool,
    id: i64,
    now: DateTime<Utc>,
    lease: DateTime<Utc>,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE notifications SET next_attempt_at = ? \
         WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
    )
    .bind(lease)
    .bind(id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes claimed messages due again at once (a shutdown cut their sending short).
pub async fn release(pool: &Pool, ids: &[i64], now: DateTime<Utc>) -> Result<(), DbError> {
    for id in ids {
        sqlx::query(
            "UPDATE notifications SET next_attempt_at = ? WHERE id = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    }
    Ok(())
}

/// The result of one attempt: sent, another try at `retry_at`, or given up.
pub async fn record_attempt(
    pool: &Pool,
    id: i64,
    status: &str,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE notifications SET attempts = attempts + 1, status = ?, last_error = ?, \
         next_attempt_at = ?, sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
    )
    .bind(status)
    .bind(error)
    .bind(retry_at)
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest messages first, `limit` of them, older than `before` when given.
pub async fn list(pool: &Pool, before: Option<i64>, limit: i64) -> Result<Vec<Delivery>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE id < ? ORDER BY id DESC LIMIT ?"
    ))
    .bind(before.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn for_run(pool: &Pool, run_id: &str) -> Result<Vec<Delivery>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE run_id = ? ORDER BY id"
    ))
    .bind(run_id)
    .fetch_all(pool)
    .await?)
}

/// Deletes sent and failed messages made before `cutoff` (the daily cleanup).
pub async fn delete_finished_before(pool: &Pool, cutoff: DateTime<Utc>) -> Result<u64, DbError> {
    Ok(
        sqlx::query("DELETE FROM notifications WHERE status != 'pending' AND created_at < ?")
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// Records `outcome` as the pipeline's last final outcome and returns the one
/// it replaces, in one transaction.
pub async fn swap_outcome(
    pool: &Pool,
    pipeline: &str,
    outcome: &str,
    run_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<String>, DbError> {
    // IMMEDIATE: a read that later writes would fail at once when another
    // writer came between (SQLITE_BUSY_SNAPSHOT); this waits its turn instead.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let previous: Option<String> = sqlx::query_scalar(
        "SELECT last_outcome FROM notify_pipeline_state WHERE pipeline_name = ?",
    )
    .bind(pipeline)
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO notify_pipeline_state (pipeline_name, last_outcome, run_id, at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (pipeline_name) DO UPDATE SET last_outcome = excluded.last_outcome, \
         run_id = excluded.run_id, at = excluded.at",
    )
    .bind(pipeline)
    .bind(outcome)
    .bind(run_id)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(previous)
}
