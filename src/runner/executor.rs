//! Executes one run from claim to stored result: opens its log, lets
//! `container_run` drive the container, closes the log, writes the final state
//! (retrying until the database takes it), and only then removes the container
//! and schedules a retry. A run whose state cannot be stored before shutdown
//! keeps its container, so the next start finishes it from the engine's record.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::container_run::{Ended, Exec, NotFinished};
use super::log_pump::RunLog;
use super::logs::{LogSummary, LogWriter, log_path};
use super::outcome::{cancelled, failure};
use super::{Runner, RunnerDeps, container_spec, engine, injection};
use crate::db::{self, Run, RunOutcome};
use crate::pipelines::Pipeline;
use crate::run_status::{ErrorType, RunStatus};
use crate::secrets::SecretString;

/// Longest wait between two attempts to store a run's final state.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(10);

/// Runs a freshly claimed run to completion.
pub async fn execute(runner: Runner, run: Run) {
    drive(runner, run, None).await
}

/// Follows a run whose container was started by a previous server process.
pub async fn resume(runner: Runner, run: Run, container_id: String) {
    drive(runner, run, Some(container_id)).await
}

/// Everything a run logs carries its id and pipeline (the span's fields).
async fn drive(runner: Runner, run: Run, existing: Option<String>) {
    use tracing::Instrument;
    let span = tracing::info_span!("run", run_id = %run.id, pipeline = %run.pipeline_name);
    drive_in_span(runner, run, existing).instrument(span).await
}

async fn drive_in_span(runner: Runner, run: Run, existing: Option<String>) {
    let deps = runner.deps().clone();
    let cancel = CancellationToken::new();
    deps.with_active(|m| m.insert(run.id.clone(), cancel.clone()));
    let pipeline = deps.registry.get(&run.pipeline_name);
    if let (None, Some(rev)) = (
        &existing,
        pipeline.as_ref().and_then(|p| p.revision.clone()),
    ) {
        // Written before the container starts: the snapshot is then kept while it runs.
        if let Err(e) = crate::db::gitsync::set_run_revision(
            &deps.pool,
            &run.id,
            &rev.sha,
            &rev.branch,
            &rev.subject,
        )
        .await
        {
            tracing::warn!(run_id = %run.id, error = %e, "recording the run's git commit");
        }
    }
    if existing.is_none() {
        // A warm-up of this pipeline's requirements is under way: let it finish
        // rather than resolve the same packages twice.
        deps.preheat.wait_idle(&run.pipeline_name).await;
    }
    let handled = handle(&deps, &run, pipeline.as_deref(), &cancel, existing).await;
    deps.with_active(|m| m.remove(&run.id));
    let Ok(Ended { outcome, container }) = handled else {
        return;
    };
    let Some(status) = record(&deps, &run, &outcome).await else {
        return; // not stored before shutdown: the container stays for the next start
    };
    if let Some(id) = container {
        remove_container(&deps, id).await;
    }
    match pipeline {
        Some(pipeline) => {
            super::followups::after_final(&runner, &pipeline, &run, status, outcome.error_type)
                .await
        }
        // Gone from PIPELINES_DIR: the server's own settings still hear of it.
        None => {
            deps.notifier
                .run_ended(None, &run, status, outcome.error_type)
                .await
        }
    }
}

async fn handle(
    deps: &RunnerDeps,
    run: &Run,
    pipeline: Option<&Pipeline>,
    cancel: &CancellationToken,
    existing: Option<String>,
) -> Result<Ended, NotFinished> {
    let path = log_path(&deps.config.logs_dir, &run.id);
    let max = deps.config.log_max_size_bytes;
    // Half of MIN_FREE_DISK_MB stays free for the database to record the run's end.
    let reserve = deps.config.min_free_disk_bytes / 2;
    let logs_dir = deps.config.logs_dir.clone();
    let opened = tokio::task::spawn_blocking(move || {
        LogWriter::open(&path, max).map(|w| w.with_disk_reserve(&logs_dir, reserve))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let writer = match opened {
        Ok(w) => w,
        Err(e) => {
            let message = format!("log storage failed: cannot open the log file: {e}");
            return Ok(Ended::without_container(failure(
                ErrorType::InfrastructureError,
                message,
            )));
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
        _ if cancelled_early || cancel.is_cancelled() => Ok(Ended::without_container(cancelled())),
        None => Ok(Ended::without_container(failure(
            ErrorType::PipelineError,
            format!(
                "pipeline `{}` no longer exists in PIPELINES_DIR",
                run.pipeline_name
            ),
        ))),
        Some(p) if !p.is_valid() && existing.is_none() => Ok(Ended::without_container(failure(
            ErrorType::PipelineError,
            format!("pipeline is invalid: {}", p.error_lines().join("; ")),
        ))),
        Some(p) if !p.metadata.enabled && existing.is_none() => {
            Ok(Ended::without_container(failure(
                ErrorType::PipelineError,
                "pipeline was disabled (\"enabled\": false) while this run was queued; not started"
                    .into(),
            )))
        }
        Some(discovered) => match discovered.with_run_config(run.run_config_id.as_deref()) {
            Err(message) => Ok(Ended::without_container(failure(
                ErrorType::PipelineError,
                message,
            ))),
            Ok(p) => {
                let limits =
                    super::limits::for_run(&p.metadata.limits, &deps.config, deps.registry.host());
                let injected = match existing {
                    None => inject(deps, run, discovered, &mut log).await,
                    Some(_) => Ok(Default::default()),
                };
                match injected {
                    Err(ended) => Ok(ended),
                    Ok(injected_env) => {
                        let exec = Exec {
                            deps,
                            run,
                            pipeline: &p,
                            limits: &limits,
                            cancel,
                            injected_env: &injected_env,
                        };
                        match existing {
                            None => exec.start(&mut log).await,
                            Some(container) => exec.reattach(&mut log, container).await,
                        }
                    }
                }
            }
        },
    };
    let mut ended = match result {
        Ok(ended) => ended,
        Err(NotFinished) => {
            log.detach();
            // Nobody finishes this run here; a viewer waiting on it keeps its own channel.
            deps.hubs.forget_if_unused(&run.id);
            return Err(NotFinished);
        }
    };
    if let (Some(p), Some(message), Some(ErrorType::PipelineError)) = (
        pipeline,
        ended.outcome.error_message.as_deref(),
        ended.outcome.error_type,
    ) && let Some(hint) = injection::unlisted_hint(&deps.pool, p, message).await
    {
        ended.outcome.error_message = Some(format!("{message}; {hint}"));
    }
    if let Some(message) = ended.outcome.error_message.take() {
        // Never a secret value in the run record: the message may quote output.
        let message = log.mask(&message);
        // The reason also goes into the log, where the user is already looking.
        log.system(format!("[fastflow] {message}"));
        ended.outcome.error_message = Some(message);
    }
    let summary = log.close();
    apply_log_summary(&mut ended.outcome, summary);
    Ok(ended)
}

/// Resolves the secret values the run receives, masks them in its log from the
/// first line on and records their names. A missing or unreadable one ends the
/// run before any container exists.
async fn inject(
    deps: &RunnerDeps,
    run: &Run,
    pipeline: &Pipeline,
    log: &mut RunLog,
) -> Result<BTreeMap<String, SecretString>, Ended> {
    let overridden = run
        .env_vars
        .0
        .keys()
        .chain(run.parameters.0.keys())
        .map(String::as_str)
        .collect();
    let injection = injection::resolve(
        &deps.pool,
        &deps.cipher,
        pipeline,
        run.run_config_id.as_deref(),
        &overridden,
    )
    .await
    .map_err(|message| {
        Ended::without_container(failure(ErrorType::InfrastructureError, message))
    })?;
    let (masker, too_short) = injection.masker();
    log.set_masker(masker);
    if !too_short.is_empty() {
        log.system(format!(
            "[fastflow] not masked in this log (shorter than {} characters, or with a line that is): {}",
            crate::secrets::MIN_MASKED_CHARS,
            too_short.join(", ")
        ));
    }
    // Recorded before the container exists: after a restart these names are how
    // the rest of the output stays masked, so a run that cannot record them does
    // not start.
    if !injection.sources.is_empty()
        && let Err(e) = db::secrets::set_run_injected(&deps.pool, &run.id, &injection.names()).await
    {
        tracing::warn!(run_id = %run.id, error = %e, "recording the names of the run's secrets");
        return Err(Ended::without_container(failure(
            ErrorType::InfrastructureError,
            format!(
                "recording which secrets the run receives failed ({e}); not started, since its log could not stay masked after a restart"
            ),
        )));
    }
    Ok(injection.env)
}

/// Puts the log's counters on the outcome; a storage failure makes the run an
/// `infrastructure_error` that says what was lost (a cancel stays a cancel).
fn apply_log_summary(outcome: &mut RunOutcome, summary: LogSummary) {
    outcome.log_lines = summary.lines;
    outcome.log_bytes = summary.bytes;
    outcome.log_truncated = summary.truncated;
    let Some(failure) = summary.failure else {
        return;
    };
    let before = match (&outcome.error_message, outcome.exit_code) {
        (Some(message), _) => message.clone(),
        (None, Some(code)) => format!("main.py exited with code {code}"),
        (None, None) => String::new(),
    };
    let message = if before.is_empty() {
        failure.to_string()
    } else {
        format!("{failure}; {before}")
    };
    if outcome.error_type != Some(ErrorType::Cancelled) {
        outcome.status = RunStatus::Failed;
        outcome.error_type = Some(ErrorType::InfrastructureError);
    }
    outcome.error_message = Some(message);
}

/// Removal waits during shutdown (a background task would not run); otherwise it
/// happens off the critical path.
async fn remove_container(deps: &RunnerDeps, id: String) {
    if deps.shutdown.is_cancelled() {
        if let Err(e) = engine::remove(&deps.docker, &id).await {
            tracing::warn!(container = %id, error = %e, "could not remove run container");
        }
    } else {
        engine::remove_in_background(&deps.docker, id);
    }
}

/// Writes the final state and the counters, then tells viewers the run ended.
/// Retries while the database refuses the write (a full disk); gives up only at
/// shutdown, returning `None`. Returns the status stored (a cancel written earlier
/// wins over `outcome`).
pub(super) async fn record(
    deps: &RunnerDeps,
    run: &Run,
    outcome: &RunOutcome,
) -> Option<RunStatus> {
    let mut wait = Duration::from_millis(250);
    let mut attempts = 0u32;
    loop {
        // The run is counted by the database trigger that records its end.
        match db::runs::finish(&deps.pool, &run.id, outcome).await {
            Ok(false) => {
                tracing::info!(run = %run.id, "run already had a final status; kept it");
                break;
            }
            Ok(true) => break,
            Err(e) => {
                attempts += 1;
                if attempts == 1 || attempts % 30 == 0 {
                    tracing::error!(run = %run.id, error = %e, attempts,
                        "storing the run's final state failed; retrying until the database takes it");
                }
                tokio::select! {
                    _ = deps.shutdown.cancelled() => {
                        tracing::error!(run = %run.id, "run left RUNNING at shutdown; the next start finishes it");
                        return None;
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RECORD_RETRY_MAX);
            }
        }
    }
    let status = match db::runs::get(&deps.pool, &run.id).await {
        Ok(Some(r)) => {
            let end = r.finished_at.unwrap_or_else(chrono::Utc::now);
            let began = r.container_started_at.unwrap_or(r.started_at);
            crate::prometheus::metrics().run_finished(
                &r.pipeline_name,
                r.status.as_str(),
                (end - began).as_seconds_f64(),
                u64::try_from(r.log_bytes).unwrap_or(0),
            );
            r.status
        }
        _ => outcome.status,
    };
    tracing::info!(run = %run.id, pipeline = %run.pipeline_name, %status, exit_code = ?outcome.exit_code,
        error_type = ?outcome.error_type, "run finished");
    deps.hubs.close(&run.id, status);
    Some(status)
}
