//! The first-run setup link as stored: one row, the token's SHA-256, its expiry
//! and when it was used.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

/// Replaces any earlier link with this one.
pub async fn replace(
    pool: &Pool,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO setup_link (id, token_hash, expires_at, used_at) VALUES (1, ?, ?, NULL)
         ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
             expires_at = excluded.expires_at, used_at = NULL",
    )
    .bind(token_hash)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether `token_hash` is the link's and it is unused and unexpired.
pub async fn is_valid(pool: &Pool, token_hash: &str) -> Result<bool, DbError> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM setup_link WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(token_hash)
    .bind(Utc::now())
    .fetch_optional(pool)
    .await?;
    Ok(found.is_some())
}

/// Uses the link up, once: `true` for the one request that did.
pub async fn redeem(pool: &Pool, token_hash: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    let done = sqlx::query(
        "UPDATE setup_link SET used_at = ?1
         WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1",
    )
    .bind(now)
    .bind(token_hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
