//! The scheduler's tables: `schedule_jobs` (one row per job: its override and its
//! cursor) and `schedule_slots`, the ledger that records the fate of every slot.
//! A slot's ledger row and the run it starts are written in one transaction, and
//! the primary key (job, time) makes a slot fire at most once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::runs::{NewRun, insert_in};
use super::{DbError, Pool};

/// What the scheduler keeps per job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub pipeline_name: String,
    pub run_config_id: Option<String>,
    pub kind: String,
    pub fingerprint: String,
    pub defined_at: DateTime<Utc>,
    pub enabled_override: Option<bool>,
    pub override_at: Option<DateTime<Utc>>,
    pub last_slot_time: Option<DateTime<Utc>>,
    pub last_run_time: Option<DateTime<Utc>>,
    pub run_count: i64,
}

/// A job as the pipelines describe it now.
#[derive(Debug, Clone)]
pub struct JobKey {
    pub id: String,
    pub pipeline_name: String,
    pub run_config_id: Option<String>,
    pub kind: &'static str,
    pub fingerprint: String,
}

/// One ledger row.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SlotRow {
    #[serde(skip)]
    pub job_id: String,
    pub scheduled_time: DateTime<Utc>,
    pub outcome: String,
    pub reason: String,
    pub run_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// What to do with one slot.
#[derive(Debug, Clone)]
pub enum SlotAction {
    /// Record an outcome that starts nothing (`missed`, `skipped_disabled`, …).
    Record {
        outcome: &'static str,
        reason: String,
    },
    /// Queue `run` and record `outcome` (`started` or `caught_up`) with its id, or
    /// `skipped_overlap` as `skip` says (or when too many runs of the job wait).
    Fire {
        outcome: &'static str,
        reason: String,
        run: Box<NewRun>,
        skip: SkipWhen,
    },
}

/// One slot of one job to write.
#[derive(Debug, Clone)]
pub struct SlotWrite {
    pub job_id: String,
    pub scheduled_time: DateTime<Utc>,
    pub action: SlotAction,
}

/// What a write did for one slot.
#[derive(Debug, Clone, PartialEq)]
pub enum SlotResult {
    /// The row was written; `run_id` if a run was queued.
    Recorded {
        outcome: &'static str,
        run_id: Option<String>,
    },
    /// The slot already had a row (fired before): nothing written.
    AlreadyRecorded,
}

/// Whether `sync_jobs` is given every current job, or only some.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSet {
    /// All jobs: those not listed have left the pipelines.
    Complete,
    /// Only these jobs.
    Only,
}

/// At most this many runs of one job wait at once (overlap "queue", catch-up "all");
/// a slot beyond it is recorded as skipped.
pub const MAX_WAITING_PER_JOB: i64 = 1000;

/// When a slot that would start a run records `skipped_overlap` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipWhen {
    Never,
    /// A run of the same pipeline and run configuration is queued or running (overlap "skip").
    JobActive,
    /// A restart of the pipeline is still waiting for its cooldown (`restart_interval`).
    RestartWaiting,
}

/// Creates the rows of jobs seen for the first time, and restarts the cursor of
/// jobs whose trigger changed. Returns every job's row.
pub async fn sync_jobs(
    pool: &Pool,
    jobs: &[JobKey],
    set: JobSet,
    now: DateTime<Utc>,
) -> Result<HashMap<String, JobRow>, DbError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    if let JobSet::Complete = set {
        // A job missing from the pipelines now starts afresh when it returns: the
        // time it was gone is not its to catch up.
        let present: std::collections::HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        let known: Vec<String> =
            sqlx::query_scalar("SELECT id FROM schedule_jobs WHERE fingerprint <> ''")
                .fetch_all(&mut *tx)
                .await?;
        for id in known.iter().filter(|id| !present.contains(id.as_str())) {
            sqlx::query("UPDATE schedule_jobs SET fingerprint = '' WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    for job in jobs {
        sqlx::query(
            "INSERT INTO schedule_jobs (id, pipeline_name, run_config_id, kind, fingerprint, defined_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET fingerprint = ?5, defined_at = ?6
             WHERE schedule_jobs.fingerprint <> ?5",
        )
        .bind(&job.id)
        .bind(&job.pipeline_name)
        .bind(&job.run_config_id)
        .bind(job.kind)
        .bind(&job.fingerprint)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    all_jobs(pool).await
}

/// One job's row; a job the scheduler once knew keeps it (its ledger outlives its schedule).
pub async fn job(pool: &Pool, id: &str) -> Result<Option<JobRow>, DbError> {
    Ok(
        sqlx::query_as::<_, JobRow>("SELECT * FROM schedule_jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?,
    )
}

pub async fn all_jobs(pool: &Pool) -> Result<HashMap<String, JobRow>, DbError> {
    let rows = sqlx::query_as::<_, JobRow>("SELECT * FROM schedule_jobs")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id.clone(), r)).collect())
}

/// Stores (or with `None` clears) a user's enable/disable override.
pub async fn set_override(pool: &Pool, id: &str, enabled: Option<bool>) -> Result<bool, DbError> {
    let done =
        sqlx::query("UPDATE schedule_jobs SET enabled_override = ?, override_at = ? WHERE id = ?")
            .bind(enabled)
            .bind(enabled.map(|_| Utc::now()))
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes the slots in one transaction: each ledger row, the run it queues, and
/// the job's cursor and counters. A slot that already has a row is left alone.
pub async fn record_slots(
    pool: &Pool,
    writes: Vec<SlotWrite>,
    now: DateTime<Utc>,
) -> Result<Vec<SlotResult>, DbError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(writes.len());
    for w in writes {
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM schedule_slots WHERE job_id = ? AND scheduled_time = ?",
        )
        .bind(&w.job_id)
        .bind(w.scheduled_time)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            results.push(SlotResult::AlreadyRecorded);
            continue;
        }
        let (outcome, reason, run_id) = match w.action {
            SlotAction::Record { outcome, reason } => (outcome, reason, None),
            SlotAction::Fire {
                outcome,
                reason,
                run,
                skip,
            } => match skip_reason(&mut tx, &run, skip).await? {
                Some(why) => ("skipped_overlap", why, None),
                None => {
                    let inserted = insert_in(&mut tx, &run).await?;
                    (outcome, reason, Some(inserted.id))
                }
            },
        };
        sqlx::query(
            "INSERT INTO schedule_slots (job_id, scheduled_time, outcome, reason, run_id, recorded_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&w.job_id)
        .bind(w.scheduled_time)
        .bind(outcome)
        .bind(&reason)
        .bind(&run_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let started = i64::from(run_id.is_some());
        sqlx::query(
            "UPDATE schedule_jobs SET
                last_slot_time = CASE WHEN last_slot_time IS NULL OR last_slot_time < ?2 THEN ?2 ELSE last_slot_time END,
                last_run_time = CASE WHEN ?3 = 1 AND (last_run_time IS NULL OR last_run_time < ?2) THEN ?2 ELSE last_run_time END,
                run_count = run_count + ?3
             WHERE id = ?1",
        )
        .bind(&w.job_id)
        .bind(w.scheduled_time)
        .bind(started)
        .execute(&mut *tx)
        .await?;
        results.push(SlotResult::Recorded { outcome, run_id });
    }
    tx.commit().await?;
    Ok(results)
}

/// Why a slot must not start its run now, if it must not.
async fn skip_reason(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    run: &NewRun,
    skip: SkipWhen,
) -> Result<Option<String>, DbError> {
    match skip {
        SkipWhen::JobActive => {
            let active: Option<(String, String)> = sqlx::query_as(
                "SELECT id, status FROM runs WHERE pipeline_name = ? AND run_config_id IS ?
                   AND status IN ('PENDING', 'RUNNING') ORDER BY started_at LIMIT 1",
            )
            .bind(&run.pipeline_name)
            .bind(&run.run_config_id)
            .fetch_optional(&mut **tx)
            .await?;
            return Ok(active.map(|(id, status)| {
                format!(
                    "run {id} of the same pipeline and run configuration was still {} (overlap: \"skip\")",
                    status.to_lowercase()
                )
            }));
        }
        SkipWhen::RestartWaiting => {
            let waiting: Option<String> = sqlx::query_scalar(
                "SELECT id FROM runs WHERE pipeline_name = ? AND status = 'PENDING'
                   AND triggered_by = 'daemon_restart' LIMIT 1",
            )
            .bind(&run.pipeline_name)
            .fetch_optional(&mut **tx)
            .await?;
            return Ok(
                waiting.map(|id| format!("restart {id} is still waiting for its restart_cooldown"))
            );
        }
        SkipWhen::Never => {}
    }
    if run.wait_for_previous {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM runs WHERE pipeline_name = ? AND run_config_id IS ?
               AND status IN ('PENDING', 'RUNNING') LIMIT ?)",
        )
        .bind(&run.pipeline_name)
        .bind(&run.run_config_id)
        .bind(MAX_WAITING_PER_JOB)
        .fetch_one(&mut **tx)
        .await?;
        if waiting >= MAX_WAITING_PER_JOB {
            return Ok(Some(format!(
                "{MAX_WAITING_PER_JOB} runs of the same pipeline and run configuration are already waiting"
            )));
        }
    }
    Ok(None)
}

/// The ledger of one job, newest first.
pub async fn slots(pool: &Pool, job_id: &str, limit: i64) -> Result<Vec<SlotRow>, DbError> {
    Ok(sqlx::query_as::<_, SlotRow>(
        "SELECT * FROM schedule_slots WHERE job_id = ? ORDER BY scheduled_time DESC LIMIT ?",
    )
    .bind(job_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The slot that started a run, if a schedule started it.
pub async fn slot_of_run(pool: &Pool, run_id: &str) -> Result<Option<SlotRow>, DbError> {
    Ok(
        sqlx::query_as::<_, SlotRow>("SELECT * FROM schedule_slots WHERE run_id = ?")
            .bind(run_id)
            .fetch_optional(pool)
            .await?,
    )
}

/// Runs started by a job's slots, newest slot first.
pub async fn job_runs(pool: &Pool, job_id: &str, limit: i64) -> Result<Vec<super::Run>, DbError> {
    Ok(sqlx::query_as::<_, super::Run>(
        "SELECT runs.* FROM schedule_slots s JOIN runs ON runs.id = s.run_id
         WHERE s.job_id = ? ORDER BY s.scheduled_time DESC LIMIT ?",
    )
    .bind(job_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Removes ledger rows older than `older_than`, and beyond the newest `keep` of
/// each job. The job's cursor stays, so a removed slot never fires again.
pub async fn prune_slots(
    pool: &Pool,
    older_than: Option<DateTime<Utc>>,
    keep: i64,
) -> Result<u64, DbError> {
    let mut deleted = 0;
    if let Some(cutoff) = older_than {
        deleted += sqlx::query("DELETE FROM schedule_slots WHERE scheduled_time < ?")
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
    }
    let jobs: Vec<String> = sqlx::query_scalar("SELECT id FROM schedule_jobs")
        .fetch_all(pool)
        .await?;
    for job in jobs {
        deleted += sqlx::query(
            "DELETE FROM schedule_slots WHERE job_id = ?1 AND scheduled_time <
               (SELECT scheduled_time FROM schedule_slots WHERE job_id = ?1
                ORDER BY scheduled_time DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(&job)
        .bind(keep.saturating_sub(1))
        .execute(pool)
        .await?
        .rows_affected();
    }
    Ok(deleted)
}
