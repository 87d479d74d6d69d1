//! The statements `fastflow backup` and `restore` need: a consistent copy of the
//! live database, and checks of a copy before it is put back.

use std::path::Path;

use super::{DbError, Pool};

/// Writes a consistent copy of the database to `target` (which must not exist)
/// while other connections go on reading and writing: `VACUUM INTO` reads one
/// snapshot of the database, WAL included.
pub async fn copy_into(pool: &Pool, target: &Path) -> Result<(), DbError> {
    sqlx::query("VACUUM INTO ?")
        .bind(target.to_string_lossy().into_owned())
        .execute(pool)
        .await?;
    Ok(())
}

/// Runs and finished runs in a database.
pub async fn run_counts(pool: &Pool) -> Result<(i64, i64), DbError> {
    let row: (i64, i64) = sqlx::query_as("SELECT COUNT(*), COUNT(finished_at) FROM runs")
        .fetch_one(pool)
        .await?;
    Ok(row)
}

/// SQLite's own check of the file's structure: `ok`, or what is wrong.
pub async fn quick_check(pool: &Pool) -> Result<String, DbError> {
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA quick_check(5)")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(r,)| r)
        .collect::<Vec<_>>()
        .join("; "))
}
