//! Automatic retries as in Fast-Flow: how many (`retry_attempts`, else
//! `RETRY_ATTEMPTS`), how long to wait (`retry_strategy`), and the linked run row.

use std::time::Duration;

use chrono::Utc;

use super::{Runner, TriggerError};
use crate::db::Run;
use crate::pipelines::Pipeline;
use crate::pipelines::metadata::RetryStrategy;
use crate::run_status::{ErrorType, RunStatus};

/// Fast-Flow's default when no strategy is given: 60 s between attempts.
const DEFAULT_DELAY: Duration = Duration::from_secs(60);

/// The wait before retry number `retry` (1 for the first retry).
pub fn delay(strategy: Option<&RetryStrategy>, retry: u32) -> Duration {
    let retry = retry.max(1);
    match strategy {
        None => DEFAULT_DELAY,
        Some(RetryStrategy::FixedDelay { delay }) => Duration::from_secs(*delay),
        Some(RetryStrategy::ExponentialBackoff {
            initial_delay,
            max_delay,
            multiplier,
        }) => {
            let secs = *initial_delay as f64 * multiplier.powi(retry as i32 - 1);
            Duration::from_secs_f64(secs.min(*max_delay as f64).max(0.0))
        }
        // Once the list runs out, its last value repeats.
        Some(RetryStrategy::CustomSchedule { delays }) => {
            let i = (retry as usize - 1).min(delays.len().saturating_sub(1));
            Duration::from_secs(delays.get(i).copied().unwrap_or(60))
        }
    }
}

/// Whether a finished run should be retried: failed (not cancelled) with attempts left.
pub fn should_retry(
    run: &Run,
    status: RunStatus,
    error_type: Option<ErrorType>,
    max_retries: u32,
) -> bool {
    status == RunStatus::Failed
        && error_type != Some(ErrorType::Cancelled)
        && (run.attempt as u64) <= max_retries as u64
}

/// Queues the next attempt of `failed`, to start after the strategy's delay.
pub async fn schedule(
    runner: &Runner,
    pipeline: &Pipeline,
    failed: &Run,
) -> Result<Run, TriggerError> {
    let retry = failed.attempt as u32;
    let wait = delay(pipeline.metadata.retry_strategy.as_ref(), retry);
    let mut env = failed.env_vars.0.clone();
    env.insert("_fastflow_retry_count".into(), retry.to_string());
    env.insert("_fastflow_previous_run_id".into(), failed.id.clone());
    let base_trigger = failed.triggered_by.trim_end_matches("_retry");
    let not_before = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
    let link = super::RunLink {
        attempt: failed.attempt + 1,
        previous_run_id: Some(failed.id.clone()),
        not_before: Some(not_before),
    };
    let run = runner
        .enqueue(
            pipeline,
            env,
            failed.parameters.0.clone(),
            &format!("{base_trigger}_retry"),
            link,
        )
        .await?;
    tracing::info!(run = %run.id, previous = %failed.id, attempt = run.attempt, delay_s = wait.as_secs_f64(), "retry scheduled");
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        assert_eq!(delay(None, 1), Duration::from_secs(60));
        assert_eq!(
            delay(Some(&RetryStrategy::FixedDelay { delay: 5 }), 3),
            Duration::from_secs(5)
        );
        let exp = RetryStrategy::ExponentialBackoff {
            initial_delay: 60,
            max_delay: 3600,
            multiplier: 2.0,
        };
        let secs: Vec<u64> = (1..=8).map(|n| delay(Some(&exp), n).as_secs()).collect();
        assert_eq!(secs, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        let custom = RetryStrategy::CustomSchedule {
            delays: vec![1, 5, 30],
        };
        let secs: Vec<u64> = (1..=5).map(|n| delay(Some(&custom), n).as_secs()).collect();
        assert_eq!(secs, [1, 5, 30, 30, 30]);
    }
}
