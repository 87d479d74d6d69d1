//! Users as stored: username, e-mail, role, status, blocked, the argon2id hash
//! of a local account's password, and the session epoch that ends all of a
//! user's sessions at once when it rises.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub role: String,
    pub status: String,
    pub blocked: bool,
    pub password_hash: Option<String>,
    pub session_epoch: i64,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, username, email, role, status, blocked, password_hash, session_epoch, \
     created_at, last_login_at FROM users";

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub role: &'a str,
    pub password_hash: Option<&'a str>,
    /// `active`, or `pending` for a join request.
    pub status: &'a str,
}

/// Adds a user; `None` if the username is taken (in any case).
pub async fn insert(pool: &Pool, new: &NewUser<'_>) -> Result<Option<User>, DbError> {
    let id = uuid::Uuid::now_v7().to_string();
    let done = sqlx::query(
        "INSERT INTO users (id, username, email, role, password_hash, status, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(new.username)
    .bind(new.email)
    .bind(new.role)
    .bind(new.password_hash)
    .bind(new.status)
    .bind(Utc::now())
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    by_id(pool, &id).await
}

pub async fn by_id(pool: &Pool, id: &str) -> Result<Option<User>, DbError> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} WHERE id = ?"))
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// By username, ignoring ASCII case (as people type it at a login form).
pub async fn by_username(pool: &Pool, username: &str) -> Result<Option<User>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} WHERE username = ? COLLATE NOCASE"
    ))
    .bind(username)
    .fetch_optional(pool)
    .await?)
}

/// The users with this e-mail, ignoring case (oldest first).
pub async fn by_email(pool: &Pool, email: &str) -> Result<Vec<User>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} WHERE email = ? COLLATE NOCASE ORDER BY created_at"
    ))
    .bind(email)
    .fetch_all(pool)
    .await?)
}

/// Sets `active`, `pending` or `rejected` (a join request's answer), and the role.
pub async fn set_status(pool: &Pool, id: &str, status: &str, role: &str) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE users SET status = ?, role = ?, session_epoch = session_epoch + 1 WHERE id = ?",
    )
    .bind(status)
    .bind(role)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets the e-mail when none is known yet.
pub async fn fill_email(pool: &Pool, id: &str, email: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET email = ? WHERE id = ? AND email IS NULL")
        .bind(email)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Replaces the password (local accounts); other sessions end.
pub async fn set_password(pool: &Pool, id: &str, hash: &str) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1 WHERE id = ?",
    )
    .bind(hash)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many users exist (none: the first-run setup link is offered).
pub async fn count(pool: &Pool) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(pool)
        .await?)
}

pub async fn set_last_login(pool: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET last_login_at = ? WHERE id = ?")
        .bind(Utc::now())
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of the user (blocked, role changed): sessions carry the
/// epoch they were made under, and an older one is refused.
pub async fn end_sessions(pool: &Pool, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Every user, by username.
pub async fn list(pool: &Pool) -> Result<Vec<User>, DbError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} ORDER BY username COLLATE NOCASE"
    ))
    .fetch_all(pool)
    .await?)
}

/// Active, unblocked admins (none: the setup link is offered).
pub async fn count_admins(pool: &Pool) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'ADMIN' AND blocked = 0 AND status = 'active'",
    )
    .fetch_one(pool)
    .await?)
}

/// What a change guarded by the last-admin rule did.
#[derive(Debug, PartialEq, Eq)]
pub enum Guarded {
    Done,
    NotFound,
    /// Refused: the user is the last active, unblocked admin.
    LastAdmin,
}

/// True for a row that is not an active admin, or not the last one. Checked in
/// the same statement as the change, so two admins blocking each other at
/// once cannot both succeed (SQLite runs one write at a time).
const KEEPS_AN_ADMIN: &str = "(role <> 'ADMIN' OR status <> 'active' OR blocked = 1
     OR EXISTS (SELECT 1 FROM users other WHERE other.id <> users.id AND other.role = 'ADMIN'
                AND other.status = 'active' AND other.blocked = 0))";

async fn guarded(pool: &Pool, id: &str, affected: u64) -> Result<Guarded, DbError> {
    Ok(if affected > 0 {
        Guarded::Done
    } else if by_id(pool, id).await?.is_some() {
        Guarded::LastAdmin
    } else {
        Guarded::NotFound
    })
}

/// Changes the role (a change ends all the user's sessions), never leaving no admin.
pub async fn set_role(pool: &Pool, id: &str, role: &str) -> Result<Guarded, DbError> {
    let keep = if role == "ADMIN" {
        "1 = 1"
    } else {
        KEEPS_AN_ADMIN
    };
    let done = sqlx::query(&format!(
        "UPDATE users SET session_epoch = session_epoch + (role <> ?1), role = ?1
         WHERE id = ?2 AND {keep}"
    ))
    .bind(role)
    .bind(id)
    .execute(pool)
    .await?;
    guarded(pool, id, done.rows_affected()).await
}

/// Deletes the user (their tokens go with them), never the last admin.
pub async fn delete(pool: &Pool, id: &str) -> Result<Guarded, DbError> {
    let done = sqlx::query(&format!(
        "DELETE FROM users WHERE id = ? AND {KEEPS_AN_ADMIN}"
    ))
    .bind(id)
    .execute(pool)
    .await?;
    guarded(pool, id, done.rows_affected()).await
}

/// Blocks (ending all their sessions at once; never the last admin) or unblocks.
pub async fn set_blocked(pool: &Pool, id: &str, blocked: bool) -> Result<Guarded, DbError> {
    let keep = if blocked { KEEPS_AN_ADMIN } else { "1 = 1" };
    let done = sqlx::query(&format!(
        "UPDATE users SET blocked = ?, session_epoch = session_epoch + ? WHERE id = ? AND {keep}"
    ))
    .bind(blocked)
    .bind(i64::from(blocked))
    .bind(id)
    .execute(pool)
    .await?;
    guarded(pool, id, done.rows_affected()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn usernames_are_unique_in_any_case_and_sessions_end_together() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("u.db").display());
        let pool = crate::db::connect(&url).await.unwrap();
        let new = |name| NewUser {
            username: name,
            email: Some("a@example.com"),
            role: "ADMIN",
            password_hash: None,
            status: "active",
        };
        let admin = insert(&pool, &new("Admin")).await.unwrap().unwrap();
        // The only admin cannot be blocked, demoted or deleted; a second one can.
        assert_eq!(
            set_blocked(&pool, &admin.id, true).await.unwrap(),
            Guarded::LastAdmin
        );
        assert_eq!(
            set_role(&pool, &admin.id, "WRITE").await.unwrap(),
            Guarded::LastAdmin
        );
        assert_eq!(delete(&pool, &admin.id).await.unwrap(), Guarded::LastAdmin);
        assert_eq!(delete(&pool, "nobody").await.unwrap(), Guarded::NotFound);
        let second = insert(&pool, &new("second")).await.unwrap().unwrap();
        assert_eq!(
            set_blocked(&pool, &second.id, true).await.unwrap(),
            Guarded::Done
        );
        assert_eq!(
            set_blocked(&pool, &admin.id, true).await.unwrap(),
            Guarded::LastAdmin
        );
        assert!(insert(&pool, &new("admin")).await.unwrap().is_none());
        assert_eq!(
            by_username(&pool, "ADMIN").await.unwrap().unwrap().id,
            admin.id
        );
        assert_eq!(count(&pool).await.unwrap(), 2);
        assert_eq!(admin.session_epoch, 0);
        end_sessions(&pool, &admin.id).await.unwrap();
        assert_eq!(
            by_id(&pool, &admin.id)
                .await
                .unwrap()
                .unwrap()
                .session_epoch,
            1
        );
        set_last_login(&pool, &admin.id).await.unwrap();
        assert!(
            by_id(&pool, &admin.id)
                .await
                .unwrap()
                .unwrap()
                .last_login_at
                .is_some()
        );
    }
}
