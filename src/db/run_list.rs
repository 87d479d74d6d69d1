//! The run lists: filters that the planner can match to an index, keyset paging
//! ("runs older than this one") that costs the same at any depth, and totals read
//! from `run_totals` instead of counting rows. `offset` paging stays for Fast-Flow
//! 1.x clients and walks the rows it skips (the documented slow path).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::{QueryBuilder, Sqlite};

use super::{DbError, Pool, Run};
use crate::run_status::RunStatus;

/// Longest cursor accepted (a stored time and a run id fit in far less).
const MAX_CURSOR_LEN: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub pipeline_name: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: i64,
    pub offset: i64,
    /// Only runs after this one in list order (older); `offset` is not used then.
    pub after: Option<RunCursor>,
    /// Only runs before this one in list order (newer, the page just before it);
    /// `offset` and `after` are not used then.
    pub before: Option<RunCursor>,
    /// The trigger, its retries included (`scheduler` also matches `scheduler_retry`).
    pub trigger: Option<String>,
    pub error_type: Option<crate::run_status::ErrorType>,
    /// Triggered at or after this time / before this time (RFC 3339, as stored).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only first attempts (the runs list shows later attempts under them, see
    /// `run_attempts`). Pages only: totals count every attempt.
    pub first_attempts: bool,
    /// Only runs that have ended (a duration history). Pages only.
    pub finished_only: bool,
}

impl RunFilter {
    /// Whether a filter that `run_totals` does not keep is set (the total is counted then).
    fn narrowed(&self) -> bool {
        self.trigger.is_some()
            || self.error_type.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }
}

/// A place in a run list: the (trigger time as stored, id) of the last run shown.
/// Opaque to clients: URL-safe base64, no padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCursor {
    started_at: String,
    id: String,
}

impl RunCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}\n{}", self.started_at, self.id))
    }

    /// A well-formed cursor (for query-plan checks).
    pub fn example() -> Self {
        Self {
            started_at: "2026-01-01T00:00:00+00:00".into(),
            id: "00000000-0000-0000-0000-000000000000".into(),
        }
    }

    /// `None` unless `text` is a cursor this server handed out (any well-formed one).
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_LEN {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (started_at, id) = raw.split_once('\n')?;
        let well_formed = chrono::DateTime::parse_from_rfc3339(started_at).is_ok()
            && !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        well_formed.then(|| Self {
            started_at: started_at.to_string(),
            id: id.to_string(),
        })
    }
}

/// A listed run with its key as stored, so the cursor matches the row exactly.
#[derive(sqlx::FromRow)]
struct ListedRun {
    #[sqlx(flatten)]
    run: Run,
    list_key: String,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct RunPage {
    /// Listed runs; their `env_vars` and `parameters` are empty (read the run for them).
    pub runs: Vec<Run>,
    /// Where the next (older) page starts; `None` on the last page.
    pub next: Option<RunCursor>,
    /// Where the previous (newer) page ends; `None` on the first page.
    pub previous: Option<RunCursor>,
}

/// `head` (ending in a WHERE clause) and only the filters that are set, so each
/// is an index equality (`runs` and `run_totals` name the columns alike).
fn filtered<'a>(head: &str, filter: &'a RunFilter) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new(head);
    if let Some(p) = &filter.pipeline_name {
        q.push(" AND pipeline_name = ").push_bind(p);
    }
    if let Some(s) = filter.status {
        q.push(" AND status = ").push_bind(s);
    }
    q
}

/// A run's trigger without its `_retry` suffix, exactly as the index
/// `runs_by_trigger` (migration 0017) names it, so the planner can use it.
const TRIGGER_KIND: &str = "replace(triggered_by, '_retry', '')";

/// `filtered`, plus the filters only `runs` has: trigger, error type, time range.
fn narrowed<'a>(head: &str, filter: &'a RunFilter) -> QueryBuilder<'a, Sqlite> {
    let mut q = filtered(head, filter);
    if let Some(t) = &filter.trigger {
        q.push(format_args!(" AND {TRIGGER_KIND} = ")).push_bind(t);
    }
    if let Some(e) = filter.error_type {
        q.push(" AND error_type = ").push_bind(e);
    }
    if let Some(t) = filter.since {
        q.push(" AND started_at >= ").push_bind(t);
    }
    if let Some(t) = filter.until {
        q.push(" AND started_at < ").push_bind(t);
    }
    q
}

/// The page's SQL. Lists show no overrides, so `env_vars` and `parameters` are
/// read as empty: decoding two JSON maps per row was a good part of a list's cost.
fn page_query(filter: &RunFilter) -> QueryBuilder<'_, Sqlite> {
    let mut q = narrowed(
        "SELECT id, pipeline_name, status, triggered_by, '{}' AS env_vars, '{}' AS parameters, \
         started_at, claimed_at, container_started_at, finished_at, exit_code, error_type, \
         error_message, image, container_id, log_file, log_lines, log_bytes, log_truncated, \
         attempt, previous_run_id, not_before, setup_duration, peak_cpu_percent, \
         peak_memory_bytes, soft_limit_warning, metrics_error, run_config_id, parent_run_id, \
         wait_for_previous, git_sha, git_branch, git_subject, '{}' AS injected_secrets, \
         started_at AS list_key \
         FROM runs WHERE 1 = 1",
        filter,
    );
    if filter.first_attempts {
        // A retry whose first attempt retention removed stands for its chain.
        q.push(
            " AND (attempt = 1 OR NOT EXISTS (SELECT 1 FROM runs AS first WHERE first.id = runs.previous_run_id))",
        );
    }
    if filter.finished_only {
        q.push(" AND finished_at IS NOT NULL");
    }
    // Newer pages are read upwards from their cursor and reversed.
    let (cursor, op, order) = match (&filter.before, &filter.after) {
        (Some(c), _) => (Some(c), ">", "ASC"),
        (None, Some(c)) => (Some(c), "<", "DESC"),
        (None, None) => (None, "", "DESC"),
    };
    if let Some(c) = cursor {
        q.push(format_args!(" AND (started_at, id) {op} ("))
            .push_bind(&c.started_at)
            .push(", ")
            .push_bind(&c.id)
            .push(")");
    }
    // One more than asked: whether a further page exists, without counting.
    q.push(format_args!(
        " ORDER BY started_at {order}, id {order} LIMIT "
    ))
    .push_bind(filter.limit.saturating_add(1));
    if cursor.is_none() && filter.offset > 0 {
        q.push(" OFFSET ").push_bind(filter.offset);
    }
    q
}

/// The SQL text of a page query for `filter` (for query-plan checks).
pub fn page_sql(filter: &RunFilter) -> String {
    page_query(filter).into_sql()
}

/// Runs matching the filter, newest first.
pub async fn page(pool: &Pool, filter: &RunFilter) -> Result<RunPage, DbError> {
    let mut rows: Vec<ListedRun> = page_query(filter).build_query_as().fetch_all(pool).await?;
    let more = rows.len() as i64 > filter.limit;
    rows.truncate(usize::try_from(filter.limit).unwrap_or(0));
    let upwards = filter.before.is_some();
    if upwards {
        rows.reverse();
    }
    let cursor_of = |row: Option<&ListedRun>| {
        row.map(|r| RunCursor {
            started_at: r.list_key.clone(),
            id: r.run.id.clone(),
        })
    };
    // Across a cursor there is always a page (its run, unless since removed).
    let older = if upwards { true } else { more };
    let newer = if upwards {
        more
    } else {
        filter.after.is_some() || filter.offset > 0
    };
    Ok(RunPage {
        next: cursor_of(rows.last()).filter(|_| older),
        previous: cursor_of(rows.first()).filter(|_| newer),
        runs: rows.into_iter().map(|r| r.run).collect(),
    })
}

/// The total of a filter, from `run_totals` (at most five rows per pipeline);
/// counted on `runs` when a filter that table does not keep is set.
fn total_query(filter: &RunFilter) -> QueryBuilder<'_, Sqlite> {
    if filter.narrowed() {
        return narrowed("SELECT COUNT(*) FROM runs WHERE 1 = 1", filter);
    }
    filtered(
        "SELECT COALESCE(SUM(runs), 0) FROM run_totals WHERE 1 = 1",
        filter,
    )
}

/// The SQL text of a total query for `filter` (for query-plan checks).
pub fn total_sql(filter: &RunFilter) -> String {
    total_query(filter).into_sql()
}

/// How many runs match the filter (paging aside).
pub async fn total(pool: &Pool, filter: &RunFilter) -> Result<i64, DbError> {
    Ok(total_query(filter)
        .build_query_scalar()
        .fetch_one(pool)
        .await?)
}

/// How many runs match, counting no further than `cap`: `(count, more)`, where
/// `more` says the count stopped at the cap. The exact total from `run_totals`
/// when only pipeline and status are set; otherwise the count reads at most
/// `cap + 1` index entries, so a broad filter over a long history stays cheap.
pub async fn total_up_to(
    pool: &Pool,
    filter: &RunFilter,
    cap: i64,
) -> Result<(i64, bool), DbError> {
    if !filter.narrowed() {
        return Ok((total(pool, filter).await?, false));
    }
    let n: i64 = capped_total_query(filter, cap)
        .build_query_scalar()
        .fetch_one(pool)
        .await?;
    Ok((n.min(cap), n > cap))
}

fn capped_total_query(filter: &RunFilter, cap: i64) -> QueryBuilder<'_, Sqlite> {
    let mut q = narrowed(
        "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE 1 = 1",
        filter,
    );
    q.push(" LIMIT ").push_bind(cap.saturating_add(1)).push(")");
    q
}

/// The SQL text of a capped count for a narrowed `filter` (for query-plan checks).
pub fn capped_total_sql(filter: &RunFilter) -> String {
    capped_total_query(filter, 1).into_sql()
}

/// A page and the total: the Fast-Flow 1.x list contract.
pub async fn list(pool: &Pool, filter: &RunFilter) -> Result<(RunPage, i64), DbError> {
    Ok((page(pool, filter).await?, total(pool, filter).await?))
}

/// The attempts that retry `run` (automatic retries and "Run again"), oldest first:
/// the retry chain's forward link on the run page.
pub async fn next_attempts(pool: &Pool, run: &str) -> Result<Vec<Run>, DbError> {
    Ok(sqlx::query_as::<_, Run>(
        "SELECT * FROM runs WHERE previous_run_id = ? ORDER BY started_at, id LIMIT 20",
    )
    .bind(run)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_refuses_what_it_did_not_make() {
        let c = RunCursor {
            started_at: "2026-11-28T04:10:00.123456789+00:00".into(),
            id: "0193a5b2-7c1e-7aa0-9f3e-3c2b1a000001".into(),
        };
        assert_eq!(RunCursor::decode(&c.encode()), Some(c));
        for bad in ["", "x", "%%%", &"A".repeat(300)] {
            assert_eq!(RunCursor::decode(bad), None, "{bad}");
        }
        let not_a_time = URL_SAFE_NO_PAD.encode("yesterday\nabc");
        assert_eq!(RunCursor::decode(&not_a_time), None);
        let odd_id = URL_SAFE_NO_PAD.encode("2026-11-28T04:10:00+00:00\n' OR 1=1 --");
        assert_eq!(RunCursor::decode(&odd_id), None);
    }
}
