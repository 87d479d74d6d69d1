//! Personal API tokens as stored: name, owner (none for the CLI's), role, the
//! token's SHA-256, expiry, last use and revocation. Never the token itself.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    pub user_id: Option<String>,
    /// The owner's username, when there is one.
    pub username: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "t.id, t.name, t.user_id, u.username, t.role, t.created_at, t.expires_at, \
     t.last_used_at, t.revoked_at FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id";

pub struct NewApiToken<'a> {
    pub name: &'a str,
    pub user_id: Option<&'a str>,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Stores a token; `false` if its owner already has a live token of that name.
pub async fn insert(pool: &Pool, new: &NewApiToken<'_>) -> Result<bool, DbError> {
    let done = sqlx::query(
        "INSERT INTO api_tokens (id, name, user_id, role, token_hash, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(new.name)
    .bind(new.user_id)
    .bind(new.role)
    .bind(new.token_hash)
    .bind(Utc::now())
    .bind(new.expires_at)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The live token with this hash (not revoked; expiry is the caller's check).
pub async fn find_live(pool: &Pool, token_hash: &str) -> Result<Option<StoredToken>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} WHERE t.token_hash = ? AND t.revoked_at IS NULL"
    ))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?)
}

/// Notes a use, at most once a minute per token (a write per request would
/// serialize every request on the database).
pub async fn touch(pool: &Pool, id: &str) -> Result<(), DbError> {
    let now = Utc::now();
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2
         AND (last_used_at IS NULL OR last_used_at < ?3)",
    )
    .bind(now)
    .bind(id)
    .bind(now - chrono::Duration::minutes(1))
    .execute(pool)
    .await?;
    Ok(())
}

/// Every token, live ones first, newest first.
pub async fn list(pool: &Pool) -> Result<Vec<StoredToken>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC"
    ))
    .fetch_all(pool)
    .await?)
}

/// Revokes the live token `name` of `user_id` (`None`: the CLI's); whether one was.
pub async fn revoke(pool: &Pool, user_id: Option<&str>, name: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND user_id IS ? AND revoked_at IS NULL",
    )
    .bind(Utc::now())
    .bind(name)
    .bind(user_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The user's tokens not revoked, newest first.
pub async fn live_of(pool: &Pool, user_id: &str) -> Result<Vec<StoredToken>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} WHERE t.user_id = ? AND t.revoked_at IS NULL ORDER BY t.created_at DESC"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// Revokes the user's live token with this id; its name, if there was one.
pub async fn revoke_by_id(pool: &Pool, user_id: &str, id: &str) -> Result<Option<String>, DbError> {
    Ok(sqlx::query_scalar(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL
         RETURNING name",
    )
    .bind(Utc::now())
    .bind(id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?)
}
