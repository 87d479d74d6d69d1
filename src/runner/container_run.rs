//! One run's container, start to exit: create it, attach before start (or, after
//! a restart, follow its stored log), pump the output and sample metrics, enforce
//! timeout and cancel, then gather the facts `outcome` classifies.

use std::time::Duration;

use bollard::query_parameters::{
    AttachContainerOptionsBuilder, LogsOptionsBuilder, StartContainerOptions,
};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::container_spec::{self, RunContext};
use super::engine::{self, EngineError};
use super::engine_copy::{self, EngineClock};
use super::log_pump::{self, OutputStream, PumpEnd, RunLog, SetupProbe};
use super::logs::{log_path, stored_streams};
use super::outcome::{self, ExitFacts, cancelled, failure};
use super::{RunnerDeps, metrics};
use crate::db::{self, Run, RunOutcome};
use crate::pipelines::Pipeline;
use crate::pipelines::metadata::ResourceLimits;
use crate::run_status::ErrorType;

/// How long the output stream may lag behind the container's exit.
const OUTPUT_DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Seconds between SIGTERM and SIGKILL when a run is cancelled.
const CANCEL_GRACE_SECS: i32 = 10;
/// The same when the server stops runs on shutdown (it must exit within seconds).
const SHUTDOWN_GRACE_SECS: i32 = 2;

/// Why the container stopped, or why we stopped following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Cancelled,
    /// The server shuts down and leaves the container running for the next start.
    Detached,
}

/// Where a run's output comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    /// Attached before start: the engine closes it after the last byte.
    Attach,
    /// The engine's stored log, followed after a server restart; `exited` when the
    /// container had already ended by then.
    FollowLogs { exited: bool },
}

/// A run this process finished: its outcome and the container to remove once stored.
pub struct Ended {
    pub outcome: RunOutcome,
    pub container: Option<String>,
}

impl Ended {
    pub fn without_container(outcome: RunOutcome) -> Self {
        Self {
            outcome,
            container: None,
        }
    }
}

/// The run is not finished by this process: left running (shutdown) or put back
/// in the queue (engine unreachable, or never started before a crash).
pub struct NotFinished;

pub struct Exec<'a> {
    pub deps: &'a RunnerDeps,
    pub run: &'a Run,
    pub pipeline: &'a Pipeline,
    /// The limits in force for this run (own, else defaults; fitted to the host).
    pub limits: &'a ResourceLimits,
    pub cancel: &'a CancellationToken,
    /// Decrypted `encrypted_env` values and listed secrets (empty on re-attach).
    pub injected_env: &'a std::collections::BTreeMap<String, crate::secrets::SecretString>,
}

impl Exec<'_> {
    pub async fn start(&self, log: &mut RunLog) -> Result<Ended, NotFinished> {
        let (deps, run) = (self.deps, self.run);
        // Fast-Flow's merge order after `default_env`: encrypted_env and listed
        // secrets, then the request's env_vars, then its parameters (later wins).
        let mut run_env: std::collections::BTreeMap<String, String> = self
            .injected_env
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()))
            .collect();
        run_env.extend(run.env_vars.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        run_env.extend(run.parameters.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        let image =
            engine::choose_image(&deps.docker, deps.config.worker_base_image.as_deref()).await;
        let ctx = RunContext {
            run_id: &run.id,
            instance_id: &deps.instance_id,
            run_env: &run_env,
            user: &deps.worker_user,
            image: &image,
            limits: self.limits,
        };
        let body = container_spec::build(&deps.config, self.pipeline, &ctx);
        let env_bytes = container_spec::env_bytes(body.env.as_deref().unwrap_or_default());
        if env_bytes > container_spec::MAX_ENV_BYTES {
            return Ok(Ended::without_container(failure(
                ErrorType::PipelineError,
                format!(
                    "the run's environment is {} KiB; at most {} KiB fit (the kernel refuses to start a program with more): make the secrets, default_env and encrypted_env values, or the request's env_vars and parameters, fewer or smaller",
                    env_bytes / 1024,
                    container_spec::MAX_ENV_BYTES / 1024
                ),
            )));
        }
        let id = match engine::create_container(
            &deps.docker,
            body,
            &super::container_policy::MountRoots::from_config(&deps.config),
        )
        .await
        {
            Ok(id) => id,
            Err(e)
                if e.is_unreachable()
                    && deps.note_create_reset(&run.id) >= super::MAX_CREATE_RESETS =>
            {
                deps.forget_create_resets(&run.id);
                return Ok(Ended::without_container(failure(
                    ErrorType::InfrastructureError,
                    format!(
                        "creating the container was cut off {} times although the Docker engine at {} answered in between: {e}. A socket proxy or the engine drops this call; check the proxy's permissions (docs/deployment.md) and its log",
                        super::MAX_CREATE_RESETS,
                        engine::describe_host(deps.config.docker_host.as_deref())
                    ),
                )));
            }
            Err(e) if e.is_unreachable() => {
                // Not the run's fault: back to the queue until the engine returns.
                deps.engine.set_down(format!(
                    "cannot reach the Docker engine at {}: {e}",
                    engine::describe_host(deps.config.docker_host.as_deref())
                ));
                if let Err(db) = db::runs::requeue(&deps.pool, &run.id).await {
                    tracing::error!(run = %run.id, error = %db, "could not requeue the run");
                }
                return Err(NotFinished);
            }
            Err(e) => {
                return Ok(Ended::without_container(failure(
                    ErrorType::InfrastructureError,
                    format!("creating the container failed: {e}"),
                )));
            }
        };
        deps.engine.set_image_problem(None);
        deps.forget_create_resets(&run.id);
        if let Err(e) = db::runs::set_container(&deps.pool, &run.id, &id, &image).await {
            tracing::warn!(run = %run.id, error = %e, "could not record the container id");
        }
        let outcome = self.attach_and_start(log, &id).await?;
        Ok(Ended {
            outcome,
            container: Some(id),
        })
    }

    async fn attach_and_start(
        &self,
        log: &mut RunLog,
        id: &str,
    ) -> Result<RunOutcome, NotFinished> {
        let docker = &self.deps.docker;
        let attach = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .logs(true)
            .build();
        let attached = match docker.attach_container(id, Some(attach)).await {
            Ok(a) => a,
            Err(e) => {
                return Ok(failure(
                    ErrorType::InfrastructureError,
                    format!("attaching to the container failed: {e}"),
                ));
            }
        };
        if self.cancel.is_cancelled() {
            return Ok(cancelled());
        }
        if let Err(e) = docker
            .start_container(id, None::<StartContainerOptions>)
            .await
        {
            return Ok(failure(
                ErrorType::InfrastructureError,
                format!("starting the container failed: {e}"),
            ));
        }
        let started_at = Utc::now();
        let due = self
            .run
            .not_before
            .map_or(self.run.started_at, |t| t.max(self.run.started_at));
        crate::prometheus::metrics().container_started((started_at - due).as_seconds_f64());
        if let Err(e) =
            db::runs::set_container_started(&self.deps.pool, &self.run.id, started_at).await
        {
            tracing::warn!(run = %self.run.id, error = %e, "could not record the start time");
        }
        log.announce_change();
        self.follow(log, id, attached.output, started_at, StreamKind::Attach)
            .await
    }

    /// Picks up a container that a previous process started: its stored output is
    /// read from the beginning, skipping the lines already in the log file.
    pub async fn reattach(&self, log: &mut RunLog, id: String) -> Result<Ended, NotFinished> {
        let docker = &self.deps.docker;
        let state = match docker.inspect_container(&id, None).await {
            Ok(info) => {
                // The values this run received are read back from its container, so
                // the rest of its output stays masked after a restart.
                let env = info.config.and_then(|c| c.env).unwrap_or_default();
                log.set_masker(super::injection::masker_from_container_env(
                    &self.run.injected_secrets.0,
                    &env,
                ));
                info.state
            }
            Err(e) if engine::is_not_found(&e) => {
                return Ok(Ended::without_container(failure(
                    ErrorType::InfrastructureError,
                    "its container disappeared while Fast-Flow was not running (removed outside Fast-Flow, or the Docker engine was reset)".into(),
                )));
            }
            Err(e) => {
                return Ok(Ended::without_container(failure(
                    ErrorType::InfrastructureError,
                    format!("inspecting the container failed: {e}"),
                )));
            }
        };
        let never_started = state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .is_none_or(|t| t.starts_with("0001-"));
        if never_started {
            // Created but not started before the crash: it has not run, so it goes back to the queue.
            let _ = engine::remove(docker, &id).await;
            let _ = db::runs::requeue(&self.deps.pool, &self.run.id).await;
            return Err(NotFinished);
        }
        // A container that ended while we were away ran its course: no timeout applies now.
        let exited = !state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let path = log_path(&self.deps.config.logs_dir, &self.run.id);
        let stored = tokio::task::spawn_blocking(move || stored_streams(&path))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        log.resume_after(stored);
        log.system("[fastflow] re-attached after a server restart; the output continues".into());
        // With the engine's timestamps: after a rotation they tell new lines from old.
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .build();
        let clock = EngineClock::default();
        log.use_engine_clock(clock.clone());
        let output = clock.strip(Box::pin(docker.logs(&id, Some(options))));
        let started_at = self.run.container_started_at.unwrap_or_else(Utc::now);
        let kind = StreamKind::FollowLogs { exited };
        let outcome = self.follow(log, &id, output, started_at, kind).await?;
        Ok(Ended {
            outcome,
            container: Some(id),
        })
    }

    /// Pumps output and samples metrics until the container ends, then classifies it.
    async fn follow(
        &self,
        log: &mut RunLog,
        id: &str,
        output: OutputStream,
        started_at: DateTime<Utc>,
        kind: StreamKind,
    ) -> Result<RunOutcome, NotFinished> {
        let (deps, run) = (self.deps, self.run);
        let timeout = match self.pipeline.metadata.timeout {
            Some(0) => None,
            Some(t) => Some(t),
            None => deps.config.container_timeout,
        };
        let elapsed = (Utc::now() - started_at).to_std().unwrap_or_default();
        let remaining = match kind {
            StreamKind::FollowLogs { exited: true } => None,
            _ => timeout.map(|t| Duration::from_secs(t).saturating_sub(elapsed)),
        };
        let stop_pump = CancellationToken::new();
        let probe = SetupProbe {
            pool: &deps.pool,
            run_id: &run.id,
            container_started_at: started_at,
        };
        let pump = async {
            let result = log_pump::pump(&mut *log, output, stop_pump.clone(), probe).await;
            // An attach stream that ends while the container still runs was cut (a
            // socket proxy's idle timeout: 10 minutes of silence for HAProxy), not
            // completed: what follows is read from the engine's copy at the end.
            let cut = matches!(result, Ok(PumpEnd::Complete))
                && engine::is_running(&deps.docker, id).await;
            (result, cut)
        };
        let metrics_stop = CancellationToken::new();
        let sampler = metrics::sample(deps, run, self.limits, id, metrics_stop.clone());
        let waiter = async {
            let ended = self.wait_for_end(id, remaining, stop_pump.clone()).await;
            metrics_stop.cancel();
            (ended, Utc::now())
        };
        let ((pump_result, cut), (wait_result, ended_at), sampling) =
            tokio::join!(pump, waiter, sampler);
        if cut {
            log.system(
                "[fastflow] the output stream was cut off while the container ran (a socket proxy's idle timeout?); the rest of the log was read from the engine when the run ended".into(),
            );
        }
        let complete = match &pump_result {
            Ok(end) => *end == PumpEnd::Complete && !cut,
            Err(e) => {
                tracing::warn!(run = %run.id, "{e}");
                false
            }
        };
        let (exit_code, ending) = match wait_result {
            Ok(v) => v,
            Err(e) => {
                return Ok(failure(
                    ErrorType::InfrastructureError,
                    format!("waiting for the container failed: {e}"),
                ));
            }
        };
        if ending == Ending::Detached {
            return Err(NotFinished);
        }
        if let Some(problem) = sampling.problem() {
            log.system(format!("[fastflow] {problem}"));
            if let Err(e) = db::runs::set_metrics_error(&deps.pool, &run.id, &problem).await {
                tracing::warn!(run = %run.id, error = %e, "could not record the sampling problem");
            }
            log.announce_change();
        }
        // An attach stream that the engine closed delivered everything; a follow-logs
        // stream (after a restart) can miss an unterminated last line, and a stream we
        // stopped reading may lag: those are completed from the engine's stored copy.
        if (matches!(kind, StreamKind::FollowLogs { .. }) || !complete)
            && let Err(e) = engine_copy::reconcile(log, &deps.docker, id).await
        {
            tracing::warn!(run = %run.id, "{e}");
        }
        if ending == Ending::Cancelled {
            return Ok(RunOutcome {
                exit_code: Some(exit_code),
                ended_at: Some(ended_at),
                ..cancelled()
            });
        }
        let killed_at_limit = exit_code == 137 && self.limits.mem_hard_limit.is_some();
        let exit_state = engine::exit_state(&deps.docker, id, killed_at_limit)
            .await
            .unwrap_or_default();
        // The engine's exit time is the truth; ours is later after a restart.
        let ended_at = exit_state.finished_at.unwrap_or(ended_at);
        let mut outcome = outcome::classify(&ExitFacts {
            exit_code,
            timed_out: (ending == Ending::TimedOut).then(|| timeout.unwrap_or_default()),
            oom_killed: exit_state.oom_killed,
            mem_limit: self.limits.mem_hard_limit.as_ref(),
            peak_memory: sampling.peak_memory,
            limit_hits: sampling.limit_hits,
            main_started: log.setup_seen_at.is_some(),
            has_requirements: self.pipeline.has_requirements,
            ca_bundle_configured: deps.config.worker_ca_bundle.is_some(),
            stderr: &log.stderr_tail,
        });
        outcome.ended_at = Some(ended_at);
        Ok(outcome)
    }

    /// Waits for exit; kills at the timeout; stops (SIGTERM, then SIGKILL) on cancel;
    /// on shutdown either detaches or stops the run (`STOP_RUNS_ON_SHUTDOWN`).
    async fn wait_for_end(
        &self,
        id: &str,
        timeout: Option<Duration>,
        stop_pump: CancellationToken,
    ) -> Result<(i64, Ending), EngineError> {
        let docker = &self.deps.docker;
        let deadline = async {
            match timeout {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            code = engine::wait_exit(docker, id) => code.map(|c| (c, Ending::Exited)),
            _ = deadline => {
                engine::kill(docker, id).await?;
                engine::wait_exit(docker, id).await.map(|c| (c, Ending::TimedOut))
            }
            _ = self.cancel.cancelled() => {
                engine::stop(docker, id, CANCEL_GRACE_SECS).await?;
                engine::wait_exit(docker, id).await.map(|c| (c, Ending::Cancelled))
            }
            _ = self.deps.shutdown.cancelled() => {
                if self.deps.config.stop_runs_on_shutdown {
                    let reason = "stopped because Fast-Flow shut down (STOP_RUNS_ON_SHUTDOWN)";
                    let _ = db::runs::interrupt(&self.deps.pool, &self.run.id, reason).await;
                    engine::stop(docker, id, SHUTDOWN_GRACE_SECS).await?;
                    engine::wait_exit(docker, id).await.map(|c| (c, Ending::Cancelled))
                } else {
                    stop_pump.cancel();
                    return Ok((0, Ending::Detached));
                }
            }
        };
        // The output stream normally ends right after exit; don't wait on it forever.
        let stop = stop_pump.clone();
        tokio::spawn(async move {
            tokio::time::sleep(OUTPUT_DRAIN_GRACE).await;
            stop.cancel();
        });
        if result.is_err() {
            stop_pump.cancel();
        }
        result
    }
}
