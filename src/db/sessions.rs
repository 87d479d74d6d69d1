//! The session store (tower-sessions' SQLite store, its table `tower_sessions`
//! in our database; its SQL is the crate's own).

use tower_sessions_sqlx_store::SqliteStore;

use super::{DbError, Pool};

pub fn store(pool: &Pool) -> SqliteStore {
    SqliteStore::new(pool.clone())
}

/// Creates the store's table if it is missing.
pub async fn migrate(pool: &Pool) -> Result<(), DbError> {
    store(pool).migrate().await.map_err(DbError::Query)
}

/// Deletes sessions past their expiry (an anonymous session is made by every
/// OAuth sign-in that starts; nothing else would ever remove it).
pub async fn delete_expired(pool: &Pool) -> Result<(), DbError> {
    use tower_sessions::ExpiredDeletion;
    store(pool).delete_expired().await.map_err(|e| {
        DbError::Query(sqlx::Error::Protocol(format!(
            "deleting expired sessions: {e}"
        )))
    })
}
