//! What a run's stored final state starts next: a retry while attempts remain;
//! once the outcome is final (no retry), a daemon restart (`restart_on_crash`)
//! and the matching `downstream_triggers`.

use chrono::Utc;

use super::{RunLink, Runner, TriggerRequest, retry};
use crate::db::Run;
use crate::pipelines::Pipeline;
use crate::pipelines::metadata::DownstreamTrigger;
use crate::run_status::{ErrorType, RunStatus};

pub use crate::pipelines::ranges::DEFAULT_RESTART_COOLDOWN;
/// A restarted run that crashes within this many seconds counts as a crash loop:
/// each further restart waits twice as long (at least 1 s, at most an hour).
const QUICK_CRASH_SECONDS: f64 = 60.0;
const MAX_CRASH_BACKOFF_SECONDS: u64 = 3600;

pub(super) async fn after_final(
    runner: &Runner,
    pipeline: &Pipeline,
    run: &Run,
    status: RunStatus,
    error_type: Option<ErrorType>,
) {
    let max_retries = pipeline
        .with_run_config(run.run_config_id.as_deref())
        .ok()
        .and_then(|p| p.metadata.retry_attempts)
        .unwrap_or(runner.deps.config.retry_attempts);
    if retry::should_retry(run, status, error_type, max_retries) {
        match retry::schedule(runner, pipeline, run).await {
            Ok(_) => return,
            Err(e) => {
                tracing::error!(run = %run.id, error = %e, "could not schedule the retry; the outcome is final")
            }
        }
    }
    runner
        .deps
        .notifier
        .run_ended(pipeline.metadata.notify.as_ref(), run, status, error_type)
        .await;
    // A pipeline disabled meanwhile starts nothing more.
    if !pipeline.metadata.enabled {
        return;
    }
    if status == RunStatus::Failed
        && error_type != Some(ErrorType::Cancelled)
        && pipeline.metadata.restart_on_crash
    {
        restart_after_crash(runner, pipeline, run).await;
    }
    for trigger in &pipeline.metadata.downstream_triggers {
        if fires(trigger, status) {
            start_downstream(runner, trigger, run).await;
        }
    }
}

/// Whether a downstream trigger fires for a final status (a cancel fires none).
pub fn fires(trigger: &DownstreamTrigger, status: RunStatus) -> bool {
    match status {
        RunStatus::Success => trigger.on_success,
        RunStatus::Failed => trigger.on_failure,
        _ => false,
    }
}

async fn restart_after_crash(runner: &Runner, pipeline: &Pipeline, crashed: &Run) {
    let configured = pipeline
        .metadata
        .restart_cooldown
        .unwrap_or(DEFAULT_RESTART_COOLDOWN);
    let quick = quick_crashes(runner, crashed).await;
    let cooldown = if quick == 0 {
        configured
    } else {
        configured
            .max(1)
            .saturating_mul(1u64 << quick.min(12))
            .min(MAX_CRASH_BACKOFF_SECONDS.max(configured))
    };
    let now = Utc::now();
    // restart_cooldown is range-checked (at most a day), so this cannot overflow; stay total anyway.
    let not_before = i64::try_from(cooldown)
        .ok()
        .and_then(|s| now.checked_add_signed(chrono::Duration::seconds(s)))
        .unwrap_or(now);
    let request = TriggerRequest {
        run_config_id: crashed.run_config_id.clone(),
        ..TriggerRequest::new("daemon_restart")
    };
    let link = RunLink {
        attempt: 1,
        previous_run_id: Some(crashed.id.clone()),
        not_before: Some(not_before),
        wait_for_previous: false,
    };
    match runner.enqueue(pipeline, request, link).await {
        Ok(next) => tracing::info!(run = %next.id, crashed = %crashed.id, cooldown_s = cooldown,
            quick_crashes_in_a_row = quick, "restart_on_crash: restart queued"),
        Err(e) => {
            tracing::error!(crashed = %crashed.id, error = %e, "restart_on_crash: could not queue the restart")
        }
    }
}

/// How many restarts in a row (up to 12) crashed within [`QUICK_CRASH_SECONDS`].
async fn quick_crashes(runner: &Runner, crashed: &Run) -> u32 {
    let mut n = 0;
    let mut run = crashed.clone();
    while n < 12 && run.triggered_by == "daemon_restart" {
        let lasted = run.duration_seconds().unwrap_or(0.0);
        if lasted >= QUICK_CRASH_SECONDS {
            break;
        }
        n += 1;
        let Some(previous) = run.previous_run_id.clone() else {
            break;
        };
        match crate::db::runs::get(&runner.deps.pool, &previous).await {
            Ok(Some(p)) => run = p,
            _ => break,
        }
    }
    n
}

async fn start_downstream(runner: &Runner, trigger: &DownstreamTrigger, parent: &Run) {
    let Some(target) = runner.deps.registry.get(&trigger.pipeline) else {
        tracing::warn!(parent = %parent.id, downstream = %trigger.pipeline,
            "downstream pipeline no longer exists; not started");
        return;
    };
    let request = TriggerRequest {
        run_config_id: trigger.run_config_id.clone(),
        parent_run_id: Some(parent.id.clone()),
        ..TriggerRequest::new("downstream")
    };
    match runner.trigger(&target, request).await {
        Ok(child) => tracing::info!(parent = %parent.id, run = %child.id, pipeline = %target.name,
            "downstream run queued"),
        Err(e) => tracing::error!(parent = %parent.id, downstream = %trigger.pipeline, error = %e,
            "downstream run not started"),
    }
}
