//! Executes one claimed run: create the container, attach before start, pump
//! logs, enforce the timeout, classify the exit, write the final state, and
//! remove the container off the critical path.

use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{AttachContainerOptionsBuilder, StartContainerOptions};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::container_spec::{self, RunContext};
use super::engine::{self, EngineError};
use super::log_pump::{self, RunLog};
use super::logs::{LogWriter, log_path};
use super::{Runner, RunnerDeps, retry};
use crate::db::{self, Run, RunOutcome};
use crate::pipelines::Pipeline;
use crate::run_status::{ErrorType, RunStatus};

/// How long the output stream may lag behind the container's exit.
const OUTPUT_DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Seconds between SIGTERM and SIGKILL when a run is cancelled.
const CANCEL_GRACE_SECS: i32 = 10;

/// Why the container stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

/// Runs `run` to completion and records its outcome. Never panics on engine or I/O
/// errors: they end the run as `infrastructure_error` with a reason in the log.
pub async fn execute(runner: Runner, run: Run) {
    let deps = runner.deps().clone();
    let cancel = CancellationToken::new();
    deps.with_active(|m| m.insert(run.id.clone(), cancel.clone()));
    let (status, outcome, pipeline) = execute_registered(&deps, &run, &cancel).await;
    deps.with_active(|m| m.remove(&run.id));
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

async fn execute_registered(
    deps: &Arc<RunnerDeps>,
    run: &Run,
    cancel: &CancellationToken,
) -> (RunStatus, RunOutcome, Option<Arc<Pipeline>>) {
    let hub = deps.hubs.sender(&run.id);
    let path = log_path(&deps.config.logs_dir, &run.id);
    let writer = match LogWriter::open(&path, deps.config.log_max_size_bytes) {
        Ok(w) => w,
        Err(e) => {
            let outcome = failure(
                ErrorType::InfrastructureError,
                format!("cannot open log file {}: {e}", path.display()),
            );
            let status = record(deps, run, &outcome).await;
            return (status, outcome, None);
        }
    };
    let mut log = RunLog::new(writer, hub);
    let pipeline = deps.registry.get(&run.pipeline_name);
    // A cancel that arrived between the claim and now is already in the row.
    let cancelled_early = matches!(db::runs::get(&deps.pool, &run.id).await, Ok(Some(r)) if r.status != RunStatus::Running);
    let mut outcome = match &pipeline {
        _ if cancelled_early || cancel.is_cancelled() => cancelled(),
        None => failure(
            ErrorType::PipelineError,
            format!(
                "pipeline `{}` no longer exists in PIPELINES_DIR",
                run.pipeline_name
            ),
        ),
        Some(p) if !p.is_valid() => failure(
            ErrorType::PipelineError,
            format!("pipeline is invalid: {}", p.error_lines().join("; ")),
        ),
        Some(p) => run_container(deps, run, p, &mut log, cancel).await,
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
    let status = record(deps, run, &outcome).await;
    (status, outcome, pipeline)
}

fn cancelled() -> RunOutcome {
    RunOutcome {
        status: RunStatus::Interrupted,
        error_type: Some(ErrorType::Cancelled),
        ..failure(ErrorType::Cancelled, "cancelled by a user".into())
    }
}

/// Writes the final state, then tells viewers the run ended. Returns the status stored.
async fn record(deps: &RunnerDeps, run: &Run, outcome: &RunOutcome) -> RunStatus {
    match db::runs::finish(&deps.pool, &run.id, outcome).await {
        Ok(true) => {}
        Ok(false) => tracing::info!(run = %run.id, "run already had a final status; kept it"),
        Err(e) => tracing::error!(run = %run.id, error = %e, "recording the run outcome failed"),
    }
    let status = match db::runs::get(&deps.pool, &run.id).await {
        Ok(Some(r)) => r.status,
        _ => outcome.status,
    };
    tracing::info!(run = %run.id, pipeline = %run.pipeline_name, %status, exit_code = ?outcome.exit_code, error_type = ?outcome.error_type, "run finished");
    deps.hubs.close(&run.id, status);
    status
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

async fn run_container(
    deps: &RunnerDeps,
    run: &Run,
    pipeline: &Pipeline,
    log: &mut RunLog,
    cancel: &CancellationToken,
) -> RunOutcome {
    let mut run_env = run.env_vars.0.clone();
    run_env.extend(run.parameters.0.iter().map(|(k, v)| (k.clone(), v.clone())));
    let image = engine::choose_image(&deps.docker, deps.config.worker_base_image.as_deref()).await;
    let ctx = RunContext {
        run_id: &run.id,
        instance_id: &deps.instance_id,
        run_env: &run_env,
        user: &deps.worker_user,
        image: &image,
    };
    let body = container_spec::build(&deps.config, pipeline, &ctx);
    let container_id = match engine::create_container(&deps.docker, body).await {
        Ok(id) => id,
        Err(e) => {
            return failure(
                ErrorType::InfrastructureError,
                format!("creating the container failed: {e}"),
            );
        }
    };
    if let Err(e) = db::runs::set_container(&deps.pool, &run.id, &container_id, &image).await {
        tracing::warn!(run = %run.id, error = %e, "could not record the container id");
    }
    let outcome = attach_start_wait(deps, run, pipeline, &container_id, log, cancel).await;
    engine::remove_in_background(&deps.docker, container_id);
    outcome
}

async fn attach_start_wait(
    deps: &RunnerDeps,
    run: &Run,
    pipeline: &Pipeline,
    id: &str,
    log: &mut RunLog,
    cancel: &CancellationToken,
) -> RunOutcome {
    let docker = &deps.docker;
    let attach = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdout(true)
        .stderr(true)
        .logs(true)
        .build();
    let attached = match docker.attach_container(id, Some(attach)).await {
        Ok(a) => a,
        Err(e) => {
            return failure(
                ErrorType::InfrastructureError,
                format!("attaching to the container failed: {e}"),
            );
        }
    };
    if cancel.is_cancelled() {
        return cancelled();
    }
    if let Err(e) = docker
        .start_container(id, None::<StartContainerOptions>)
        .await
    {
        return failure(
            ErrorType::InfrastructureError,
            format!("starting the container failed: {e}"),
        );
    }
    if let Err(e) = db::runs::set_container_started(&deps.pool, &run.id, Utc::now()).await {
        tracing::warn!(run = %run.id, error = %e, "could not record the start time");
    }

    let timeout = match pipeline.metadata.timeout {
        Some(0) => None,
        Some(t) => Some(t),
        None => deps.config.container_timeout,
    };
    let stop_pump = CancellationToken::new();
    let pump = log_pump::pump(log, attached.output, stop_pump.clone());
    let waiter = wait_with_timeout(docker, id, timeout, cancel, stop_pump.clone());
    let (pump_result, wait_result) = tokio::join!(pump, waiter);

    let mut notes = Vec::new();
    if let Err(e) = pump_result {
        notes.push(e);
    }
    if let Err(e) = log_pump::reconcile(log, docker, id).await {
        notes.push(e);
    }
    for note in &notes {
        tracing::warn!(run = %run.id, "{note}");
    }
    let (exit_code, ending) = match wait_result {
        Ok(v) => v,
        Err(e) => {
            return failure(
                ErrorType::InfrastructureError,
                format!("waiting for the container failed: {e}"),
            );
        }
    };
    if ending == Ending::Cancelled {
        return RunOutcome {
            exit_code: Some(exit_code),
            ..cancelled()
        };
    }
    classify_exit(
        deps,
        pipeline,
        id,
        exit_code,
        ending == Ending::TimedOut,
        timeout,
    )
    .await
}

/// Waits for exit, killing the container when the timeout expires and stopping it
/// (SIGTERM, then SIGKILL) on cancel. Returns the exit code and why the container
/// ended; then gives the output stream a grace period.
async fn wait_with_timeout(
    docker: &bollard::Docker,
    id: &str,
    timeout: Option<u64>,
    cancel: &CancellationToken,
    stop_pump: CancellationToken,
) -> Result<(i64, Ending), EngineError> {
    let deadline = async {
        match timeout {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        code = engine::wait_exit(docker, id) => code.map(|c| (c, Ending::Exited)),
        _ = deadline => {
            engine::kill(docker, id).await?;
            engine::wait_exit(docker, id).await.map(|c| (c, Ending::TimedOut))
        }
        _ = cancel.cancelled() => {
            engine::stop(docker, id, CANCEL_GRACE_SECS).await?;
            engine::wait_exit(docker, id).await.map(|c| (c, Ending::Cancelled))
        }
    };
    // The attach stream normally ends right after exit; don't wait on it forever.
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
        exit_code: Some(exit_code),
        error_type: None,
        error_message: None,
        log_lines: 0,
        log_bytes: 0,
        log_truncated: false,
    };
    if outcome.status == RunStatus::Success {
        return outcome;
    }
    let mem_limit = pipeline.metadata.mem_hard_limit.as_ref();
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
