//! Stored secrets and parameters: a secret's value is a Fernet token (the
//! caller encrypts), a parameter's is plain.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

/// A stored row. `value` is a Fernet token unless `is_parameter`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredSecret {
    pub key: String,
    pub value: String,
    pub is_parameter: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn list(pool: &Pool) -> Result<Vec<StoredSecret>, DbError> {
    Ok(sqlx::query_as(
        "SELECT key, value, is_parameter, created_at, updated_at FROM secrets ORDER BY key",
    )
    .fetch_all(pool)
    .await?)
}

pub async fn get(pool: &Pool, key: &str) -> Result<Option<StoredSecret>, DbError> {
    Ok(sqlx::query_as(
        "SELECT key, value, is_parameter, created_at, updated_at FROM secrets WHERE key = ?",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?)
}

/// Every stored key, in order (for suggestions; no values).
pub async fn keys(pool: &Pool) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar("SELECT key FROM secrets ORDER BY key")
        .fetch_all(pool)
        .await?)
}

/// The rows of those `keys` that exist (a run's listed secrets, in one query).
pub async fn get_many(pool: &Pool, keys: &[String]) -> Result<Vec<StoredSecret>, DbError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT key, value, is_parameter, created_at, updated_at FROM secrets
         WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key",
    )
    .bind(sqlx::types::Json(keys))
    .fetch_all(pool)
    .await?)
}

/// Adds `key`; `false` if it exists (nothing is changed then).
pub async fn insert(
    pool: &Pool,
    key: &str,
    value: &str,
    is_parameter: bool,
) -> Result<bool, DbError> {
    let now = Utc::now();
    let done = sqlx::query(
        "INSERT INTO secrets (key, value, is_parameter, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .bind(is_parameter)
    .bind(now)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Replaces `key`'s value; `false` if there is no such key.
pub async fn update(
    pool: &Pool,
    key: &str,
    value: &str,
    is_parameter: bool,
) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE secrets SET value = ?, is_parameter = ?, updated_at = ? WHERE key = ?")
            .bind(value)
            .bind(is_parameter)
            .bind(Utc::now())
            .bind(key)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes `key`; whether it existed.
pub async fn delete(pool: &Pool, key: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM secrets WHERE key = ?")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Records which secret names a run received (`name → source`), before its
/// container starts.
pub async fn set_run_injected(
    pool: &Pool,
    run_id: &str,
    names: &std::collections::BTreeMap<String, String>,
) -> Result<(), DbError> {
    sqlx::query("UPDATE runs SET injected_secrets = ? WHERE id = ?")
        .bind(sqlx::types::Json(names))
        .bind(run_id)
        .execute(pool)
        .await?;
    Ok(())
}
