//! Executes one run: create the container, attach before start, pump logs and
//! sample metrics, enforce timeout and cancel, classify the exit, write the
//! final state, remove the container off the critical path, schedule a retry.
//! `resume` picks up a run whose container outlived a previous server process.

use std::time::Duration;

use bollard::query_parameters::{
    AttachContainerOptionsBuilder, LogsOptionsBuilder, StartContainerOptions,
};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::container_spec::{self, RunContext};
use super::engine::{self, EngineError};
use super::log_pump::{self, OutputStream, RunLog, SetupProbe};
use super::logs::{LogWriter, log_path, stream_line_counts};
use super::{Runner, RunnerDeps, metrics, retry};
use crate::db::{self, Run, RunOutcome};
use crate::pipelines::Pipeline;
use crate::run_status::{ErrorType, RunStatus};

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

/// What became of a run this process handled.
enum Handled {
    Finished(RunOutcome),
    /// Left running (shutdown) or put back in the queue (engine unreachable).
    NotFinished,
}

/// Runs a freshly claimed run to completion.
pub async fn execute(runner: Runner, run: Run) {
    drive(runner, run, None).await
}

/// Follows a run whose container was started by a previous server process.
pub async fn resume(runner: Runner, run: Run, container_id: String) {
    drive(runner, run, Some(container_id)).await
}

async fn drive(runner: Runner, run: Run, existing: Option<String>) {
    let deps = runner.deps().clone();
    let cancel = CancellationToken::new();
    deps.with_active(|m| m.insert(run.id.clone(), cancel.clone()));
    let pipeline = deps.registry.get(&run.pipeline_name);
    let handled = handle(&deps, &run, pipeline.as_deref(), &cancel, existing).await;
    deps.with_active(|m| m.remove(&run.id));
    let Handled::Finished(outcome) = handled else {
        return;
    };
    let status = record(&deps, &run, &outcome).await;
    let Some(pipeline) = pipeline else { return };
    let max_retries = pipeline
        .metadata
        .retry_attempts
        .unwrap_or(deps.config.retry_attempts);
    if retry::should_retry(&run, status, outcome.error_type, max_retries)
        && let Err(e) = retry::schedule(&runner, &pipeline, &run).await
    {
        tracing::error!(run = %run.id, error = %e, "could not schedule the retry");
    }
}

async fn handle(
    deps: &RunnerDeps,
    run: &Run,
    pipeline: Option<&Pipeline>,
    cancel: &CancellationToken,
    existing: Option<String>,
) -> Handled {
    let path = log_path(&deps.config.logs_dir, &run.id);
    let writer = match LogWriter::open(&path, deps.config.log_max_size_bytes) {
        Ok(w) => w,
        Err(e) => {
            return Handled::Finished(failure(
                ErrorType::InfrastructureError,
                format!("cannot open log file {}: {e}", path.display()),
            ));
        }
    };
    let mut log = RunLog::new(writer, deps.hubs.sender(&run.id)).with_setup_marker(
        container_spec::setup_marker(&run.id),
        run.setup_duration.is_some(),
    );
    // A cancel that arrived between the claim and now is already in the row.
    let cancelled_early = existing.is_none()
        && matches!(db::runs::get(&deps.pool, &run.id).await, Ok(Some(r)) if r.status != RunStatus::Running);
    let result = match pipeline {
        _ if cancelled_early || cancel.is_cancelled() => Ok(cancelled()),
        None => Ok(failure(
            ErrorType::PipelineError,
            format!(
                "pipeline `{}` no longer exists in PIPELINES_DIR",
                run.pipeline_name
            ),
        )),
        Some(p) if !p.is_valid() && existing.is_none() => Ok(failure(
            ErrorType::PipelineError,
            format!("pipeline is invalid: {}", p.error_lines().join("; ")),
        )),
        Some(p) => {
            let exec = Exec {
                deps,
                run,
                pipeline: p,
                cancel,
            };
            match existing {
                None => exec.start(&mut log).await,
                Some(container) => exec.reattach(&mut log, container).await,
            }
        }
    };
    let mut outcome = match result {
        Ok(outcome) => outcome,
        Err(NotFinished) => {
            if let Err(e) = log.detach() {
                tracing::error!(run = %run.id, error = %e, "flushing the log failed");
            }
            // Nobody finishes this run here; a viewer waiting on it keeps its own channel.
            deps.hubs.forget_if_unused(&run.id);
            return Handled::NotFinished;
        }
    };
    if let Some(message) = &outcome.error_message {
        // The reason also goes into the log, where the user is already looking.
        let _ = log.system(format!("[fastflow] {message}"));
    }
    match log.close() {
        Ok(summary) => {
            outcome.log_lines = summary.lines;
            outcome.log_bytes = summary.bytes;
            outcome.log_truncated = summary.truncated;
        }
        Err(e) => tracing::error!(run = %run.id, error = %e, "finishing the log file failed"),
    }
    Handled::Finished(outcome)
}

/// The run is not finished by this process (see [`Handled::NotFinished`]).
struct NotFinished;

struct Exec<'a> {
    deps: &'a RunnerDeps,
    run: &'a Run,
    pipeline: &'a Pipeline,
    cancel: &'a CancellationToken,
}

impl Exec<'_> {
    async fn start(&self, log: &mut RunLog) -> Result<RunOutcome, NotFinished> {
        let (deps, run) = (self.deps, self.run);
        let mut run_env = run.env_vars.0.clone();
        run_env.extend(run.parameters.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        let image =
            engine::choose_image(&deps.docker, deps.config.worker_base_image.as_deref()).await;
        let ctx = RunContext {
            run_id: &run.id,
            instance_id: &deps.instance_id,
            run_env: &run_env,
            user: &deps.worker_user,
            image: &image,
        };
        let body = container_spec::build(&deps.config, self.pipeline, &ctx);
        let id = match engine::create_container(&deps.docker, body).await {
            Ok(id) => id,
            Err(e) if e.is_unreachable() => {
                // Not the run's fault: back to the queue until the engine returns.
                deps.engine.set_down(e.to_string());
                if let Err(db) = db::runs::requeue(&deps.pool, &run.id).await {
                    tracing::error!(run = %run.id, error = %db, "could not requeue the run");
                }
                return Err(NotFinished);
            }
            Err(e) => {
                return Ok(failure(
                    ErrorType::InfrastructureError,
                    format!("creating the container failed: {e}"),
                ));
            }
        };
        if let Err(e) = db::runs::set_container(&deps.pool, &run.id, &id, &image).await {
            tracing::warn!(run = %run.id, error = %e, "could not record the container id");
        }
        let outcome = self.attach_and_start(log, &id).await;
        if outcome.is_ok() {
            self.remove_container(id).await;
        }
        outcome
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
        if let Err(e) =
            db::runs::set_container_started(&self.deps.pool, &self.run.id, started_at).await
        {
            tracing::warn!(run = %self.run.id, error = %e, "could not record the start time");
        }
        self.follow(log, id, attached.output, started_at).await
    }

    /// Picks up a container that a previous process started: its stored output is
    /// read from the beginning, skipping the lines already in the log file.
    async fn reattach(&self, log: &mut RunLog, id: String) -> Result<RunOutcome, NotFinished> {
        let docker = &self.deps.docker;
        let state = match docker.inspect_container(&id, None).await {
            Ok(info) => info.state,
            Err(e) if engine::is_not_found(&e) => {
                return Ok(failure(
                    ErrorType::InfrastructureError,
                    "its container disappeared while Fast-Flow was not running (removed outside Fast-Flow, or the Docker engine was reset)".into(),
                ));
            }
            Err(e) => {
                return Ok(failure(
                    ErrorType::InfrastructureError,
                    format!("inspecting the container failed: {e}"),
                ));
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
        let path = log_path(&self.deps.config.logs_dir, &self.run.id);
        let (stdout_lines, stderr_lines) = stream_line_counts(&path).unwrap_or((0, 0));
        log.skip_stored(stdout_lines, stderr_lines);
        let _ = log
            .system("[fastflow] re-attached after a server restart; the output continues".into());
        let options = LogsOptionsBuilder::new()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let output: OutputStream = Box::pin(docker.logs(&id, Some(options)));
        let started_at = self.run.container_started_at.unwrap_or_else(Utc::now);
        let outcome = self.follow(log, &id, output, started_at).await;
        if outcome.is_ok() {
            self.remove_container(id).await;
        }
        outcome
    }

    /// Removal is off the critical path, except during shutdown, when the
    /// process is about to end and a background task would not run.
    async fn remove_container(&self, id: String) {
        if self.deps.shutdown.is_cancelled() {
            if let Err(e) = engine::remove(&self.deps.docker, &id).await {
                tracing::warn!(container = %id, error = %e, "could not remove run container");
            }
        } else {
            engine::remove_in_background(&self.deps.docker, id);
        }
    }

    /// Pumps output and samples metrics until the container ends, then classifies it.
    async fn follow(
        &self,
        log: &mut RunLog,
        id: &str,
        output: OutputStream,
        started_at: DateTime<Utc>,
    ) -> Result<RunOutcome, NotFinished> {
        let (deps, run) = (self.deps, self.run);
        let timeout = match self.pipeline.metadata.timeout {
            Some(0) => None,
            Some(t) => Some(t),
            None => deps.config.container_timeout,
        };
        let elapsed = (Utc::now() - started_at).to_std().unwrap_or_default();
        let remaining = timeout.map(|t| Duration::from_secs(t).saturating_sub(elapsed));
        let stop_pump = CancellationToken::new();
        let probe = SetupProbe {
            pool: &deps.pool,
            run_id: &run.id,
            container_started_at: started_at,
        };
        let pump = log_pump::pump(log, output, stop_pump.clone(), probe);
        let metrics_stop = CancellationToken::new();
        let sampler = metrics::sample(deps, run, self.pipeline, id, metrics_stop.clone());
        let waiter = async {
            let ended = self.wait_for_end(id, remaining, stop_pump.clone()).await;
            metrics_stop.cancel();
            ended
        };
        let (pump_result, wait_result, ()) = tokio::join!(pump, waiter, sampler);

        if let Err(e) = &pump_result {
            tracing::warn!(run = %run.id, "{e}");
        }
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
        if let Err(e) = log_pump::reconcile(log, &deps.docker, id).await {
            tracing::warn!(run = %run.id, "{e}");
        }
        if ending == Ending::Cancelled {
            return Ok(RunOutcome {
                exit_code: Some(exit_code),
                ..cancelled()
            });
        }
        Ok(classify_exit(
            deps,
            self.pipeline,
            id,
            exit_code,
            ending == Ending::TimedOut,
            timeout,
        )
        .await)
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

fn cancelled() -> RunOutcome {
    RunOutcome {
        status: RunStatus::Interrupted,
        ..failure(ErrorType::Cancelled, "cancelled by a user".into())
    }
}

fn failure(error_type: ErrorType, message: String) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Failed,
        exit_code: None,
        error_type: Some(error_type),
        error_message: Some(message),
        log_lines: 0,
        log_bytes: 0,
        log_truncated: false,
    }
}

/// Writes the final state and the counters, then tells viewers the run ended.
/// Returns the status stored (a cancel written earlier wins over `outcome`).
async fn record(deps: &RunnerDeps, run: &Run, outcome: &RunOutcome) -> RunStatus {
    match db::runs::finish(&deps.pool, &run.id, outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::info!(run = %run.id, "run already had a final status; kept it"),
        Err(e) => tracing::error!(run = %run.id, error = %e, "recording the run outcome failed"),
    }
    if let Err(e) = db::runs::count_finished(&deps.pool, &run.id).await {
        tracing::error!(run = %run.id, error = %e, "updating the run counters failed");
    }
    let status = match db::runs::get(&deps.pool, &run.id).await {
        Ok(Some(r)) => r.status,
        _ => outcome.status,
    };
    tracing::info!(run = %run.id, pipeline = %run.pipeline_name, %status, exit_code = ?outcome.exit_code,
        error_type = ?outcome.error_type, "run finished");
    deps.hubs.close(&run.id, status);
    status
}

async fn classify_exit(
    deps: &RunnerDeps,
    pipeline: &Pipeline,
    id: &str,
    exit_code: i64,
    timed_out: bool,
    timeout: Option<u64>,
) -> RunOutcome {
    let mut outcome = RunOutcome {
        status: if exit_code == 0 && !timed_out {
            RunStatus::Success
        } else {
            RunStatus::Failed
        },
        ..failure(ErrorType::PipelineError, String::new())
    };
    outcome.exit_code = Some(exit_code);
    if outcome.status == RunStatus::Success {
        outcome.error_type = None;
        outcome.error_message = None;
        return outcome;
    }
    let mem_limit = pipeline.metadata.limits.mem_hard_limit.as_ref();
    let oom = !timed_out
        && (engine::oom_killed(&deps.docker, id).await.unwrap_or(false)
            || (exit_code == 137 && mem_limit.is_some()));
    let (error_type, message) = if timed_out {
        (
            ErrorType::Timeout,
            format!(
                "timed out after {}s and was killed",
                timeout.unwrap_or_default()
            ),
        )
    } else if oom {
        let limit = mem_limit
            .map(|m| format!("mem_hard_limit {}", m.text))
            .unwrap_or_else(|| "the host's memory".into());
        (
            ErrorType::Oom,
            format!("killed: out of memory (exceeded {limit})"),
        )
    } else {
        (
            ErrorType::PipelineError,
            format!("main.py exited with code {exit_code}"),
        )
    };
    outcome.error_type = Some(error_type);
    outcome.error_message = Some(message);
    outcome
}
