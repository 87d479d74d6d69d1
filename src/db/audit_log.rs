//! The audit log as stored: one row per sign-in, failed sign-in and change,
//! read newest first with filters and keyset pages.

use chrono::{DateTime, Utc};

use super::{DbError, Pool};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_id: Option<String>,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    pub actor: String,
    pub actor_id: Option<String>,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

pub async fn insert(pool: &Pool, e: &NewEntry) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, actor_id, client_addr, action, target, outcome, detail)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(Utc::now())
    .bind(&e.actor)
    .bind(&e.actor_id)
    .bind(&e.client_addr)
    .bind(&e.action)
    .bind(&e.target)
    .bind(&e.outcome)
    .bind(&e.detail)
    .execute(pool)
    .await?;
    Ok(())
}

/// What to show; every field optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub actor: Option<String>,
    /// An action, or its prefix ending in `.` (`run.` matches every run action).
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Entries older than this id (the next page).
    pub before_id: Option<i64>,
}

/// Up to `limit` entries, newest first.
pub async fn list(pool: &Pool, f: &Filter, limit: i64) -> Result<Vec<Entry>, DbError> {
    let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "SELECT id, at, actor, actor_id, client_addr, action, target, outcome, detail
         FROM audit_log WHERE 1 = 1",
    );
    if let Some(actor) = &f.actor {
        q.push(" AND actor = ").push_bind(actor.clone());
    }
    if let Some(action) = &f.action {
        if let Some(prefix) = action.strip_suffix('.') {
            // The family and its head (`login.` is `login`, `login.failed`, …); a
            // range instead of LIKE, so `_` and `%` in the input mean themselves.
            q.push(" AND (action = ").push_bind(prefix.to_string());
            q.push(" OR (action >= ").push_bind(format!("{prefix}."));
            q.push(" AND action < ").push_bind(format!("{prefix}/"));
            q.push("))");
        } else {
            q.push(" AND action = ").push_bind(action.clone());
        }
    }
    if let Some(outcome) = &f.outcome {
        q.push(" AND outcome = ").push_bind(outcome.clone());
    }
    if let Some(since) = f.since {
        q.push(" AND at >= ").push_bind(since);
    }
    if let Some(until) = f.until {
        q.push(" AND at < ").push_bind(until);
    }
    if let Some(before) = f.before_id {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    Ok(q.build_query_as().fetch_all(pool).await?)
}

/// The actors and actions seen, for the filter menus (at most 200 each). Only
/// actors of entries that succeeded: anyone can fail a sign-in under any name,
/// and those names must not crowd out the real users.
pub async fn distinct_values(pool: &Pool) -> Result<(Vec<String>, Vec<String>), DbError> {
    let actors = sqlx::query_scalar(
        "SELECT actor FROM (SELECT actor, MAX(id) AS last FROM audit_log WHERE outcome = 'ok'
                            GROUP BY actor ORDER BY last DESC LIMIT 200)
         ORDER BY actor COLLATE NOCASE",
    )
    .fetch_all(pool)
    .await?;
    let actions = sqlx::query_scalar(
        "SELECT action FROM audit_log GROUP BY action ORDER BY action LIMIT 200",
    )
    .fetch_all(pool)
    .await?;
    Ok((actors, actions))
}
