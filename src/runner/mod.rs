//! The run engine: triggering (a PENDING row), the dispatcher that starts queued
//! runs under `MAX_CONCURRENT_RUNS`, the executor over Docker, logs and live hubs.

pub mod container_spec;
pub mod engine;
mod executor;
pub mod hub;
mod log_pump;
pub mod logs;
mod recovery;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, NewRun, Pool, Run};
use crate::pipelines::{Pipeline, PipelineRegistry};
use hub::LogHubs;

pub use recovery::recover_after_restart;

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
}

/// Why a trigger was refused.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("pipeline `{0}` is invalid: {1}")]
    Invalid(String, String),
    #[error("pipeline `{0}` is disabled (\"enabled\": false in its metadata)")]
    Disabled(String),
    #[error(transparent)]
    Db(#[from] db::DbError),
}

/// The handle the web layer uses to start runs.
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

    pub fn deps(&self) -> &Arc<RunnerDeps> {
        &self.deps
    }

    /// Records a PENDING run and wakes the dispatcher; returns at once.
    pub async fn trigger(
        &self,
        pipeline: &Pipeline,
        env_vars: BTreeMap<String, String>,
        parameters: BTreeMap<String, String>,
        triggered_by: &str,
    ) -> Result<Run, TriggerError> {
        if !pipeline.is_valid() {
            return Err(TriggerError::Invalid(
                pipeline.name.clone(),
                pipeline.error_lines().join("; "),
            ));
        }
        if !pipeline.metadata.enabled {
            return Err(TriggerError::Disabled(pipeline.name.clone()));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let log_file = logs::log_path(&self.deps.config.logs_dir, &id)
            .display()
            .to_string();
        let new = NewRun {
            id,
            pipeline_name: pipeline.name.clone(),
            triggered_by: triggered_by.to_string(),
            env_vars,
            parameters,
            log_file,
        };
        let run = db::runs::insert(&self.deps.pool, &new).await?;
        tracing::info!(run = %run.id, pipeline = %run.pipeline_name, %triggered_by, "run queued");
        self.wake.notify_one();
        Ok(run)
    }

    /// Starts queued runs whenever a slot is free, until `shutdown`.
    pub async fn dispatch(self, shutdown: CancellationToken) {
        let max = self.deps.config.max_concurrent_runs as i64;
        loop {
            loop {
                match db::runs::claim_next(&self.deps.pool, max).await {
                    Ok(Some(run)) => {
                        let deps = self.deps.clone();
                        let wake = self.wake.clone();
                        tokio::spawn(async move {
                            executor::execute(deps, run).await;
                            // A slot is free again.
                            wake.notify_one();
                        });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "claiming a queued run failed; retrying shortly");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                        }
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
            }
        }
    }
}
