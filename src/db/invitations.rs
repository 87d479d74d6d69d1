//! Invitations as stored: the recipient's e-mail, the role they get, the
//! SHA-256 of the link's token, expiry and use.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Invitation {
    pub id: String,
    pub recipient_email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub created_by_id: Option<String>,
}

const COLUMNS: &str = "id, recipient_email, role, created_at, expires_at, used_at, created_by, \
     created_by_id FROM invitations";

pub struct NewInvitation<'a> {
    pub recipient_email: &'a str,
    pub token_hash: &'a str,
    pub role: &'a str,
    pub expires_at: DateTime<Utc>,
    pub created_by: Option<&'a str>,
    pub created_by_id: Option<&'a str>,
}

pub async fn insert(pool: &Pool, new: &NewInvitation<'_>) -> Result<Invitation, DbError> {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO invitations (id, recipient_email, token_hash, role, created_at, expires_at,
             created_by, created_by_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(new.recipient_email)
    .bind(new.token_hash)
    .bind(new.role)
    .bind(Utc::now())
    .bind(new.expires_at)
    .bind(new.created_by)
    .bind(new.created_by_id)
    .execute(pool)
    .await?;
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} WHERE id = ?"))
        .bind(&id)
        .fetch_one(pool)
        .await?)
}

/// Newest first.
pub async fn list(pool: &Pool) -> Result<Vec<Invitation>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} ORDER BY created_at DESC"))
            .fetch_all(pool)
            .await?,
    )
}

/// The unused, unexpired invitation with this token hash.
pub async fn find_open(pool: &Pool, token_hash: &str) -> Result<Option<Invitation>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?"
    ))
    .bind(token_hash)
    .bind(Utc::now())
    .fetch_optional(pool)
    .await?)
}

/// Marks the invitation used, if it still is open: `false` when another
/// sign-in used it first (or it expired meanwhile).
pub async fn redeem(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE invitations SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(Utc::now())
    .bind(id)
    .bind(Utc::now())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records which user the invitation made.
pub async fn set_used_by(pool: &Pool, id: &str, user_id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE invitations SET used_by = ? WHERE id = ?")
        .bind(user_id)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Revokes (deletes) an invitation; `false` when there is none.
pub async fn delete(pool: &Pool, id: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM invitations WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
