//! The scheduler: fires the jobs that pipeline.json declares, in this process.
//! Each pass derives the jobs from the current pipelines ([`jobs`]), decides the
//! fate of every due slot ([`plan`]), and writes each slot's ledger row in the
//! same transaction as the run it starts (`db::schedule`), so a slot fires at
//! most once and none disappears unrecorded. Between passes it sleeps until the
//! next slot, a pipeline change or an override, and never longer than a minute
//! (a wall-clock jump is noticed within that).

pub mod jobs;
mod plan;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::schedule::{JobRow, JobSet, SkipWhen, SlotAction, SlotResult, SlotWrite};
use crate::db::{self, DbError, Pool};
use crate::pipelines::timing::Overlap;
use crate::pipelines::{PipelineRegistry, Snapshot};
use crate::runner::{RunLink, Runner, TriggerRequest};
use jobs::{JobKind, JobSpec};
pub use plan::{MISFIRE_GRACE, PlannedSlot};

/// The longest sleep between passes.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Ledger rows written per transaction.
const WRITES_PER_TRANSACTION: usize = 256;

/// Jobs of one snapshot, and their stored rows.
struct Current {
    snapshot: Arc<Snapshot>,
    specs: Arc<BTreeMap<String, JobSpec>>,
    rows: HashMap<String, JobRow>,
    synced: bool,
}

struct Inner {
    runner: Runner,
    pool: Pool,
    registry: Arc<PipelineRegistry>,
    process_start: DateTime<Utc>,
    wake: Notify,
    current: Mutex<Option<Current>>,
}

/// The handle the web layer and the wiring share.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Ledger rows written.
    pub recorded: usize,
    /// Runs queued.
    pub started: usize,
    /// The next slot of any job.
    pub next_due: Option<DateTime<Utc>>,
}

impl Scheduler {
    pub fn new(runner: Runner, pool: Pool, registry: Arc<PipelineRegistry>) -> Self {
        Self {
            inner: Arc::new(Inner {
                runner,
                pool,
                registry,
                process_start: Utc::now(),
                wake: Notify::new(),
                current: Mutex::new(None),
            }),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The jobs of the current pipelines, by id (derived once per snapshot).
    pub fn jobs(&self) -> Arc<BTreeMap<String, JobSpec>> {
        let snapshot = self.inner.registry.snapshot();
        let mut guard = self.current();
        match guard.as_ref() {
            Some(c) if Arc::ptr_eq(&c.snapshot, &snapshot) => c.specs.clone(),
            _ => {
                let specs = jobs::from_snapshot(&snapshot);
                let rows = guard.take().map(|c| c.rows).unwrap_or_default();
                *guard = Some(Current {
                    snapshot,
                    specs: specs.clone(),
                    rows,
                    synced: false,
                });
                specs
            }
        }
    }

    /// Stores a user's enable (`Some(true)`), disable (`Some(false)`) or "follow
    /// pipeline.json" (`None`) for a job; `false` if no such job was ever seen.
    pub async fn set_enabled(&self, id: &str, enabled: Option<bool>) -> Result<bool, DbError> {
        // A job the scheduler has not passed over yet (just added, or SCHEDULER_ENABLED=false) gets its row now.
        if let Some(spec) = self.jobs().get(id) {
            db::schedule::sync_jobs(&self.inner.pool, &[spec.key()], JobSet::Only, Utc::now())
                .await?;
        }
        let found = db::schedule::set_override(&self.inner.pool, id, enabled).await?;
        if found {
            let mut guard = self.current();
            if let Some(row) = guard.as_mut().and_then(|c| c.rows.get_mut(id)) {
                row.enabled_override = enabled;
            }
            self.inner.wake.notify_one();
        }
        Ok(found)
    }

    /// Fires due slots until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut generation = self.inner.registry.subscribe();
        loop {
            let pass = std::panic::AssertUnwindSafe(self.pass_at(Utc::now())).catch_unwind();
            let wait = match pass.await {
                Ok(Ok(report)) => report
                    .next_due
                    .map_or(MAX_SLEEP, |t| (t - Utc::now()).to_std().unwrap_or_default())
                    .min(MAX_SLEEP),
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "scheduler pass failed; retrying in 1 s");
                    Duration::from_secs(1)
                }
                Err(_) => {
                    tracing::error!("a scheduler pass panicked; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = generation.changed() => {}
                _ = self.inner.wake.notified() => {}
            }
        }
    }

    /// One pass as if the time were `now`: every slot in (cursor, now] of every
    /// job gets its ledger row. Tests call this with a controlled clock.
    pub async fn pass_at(&self, now: DateTime<Utc>) -> Result<PassReport, DbError> {
        let specs = self.jobs();
        let snapshot = self.ensure_synced(&specs, now).await?;
        let writes = self.plan_writes(&specs, &snapshot, now);
        let mut report = PassReport::default();
        let mut restarted = Vec::new();
        for chunk in chunks(writes) {
            let times: Vec<(String, DateTime<Utc>)> = chunk
                .iter()
                .map(|w| (w.job_id.clone(), w.scheduled_time))
                .collect();
            let results = db::schedule::record_slots(&self.inner.pool, chunk, now).await?;
            self.advance_cursors(&times);
            for ((job_id, slot), result) in times.iter().zip(results) {
                if let SlotResult::Recorded { run_id, .. } = result {
                    report.recorded += 1;
                    if let Some(run_id) = run_id {
                        report.started += 1;
                        crate::prometheus::metrics()
                            .scheduled_run_queued((now - *slot).as_seconds_f64());
                        if specs
                            .get(job_id)
                            .is_some_and(|s| s.kind == JobKind::Restart)
                        {
                            restarted.push((specs[job_id].pipeline_name.clone(), run_id));
                        }
                    }
                }
            }
        }
        for (pipeline, new_run) in restarted {
            self.stop_others(&pipeline, &new_run).await;
        }
        if report.started > 0 {
            self.inner.runner.wake();
        }
        report.next_due = specs
            .values()
            .filter_map(|s| s.timing.next_after(now))
            .min();
        Ok(report)
    }

    /// Makes sure every job has its row (first sight, changed trigger, gone and back).
    async fn ensure_synced(
        &self,
        specs: &Arc<BTreeMap<String, JobSpec>>,
        now: DateTime<Utc>,
    ) -> Result<Arc<Snapshot>, DbError> {
        let (snapshot, synced) = {
            let guard = self.current();
            match guard.as_ref() {
                Some(c) => (c.snapshot.clone(), c.synced),
                None => (self.inner.registry.snapshot(), false),
            }
        };
        if synced {
            return Ok(snapshot);
        }
        let keys: Vec<_> = specs.values().map(JobSpec::key).collect();
        let rows = db::schedule::sync_jobs(&self.inner.pool, &keys, JobSet::Complete, now).await?;
        // If the pipelines changed meanwhile, the next pass syncs their jobs.
        if let Some(c) = self.current().as_mut()
            && Arc::ptr_eq(&c.specs, specs)
        {
            c.rows = rows;
            c.synced = true;
        }
        Ok(snapshot)
    }

    /// The ledger writes of every job's due slots, planned under the lock on the
    /// rows (planning does no I/O).
    fn plan_writes(
        &self,
        specs: &BTreeMap<String, JobSpec>,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
    ) -> Vec<SlotWrite> {
        let guard = self.current();
        let Some(current) = guard.as_ref() else {
            return Vec::new();
        };
        let mut writes = Vec::new();
        for spec in specs.values() {
            let Some(row) = current.rows.get(&spec.id) else {
                continue;
            };
            let cursor = row
                .last_slot_time
                .map_or(row.defined_at, |t| t.max(row.defined_at));
            let off = spec.off_reason(row.enabled_override);
            let planned = plan::plan(spec, off.as_deref(), cursor, now, self.inner.process_start);
            for slot in planned {
                writes.push(self.to_write(spec, snapshot, slot));
            }
        }
        writes
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn advance_cursors(&self, written: &[(String, DateTime<Utc>)]) {
        let mut guard = self.current();
        let Some(current) = guard.as_mut() else {
            return;
        };
        for (job_id, time) in written {
            if let Some(row) = current.rows.get_mut(job_id) {
                row.last_slot_time = Some(row.last_slot_time.map_or(*time, |t| t.max(*time)));
            }
        }
    }

    fn to_write(&self, spec: &JobSpec, snapshot: &Snapshot, slot: PlannedSlot) -> SlotWrite {
        let action = match slot.decision {
            plan::Decision::Record { outcome, reason } => SlotAction::Record { outcome, reason },
            plan::Decision::Fire {
                outcome,
                reason,
                queue_behind_previous,
            } => match self.new_run(spec, snapshot, queue_behind_previous) {
                Ok(run) => SlotAction::Fire {
                    outcome,
                    reason,
                    run: Box::new(run),
                    skip: match spec.kind {
                        JobKind::Restart => SkipWhen::RestartWaiting,
                        _ if spec.overlap == Overlap::Skip && !queue_behind_previous => {
                            SkipWhen::JobActive
                        }
                        _ => SkipWhen::Never,
                    },
                },
                Err(reason) => SlotAction::Record {
                    outcome: "skipped_disabled",
                    reason,
                },
            },
        };
        SlotWrite {
            job_id: spec.id.clone(),
            scheduled_time: slot.time,
            action,
        }
    }

    fn new_run(
        &self,
        spec: &JobSpec,
        snapshot: &Snapshot,
        queue_behind_previous: bool,
    ) -> Result<db::NewRun, String> {
        let pipeline = snapshot
            .pipelines
            .get(&spec.pipeline_name)
            .ok_or_else(|| format!("pipeline `{}` no longer exists", spec.pipeline_name))?;
        let (triggered_by, not_before) = match spec.kind {
            JobKind::Restart => {
                let cooldown = pipeline
                    .metadata
                    .restart_cooldown
                    .unwrap_or(crate::runner::DEFAULT_RESTART_COOLDOWN);
                // The cooldown counts from the stop, which happens now on the wall clock.
                let stopped = Utc::now();
                let at = i64::try_from(cooldown)
                    .ok()
                    .and_then(|s| stopped.checked_add_signed(chrono::Duration::seconds(s)));
                ("daemon_restart", at)
            }
            _ => ("scheduler", None),
        };
        let request = TriggerRequest {
            run_config_id: spec.run_config_id.clone(),
            ..TriggerRequest::new(triggered_by)
        };
        let link = RunLink {
            attempt: 1,
            previous_run_id: None,
            not_before,
            wait_for_previous: spec.overlap == Overlap::Queue || queue_behind_previous,
        };
        self.inner
            .runner
            .prepare(pipeline, request, link)
            .map_err(|e| e.to_string())
    }

    /// `restart_interval`: the new run replaces the ones before it.
    async fn stop_others(&self, pipeline: &str, new_run: &str) {
        let active = match db::runs::active_of_pipeline(&self.inner.pool, pipeline).await {
            Ok(runs) => runs,
            Err(e) => {
                tracing::error!(%pipeline, error = %e, "restart_interval: could not list running runs");
                return;
            }
        };
        for run in active.iter().filter(|r| r.id != new_run) {
            let reason = format!(
                "stopped for a scheduled restart (restart_interval); run {new_run} replaces it"
            );
            match self.inner.runner.cancel_because(&run.id, &reason).await {
                Ok(_) => {
                    tracing::info!(%pipeline, run = %run.id, next = %new_run, "restart_interval: stopped for the restart")
                }
                Err(e) => {
                    tracing::warn!(%pipeline, run = %run.id, error = %e, "restart_interval: could not stop")
                }
            }
        }
    }
}

fn chunks(mut writes: Vec<SlotWrite>) -> Vec<Vec<SlotWrite>> {
    let mut out = Vec::new();
    while writes.len() > WRITES_PER_TRANSACTION {
        let rest = writes.split_off(WRITES_PER_TRANSACTION);
        out.push(writes);
        writes = rest;
    }
    if !writes.is_empty() {
        out.push(writes);
    }
    out
}
