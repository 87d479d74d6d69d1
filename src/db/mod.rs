//! The database: pool, migrations, and every SQL statement of the application
//! (one submodule per table group), so another backend is a change in one place.

pub mod api_tokens;
pub mod audit_log;
pub mod backup;
pub mod dashboard;
pub mod git_repo_config;
pub mod gitsync;
pub mod identities;
pub mod import_fastflow;
pub mod import_fastflow_settings;
pub mod invitations;
pub mod notifications;
pub mod notify_settings;
pub mod query_audit;
pub mod run_attempts;
pub mod run_list;
pub mod run_stats;
pub mod runs;
pub mod schedule;
pub mod secrets;
pub mod sessions;
pub mod setup_link;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use run_list::{RunCursor, RunFilter, RunPage};
pub use runs::{NewRun, Run, RunOutcome};
pub type Pool = sqlx::SqlitePool;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
}

impl DbError {
    /// SQLITE_BUSY (5) and its extended codes (517: a read turned write lost
    /// its snapshot): another writer had the database; trying again may work.
    pub fn is_busy(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(e))
            if e.code().as_deref().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == 5))
    }

    /// SQLITE_FULL (13): the disk under the database is full.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Query(sqlx::Error::Database(e)) if e.code().as_deref() == Some("13"))
    }
}

/// Opens (creating if needed) the SQLite database with WAL, a busy timeout and
/// foreign keys, and applies the embedded migrations.
pub async fn connect(url: &str) -> Result<Pool, DbError> {
    configure_sqlite_once();
    let err = |source| DbError::Connect {
        url: url.to_string(),
        source,
    };
    let options = SqliteConnectOptions::from_str(url)
        .map_err(err)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // 1 MiB of page cache per connection (SQLite's default is 2 MiB): the lists
        // read a few index pages each, and the kernel's page cache holds the file.
        .pragma("cache_size", "-1024")
        // Rows cross from the connection's thread to the task through this channel.
        // sqlx's default (50) stalls the SQLite thread twice per 100-run list, and each
        // stall is a pair of thread wake-ups; a list page (≤ 1 001 rows) now fits.
        .row_buffer_size(1024);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .min_connections(1)
        // A connection whose COMMIT failed (SQLITE_FULL) can keep a transaction depth
        // that no ROLLBACK clears; every later BEGIN on it would fail. Discard it.
        .before_acquire(|conn, _meta| {
            Box::pin(async move {
                Ok(<sqlx::sqlite::SqliteTransactionManager as sqlx::TransactionManager>::get_transaction_depth(conn) == 0)
            })
        })
        .connect_with(options)
        .await
        .map_err(err)?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    Ok(pool)
}

/// Turns off SQLite's memory statistics before its first use: with them, every
/// allocation inside SQLite (one per column value a list reads) takes one global
/// mutex, for which the connection threads queued under concurrent list load.
fn configure_sqlite_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_config may only be called before sqlite3_initialize; if
        // SQLite is already initialized it returns SQLITE_MISUSE and changes nothing.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_config(
                libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
                0 as std::os::raw::c_int,
            )
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::debug!(
                rc,
                "SQLite was initialized already; memory statistics stay on"
            );
        }
    });
}

/// A trivial query: is the database answering?
pub async fn ping(pool: &Pool) -> Result<(), DbError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}

/// Bytes the database's pages take (page count × page size).
pub async fn size_bytes(pool: &Pool) -> Result<i64, DbError> {
    let (bytes,): (i64,) = sqlx::query_as(
        "SELECT p.page_count * s.page_size FROM pragma_page_count() p, pragma_page_size() s",
    )
    .fetch_one(pool)
    .await?;
    Ok(bytes)
}

/// The id of this installation, created on first use; it labels our containers so
/// that two installations sharing one Docker engine never touch each other's.
pub async fn instance_id(pool: &Pool) -> Result<String, DbError> {
    let candidate = uuid::Uuid::now_v7().simple().to_string();
    sqlx::query(
        "INSERT INTO instance (key, value) VALUES ('instance_id', ?) ON CONFLICT (key) DO NOTHING",
    )
    .bind(&candidate)
    .execute(pool)
    .await?;
    let id: String = sqlx::query_scalar("SELECT value FROM instance WHERE key = 'instance_id'")
        .fetch_one(pool)
        .await?;
    Ok(id)
}
