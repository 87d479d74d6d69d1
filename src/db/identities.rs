//! Sign-in identities at OAuth providers: which provider subject belongs to
//! which user, and what the provider last said about it.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Identity {
    pub user_id: String,
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub login: Option<String>,
    pub linked_at: DateTime<Utc>,
}

const COLUMNS: &str = "user_id, provider, subject, email, login, linked_at FROM user_identities";

/// The user id holding `subject` at `provider`.
pub async fn owner(pool: &Pool, provider: &str, subject: &str) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_scalar(
            "SELECT user_id FROM user_identities WHERE provider = ? AND subject = ?",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(pool)
        .await?,
    )
}

/// How linking ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Linked {
    Done,
    /// The subject belongs to another user.
    TakenByOther,
    /// The user has another identity at this provider (and `replace` was off).
    UserHasAnother,
}

/// Links `subject` at `provider` to the user; refused when another user holds
/// the subject. An earlier identity of the user at that provider is replaced
/// only with `replace` (the user chose to link); a sign-in matched by e-mail
/// never swaps the account a user signs in with.
pub async fn link(
    pool: &Pool,
    user_id: &str,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    login: Option<&str>,
    replace: bool,
) -> Result<Linked, DbError> {
    let mut tx = pool.begin().await?;
    let holder: Option<String> = sqlx::query_scalar(
        "SELECT user_id FROM user_identities WHERE provider = ? AND subject = ?",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(&mut *tx)
    .await?;
    if holder.as_deref().is_some_and(|h| h != user_id) {
        return Ok(Linked::TakenByOther);
    }
    if !replace {
        let own: Option<String> = sqlx::query_scalar(
            "SELECT subject FROM user_identities WHERE user_id = ? AND provider = ?",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_optional(&mut *tx)
        .await?;
        if own.is_some_and(|s| s != subject) {
            return Ok(Linked::UserHasAnother);
        }
    }
    sqlx::query(
        "INSERT INTO user_identities (user_id, provider, subject, email, login, linked_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, provider) DO UPDATE SET subject = excluded.subject,
             email = excluded.email, login = excluded.login",
    )
    .bind(user_id)
    .bind(provider)
    .bind(subject)
    .bind(email)
    .bind(login)
    .bind(Utc::now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Linked::Done)
}

/// Refreshes what the provider said at this sign-in.
pub async fn refresh(
    pool: &Pool,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    login: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE user_identities SET email = ?, login = ? WHERE provider = ? AND subject = ?",
    )
    .bind(email)
    .bind(login)
    .bind(provider)
    .bind(subject)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user's identities, by provider.
pub async fn of_user(pool: &Pool, user_id: &str) -> Result<Vec<Identity>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} WHERE user_id = ? ORDER BY provider"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await?)
}

/// Every identity (the Users page shows them per user).
pub async fn all(pool: &Pool) -> Result<Vec<Identity>, DbError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLUMNS} ORDER BY user_id, provider"))
            .fetch_all(pool)
            .await?,
    )
}

/// Unlinks the user's identity at `provider` unless it is their only way to
/// sign in (no password and no other identity). `Ok(None)`: nothing linked.
pub async fn unlink_unless_last(
    pool: &Pool,
    user_id: &str,
    provider: &str,
) -> Result<Option<bool>, DbError> {
    let mut tx = pool.begin().await?;
    let (linked, others, has_password): (i64, i64, bool) = sqlx::query_as(
        "SELECT
           (SELECT COUNT(*) FROM user_identities WHERE user_id = ?1 AND provider = ?2),
           (SELECT COUNT(*) FROM user_identities WHERE user_id = ?1 AND provider <> ?2),
           (SELECT password_hash IS NOT NULL FROM users WHERE id = ?1)",
    )
    .bind(user_id)
    .bind(provider)
    .fetch_one(&mut *tx)
    .await?;
    if linked == 0 {
        return Ok(None);
    }
    if others == 0 && !has_password {
        return Ok(Some(false));
    }
    sqlx::query("DELETE FROM user_identities WHERE user_id = ? AND provider = ?")
        .bind(user_id)
        .bind(provider)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(true))
}
