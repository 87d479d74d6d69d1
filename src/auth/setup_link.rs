//! The first-run setup link, like Jupyter's token link: while no active admin
//! exists (a fresh install, or one where only join requests came in), the
//! server makes a random one-time link at start and prints it; opening it
//! lets the first admin be created. Valid once, for 24 hours; each start makes
//! a new one. Stored only as its SHA-256, like API tokens.

use chrono::{Duration, Utc};

use super::api_token;
use crate::db::{self, DbError, Pool};

/// How long a link works.
pub const VALID_FOR_HOURS: i64 = 24;

/// The path and query of a fresh link while no active admin exists (`None`
/// once one does); the previous link stops working.
pub async fn issue_if_no_user(pool: &Pool) -> Result<Option<String>, DbError> {
    if db::users::count_admins(pool).await? > 0 {
        return Ok(None);
    }
    let Ok(made) = api_token::generate() else {
        return Ok(None);
    };
    let expires = Utc::now() + Duration::hours(VALID_FOR_HOURS);
    db::setup_link::replace(pool, &made.hash, expires).await?;
    Ok(Some(format!("/setup?token={}", made.token.expose())))
}

/// Whether `token` opens the setup page now.
pub async fn is_valid(pool: &Pool, token: &str) -> Result<bool, DbError> {
    db::setup_link::is_valid(pool, &api_token::hash(token)).await
}

/// Uses the link up; `true` for exactly one caller, and only while no active
/// admin exists.
pub async fn redeem(pool: &Pool, token: &str) -> Result<bool, DbError> {
    if db::users::count_admins(pool).await? > 0 {
        return Ok(false);
    }
    db::setup_link::redeem(pool, &api_token::hash(token)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool(dir: &std::path::Path) -> Pool {
        let url = format!("sqlite://{}", dir.join("t.db").display());
        db::connect(&url).await.unwrap()
    }

    #[tokio::test]
    async fn a_link_works_once_and_the_next_start_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(dir.path()).await;
        let first = issue_if_no_user(&pool).await.unwrap().unwrap();
        let token = first.trim_start_matches("/setup?token=").to_string();
        assert!(is_valid(&pool, &token).await.unwrap());
        let second = issue_if_no_user(&pool).await.unwrap().unwrap();
        let token2 = second.trim_start_matches("/setup?token=").to_string();
        assert!(
            !is_valid(&pool, &token).await.unwrap(),
            "replaced at the next start"
        );
        assert!(!redeem(&pool, "ff_wrong").await.unwrap());
        assert!(redeem(&pool, &token2).await.unwrap());
        assert!(!redeem(&pool, &token2).await.unwrap(), "only once");
        assert!(!is_valid(&pool, &token2).await.unwrap());
        // A join request (a pending user) does not end the need for a first admin…
        db::users::insert(
            &pool,
            &db::users::NewUser {
                username: "stranger",
                email: None,
                role: "READONLY",
                password_hash: None,
                status: "pending",
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert!(issue_if_no_user(&pool).await.unwrap().is_some());
        // …once an admin exists there is no link at all.
        db::users::insert(
            &pool,
            &db::users::NewUser {
                username: "admin",
                email: None,
                role: "ADMIN",
                password_hash: None,
                status: "active",
            },
        )
        .await
        .unwrap()
        .unwrap();
        assert!(issue_if_no_user(&pool).await.unwrap().is_none());
    }
}
