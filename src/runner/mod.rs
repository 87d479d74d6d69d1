//! The run engine: triggering (a PENDING row), the dispatcher that starts queued
//! runs under `MAX_CONCURRENT_RUNS`, the executor over Docker, logs and live hubs.

pub mod container_policy;
mod container_run;
pub mod container_spec;
mod dispatcher;
pub mod engine;
mod engine_copy;
pub mod engine_state;
mod executor;
mod followups;
pub mod injection;
pub use followups::DEFAULT_RESTART_COOLDOWN;
pub mod hub;
pub mod limits;
mod log_pump;
pub mod logs;
pub mod metrics;
pub mod outcome;
pub mod overrides;
pub mod preheat;
mod recovery;
pub mod retry;
mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, NewRun, Pool, Run};
use crate::pipelines::{Pipeline, PipelineRegistry};
use crate::run_status::RunStatus;
use hub::LogHubs;

/// Everything a run needs, shared by the dispatcher and every executor.
pub struct RunnerDeps {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub docker: bollard::Docker,
    pub registry: Arc<PipelineRegistry>,
    pub hubs: Arc<LogHubs>,
    /// Labels this installation's containers.
    pub instance_id: String,
    /// `uid:gid` that pipelines run as.
    pub worker_user: String,
    /// Cancel switches of the runs executing in this process.
    pub active: Mutex<HashMap<String, CancellationToken>>,
    /// Whether the Docker engine answers.
    pub engine: engine_state::EngineState,
    /// Fired when the server shuts down.
    pub shutdown: CancellationToken,
    /// Executor tasks, so shutdown can wait for their last writes.
    pub tasks: tokio_util::task::TaskTracker,
    /// Dependency warm-ups after a git sync; runs wait for their pipeline's.
    pub preheat: Arc<preheat::Preheater>,
    /// Decrypts stored secrets and `encrypted_env` values at run time.
    pub cipher: Arc<crate::secrets::Cipher>,
    /// Runs whose container creation failed at the connection while the engine
    /// answered its ping, and how often (see `MAX_CREATE_RESETS`).
    pub create_resets: Mutex<HashMap<String, u32>>,
    /// Queues the notifications of final outcomes (sent in the background).
    pub notifier: Arc<crate::notify::Notifier>,
}

/// A run whose container creation is cut off this often, while the engine answers
/// pings in between (a proxy or engine that resets that one call), fails instead
/// of waiting in the queue for ever.
pub const MAX_CREATE_RESETS: u32 = 5;

impl RunnerDeps {
    /// Counts one more cut-off creation for `run`; returns the count.
    fn note_create_reset(&self, run: &str) -> u32 {
        let mut map = self
            .create_resets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // An entry leaves when its run starts or fails; a run cancelled while it
        // waits leaves one behind, so the map is emptied should it ever grow large.
        if map.len() > 10_000 {
            map.clear();
        }
        let count = map.entry(run.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn forget_create_resets(&self, run: &str) {
        self.create_resets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(run);
    }

    fn with_active<R>(&self, f: impl FnOnce(&mut HashMap<String, CancellationToken>) -> R) -> R {
        match self.active.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}

/// Why a trigger was refused.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("pipeline `{0}` is invalid: {1}")]
    Invalid(String, String),
    #[error("pipeline `{0}` is disabled (\"enabled\": false in its metadata)")]
    Disabled(String),
    #[error("pipeline `{0}` not found")]
    UnknownPipeline(String),
    #[error("run `{0}` not found")]
    UnknownRun(String),
    #[error("pipeline `{pipeline}` has no run configuration `{id}` (known: {known})")]
    UnknownRunConfig {
        pipeline: String,
        id: String,
        known: String,
    },
    #[error(transparent)]
    Override(#[from] overrides::OverrideError),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

/// Why a cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("run `{0}` not found")]
    NotFound(String),
    #[error(
        "run `{0}` already finished with status {1}; only queued or running runs can be cancelled"
    )]
    Finished(String, RunStatus),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

/// How a run relates to earlier ones.
#[derive(Debug, Clone, Default)]
pub struct RunLink {
    pub attempt: i64,
    pub previous_run_id: Option<String>,
    pub not_before: Option<chrono::DateTime<chrono::Utc>>,
    /// Wait until no other run of the same pipeline and run configuration runs.
    pub wait_for_previous: bool,
}

/// Who asks for a run, and with what.
#[derive(Debug, Clone, Default)]
pub struct TriggerRequest {
    pub env_vars: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    /// `manual`, `api`, `webhook`, `scheduler`, `downstream`, `daemon_restart`, …
    pub triggered_by: String,
    /// A `schedules[].id` whose settings the run uses.
    pub run_config_id: Option<String>,
    /// The run whose end started this one.
    pub parent_run_id: Option<String>,
}

impl TriggerRequest {
    pub fn new(triggered_by: &str) -> Self {
        Self {
            triggered_by: triggered_by.to_string(),
            ..Default::default()
        }
    }
}

/// The handle the web layer uses to start and stop runs.
#[derive(Clone)]
pub struct Runner {
    deps: Arc<RunnerDeps>,
    wake: Arc<Notify>,
}

impl Runner {
    pub fn new(deps: RunnerDeps) -> Self {
        Self {
            deps: Arc::new(deps),
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn hubs(&self) -> &Arc<LogHubs> {
        &self.deps.hubs
    }

    /// Runs whose containers this process follows now.
    pub fn active_count(&self) -> usize {
        self.deps.with_active(|m| m.len())
    }

    pub fn deps(&self) -> &Arc<RunnerDeps> {
        &self.deps
    }

    /// Records a PENDING run and wakes the dispatcher; returns at once. The
    /// overrides are checked here, for every route (see [`overrides`]).
    pub async fn trigger(
        &self,
        pipeline: &Pipeline,
        request: TriggerRequest,
    ) -> Result<Run, TriggerError> {
        overrides::check("env_vars", &request.env_vars)?;
        overrides::check("parameters", &request.parameters)?;
        let link = RunLink {
            attempt: 1,
            ..Default::default()
        };
        self.enqueue(pipeline, request, link).await
    }

    async fn enqueue(
        &self,
        pipeline: &Pipeline,
        request: TriggerRequest,
        link: RunLink,
    ) -> Result<Run, TriggerError> {
        let new = self.prepare(pipeline, request, link)?;
        let run = db::runs::insert(&self.deps.pool, &new).await?;
        tracing::info!(run = %run.id, pipeline = %run.pipeline_name, triggered_by = %run.triggered_by,
            run_config = run.run_config_id.as_deref().unwrap_or("-"), "run queued");
        self.wake();
        Ok(run)
    }

    /// The row a trigger would write, after the checks every route shares; the
    /// scheduler writes it together with its slot.
    pub fn prepare(
        &self,
        pipeline: &Pipeline,
        request: TriggerRequest,
        link: RunLink,
    ) -> Result<NewRun, TriggerError> {
        if !pipeline.is_valid() {
            return Err(TriggerError::Invalid(
                pipeline.name.clone(),
                pipeline.error_lines().join("; "),
            ));
        }
        if !pipeline.metadata.enabled {
            return Err(TriggerError::Disabled(pipeline.name.clone()));
        }
        if let Some(id) = &request.run_config_id
            && pipeline.run_config(id).is_none()
        {
            return Err(TriggerError::UnknownRunConfig {
                pipeline: pipeline.name.clone(),
                id: id.clone(),
                known: crate::pipelines::known_list(&pipeline.run_config_ids()),
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let log_file = logs::log_path(&self.deps.config.logs_dir, &id)
            .display()
            .to_string();
        Ok(NewRun {
            id,
            pipeline_name: pipeline.name.clone(),
            triggered_by: request.triggered_by,
            env_vars: request.env_vars,
            parameters: request.parameters,
            log_file,
            attempt: link.attempt.max(1),
            previous_run_id: link.previous_run_id,
            not_before: link.not_before,
            run_config_id: request.run_config_id,
            parent_run_id: request.parent_run_id,
            wait_for_previous: link.wait_for_previous,
        })
    }

    /// Lets the dispatcher look at the queue now (after runs were written elsewhere).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Starts a new run with the same environment and parameters as `id`.
    pub async fn rerun(&self, id: &str) -> Result<Run, TriggerError> {
        let old = db::runs::get(&self.deps.pool, id)
            .await?
            .ok_or_else(|| TriggerError::UnknownRun(id.to_string()))?;
        let pipeline = self
            .deps
            .registry
            .get(&old.pipeline_name)
            .ok_or_else(|| TriggerError::UnknownPipeline(old.pipeline_name.clone()))?;
        let env: BTreeMap<String, String> = old
            .env_vars
            .0
            .iter()
            .filter(|(k, _)| !k.starts_with("_fastflow_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The copy is a new trigger: runs stored before these rules were enforced are checked too.
        overrides::check("env_vars", &env)?;
        overrides::check("parameters", &old.parameters.0)?;
        let link = RunLink {
            attempt: 1,
            previous_run_id: Some(old.id.clone()),
            ..Default::default()
        };
        let request = TriggerRequest {
            env_vars: env,
            parameters: old.parameters.0.clone(),
            triggered_by: "manual_retry".into(),
            run_config_id: old.run_config_id.clone(),
            parent_run_id: None,
        };
        self.enqueue(&pipeline, request, link).await
    }

    /// Cancels a queued or running run: it ends INTERRUPTED/cancelled. A running
    /// container gets SIGTERM, then SIGKILL after a grace period. The stop does not
    /// depend on the database: if the row cannot be written now (a full disk), a run
    /// executing here is stopped anyway and its executor stores INTERRUPTED later.
    pub async fn cancel(&self, id: &str) -> Result<RunStatus, CancelError> {
        self.cancel_because(id, "cancelled by a user").await
    }

    /// True while an executor of this process handles the run (it may still be
    /// storing the end of a run whose cancel is already recorded).
    pub fn is_executing(&self, id: &str) -> bool {
        self.deps.with_active(|m| m.contains_key(id))
    }

    /// [`Runner::cancel`] with the reason the run records.
    pub async fn cancel_because(&self, id: &str, reason: &str) -> Result<RunStatus, CancelError> {
        let token = self.deps.with_active(|m| m.get(id).cloned());
        let before = match db::runs::cancel(&self.deps.pool, id, reason).await {
            Ok(Some(before)) => before,
            Ok(None) => {
                return match db::runs::get(&self.deps.pool, id).await? {
                    Some(run) => Err(CancelError::Finished(id.to_string(), run.status)),
                    None => Err(CancelError::NotFound(id.to_string())),
                };
            }
            Err(e) => match token {
                Some(token) => {
                    tracing::warn!(run = %id, error = %e,
                        "could not write the cancel; stopping the container anyway, the result is stored when the database allows");
                    token.cancel();
                    return Ok(RunStatus::Running);
                }
                None => return Err(e.into()),
            },
        };
        self.deps.hubs.notify_changed(id);
        match token {
            // The executor stops the container and closes the hub. The run was
            // counted by the trigger that recorded the cancel.
            Some(token) => token.cancel(),
            None => self.deps.hubs.close(id, RunStatus::Interrupted),
        }
        tracing::info!(run = %id, was = %before, "run cancelled");
        self.wake.notify_one();
        Ok(before)
    }
}

/// Where a queued run stands and why it has not started.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueInfo {
    /// 1 = next in line.
    pub queue_position: i64,
    pub waiting_reason: String,
}

impl Runner {
    /// `None` unless the run is PENDING.
    pub async fn queue_info(&self, run: &Run) -> Result<Option<QueueInfo>, db::DbError> {
        if run.status != RunStatus::Pending {
            return Ok(None);
        }
        let ahead = db::runs::queued_ahead(&self.deps.pool, run).await?;
        if let Some(reason) = self.deps.engine.down_reason() {
            return Ok(Some(QueueInfo {
                queue_position: ahead + 1,
                waiting_reason: reason,
            }));
        }
        let by_config = db::runs::running_by_config(&self.deps.pool).await?;
        let total: i64 = by_config.values().sum();
        let max_total = self.deps.config.max_concurrent_runs;
        let max_instances = self
            .deps
            .registry
            .get(&run.pipeline_name)
            .and_then(|p| p.metadata.max_instances);
        let of_pipeline: i64 = by_config
            .iter()
            .filter(|((pipeline, _), _)| *pipeline == run.pipeline_name)
            .map(|(_, n)| n)
            .sum();
        let of_job = by_config
            .get(&(run.pipeline_name.clone(), run.run_config_id.clone()))
            .copied()
            .unwrap_or(0);
        let waiting_reason = match (run.not_before, max_instances) {
            (Some(at), _) if at > chrono::Utc::now() && run.triggered_by == "daemon_restart" => {
                format!(
                    "restart_cooldown: starts at {}",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }
            (Some(at), _) if at > chrono::Utc::now() => {
                format!(
                    "retry attempt {} waits until {}",
                    run.attempt,
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }
            (_, Some(limit)) if of_pipeline >= limit as i64 => {
                format!("max_instances: {of_pipeline} of {limit} runs of this pipeline are running")
            }
            _ if run.wait_for_previous && of_job > 0 => {
                "overlap \"queue\": waits until no other run of this pipeline and run configuration runs"
                    .to_string()
            }
            _ if total >= max_total as i64 => {
                format!("all {max_total} slots are busy (MAX_CONCURRENT_RUNS)")
            }
            _ => "starting".to_string(),
        };
        Ok(Some(QueueInfo {
            queue_position: ahead + 1,
            waiting_reason,
        }))
    }
}
