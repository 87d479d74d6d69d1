//! Retry attempts grouped under their first run: the later automatic attempts
//! of a page of first runs (followed through `previous_run_id`, an index read
//! per step) and how many later attempts a list holds (the partial index
//! `runs_retries`, which holds only them).

use sqlx::{QueryBuilder, Sqlite};

use super::{DbError, Pool, Run};

/// The longest retry chain followed under one first run (`retries` allows
/// fewer; the cap keeps a damaged chain from growing a page without bound).
pub const MAX_LATER_ATTEMPTS: i64 = 100;

/// A later attempt and the first run of its chain.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LaterAttempt {
    #[sqlx(flatten)]
    pub run: Run,
    pub first_run_id: String,
}

/// The automatic retries (attempt > 1) that follow each of `first`, grouped by
/// first run and in attempt order. A "Run again" starts a new chain (attempt 1)
/// and is not among them. `CROSS JOIN` fixes the join order (the chain outside,
/// `runs_by_previous` inside): left to choose, the planner walked all of `runs`.
pub async fn later_attempts(pool: &Pool, first: &[String]) -> Result<Vec<LaterAttempt>, DbError> {
    if first.is_empty() {
        return Ok(Vec::new());
    }
    Ok(later_attempts_query(first)
        .build_query_as()
        .fetch_all(pool)
        .await?)
}

fn later_attempts_query(first: &[String]) -> QueryBuilder<'_, Sqlite> {
    let mut q = QueryBuilder::new(
        "WITH RECURSIVE chain(id, first_run_id, depth) AS (SELECT id, id, 0 FROM runs WHERE id IN (",
    );
    let mut ids = q.separated(", ");
    for id in first {
        ids.push_bind(id);
    }
    q.push(
        ") UNION ALL SELECT r.id, c.first_run_id, c.depth + 1 FROM chain c \
         CROSS JOIN runs r ON r.previous_run_id = c.id WHERE r.attempt > 1 AND c.depth < ",
    )
    .push_bind(MAX_LATER_ATTEMPTS)
    .push(
        ") SELECT runs.*, chain.first_run_id FROM chain CROSS JOIN runs ON runs.id = chain.id \
         WHERE chain.depth > 0 ORDER BY chain.first_run_id, chain.depth",
    );
    q
}

/// The SQL text for `n` first runs (for query-plan checks).
pub fn later_attempts_sql(n: usize) -> String {
    let ids = vec![String::new(); n];
    later_attempts_query(&ids).into_sql()
}

/// How many automatic retries the runs of `pipeline` (or of all) hold.
pub async fn later_attempts_count(pool: &Pool, pipeline: Option<&str>) -> Result<i64, DbError> {
    let mut q = QueryBuilder::new(LATER_ATTEMPTS_COUNT_SQL);
    if let Some(p) = pipeline {
        q.push(" AND pipeline_name = ").push_bind(p);
    }
    Ok(q.build_query_scalar().fetch_one(pool).await?)
}

/// The count's SQL without a pipeline (for query-plan checks).
pub const LATER_ATTEMPTS_COUNT_SQL: &str = "SELECT COUNT(*) FROM runs WHERE attempt > 1";
