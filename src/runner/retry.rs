//! Automatic retries as in Fast-Flow: how many (`retry_attempts`, else
//! `RETRY_ATTEMPTS`), how long to wait (`retry_strategy`), and the linked run row.

use std::time::Duration;

use chrono::Utc;

use super::{Runner, TriggerError};
use crate::db::Run;
use crate::pipelines::Pipeline;
use crate::pipelines::metadata::RetryStrategy;
use crate::pipelines::ranges::RETRY_DELAY;
use crate::run_status::{ErrorType, RunStatus};

/// Fast-Flow's default when no strategy is given: 60 s between attempts.
const DEFAULT_DELAY: Duration = Duration::from_secs(60);

/// The wait before retry number `retry` (1 for the first retry). Total for any
/// input: an exponential that overflows is capped at `max_delay`, and no delay
/// exceeds the documented maximum (`ranges::RETRY_DELAY`).
pub fn delay(strategy: Option<&RetryStrategy>, retry: u32) -> Duration {
    let retry = retry.max(1);
    let cap = Duration::from_secs(RETRY_DELAY.max);
    let wait = match strategy {
        None => DEFAULT_DELAY,
        Some(RetryStrategy::FixedDelay { delay }) => Duration::from_secs(*delay),
        Some(RetryStrategy::ExponentialBackoff {
            initial_delay,
            max_delay,
            multiplier,
        }) => {
            let max = Duration::from_secs(*max_delay);
            let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
            let secs = *initial_delay as f64 * multiplier.powi(exponent);
            // NaN, infinity or anything past max_delay all mean "max_delay".
            Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
        }
        // Once the list runs out, its last value repeats.
        Some(RetryStrategy::CustomSchedule { delays }) => {
            let i = (retry as usize - 1).min(delays.len().saturating_sub(1));
            Duration::from_secs(delays.get(i).copied().unwrap_or(60))
        }
    };
    wait.min(cap)
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
    // The strategy of the run's own configuration, if it sets one.
    let strategy = pipeline
        .with_run_config(failed.run_config_id.as_deref())
        .ok()
        .and_then(|p| p.metadata.retry_strategy.clone());
    let wait = delay(strategy.as_ref(), retry);
    let mut env = failed.env_vars.0.clone();
    env.insert("_fastflow_retry_count".into(), retry.to_string());
    env.insert("_fastflow_previous_run_id".into(), failed.id.clone());
    let base_trigger = failed.triggered_by.trim_end_matches("_retry");
    let now = Utc::now();
    // `delay` is capped at a week, so this cannot overflow; stay total anyway.
    let not_before = chrono::Duration::from_std(wait)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now);
    let link = super::RunLink {
        attempt: failed.attempt + 1,
        previous_run_id: Some(failed.id.clone()),
        not_before: Some(not_before),
        wait_for_previous: failed.wait_for_previous,
    };
    let request = super::TriggerRequest {
        env_vars: env,
        parameters: failed.parameters.0.clone(),
        triggered_by: format!("{base_trigger}_retry"),
        run_config_id: failed.run_config_id.clone(),
        parent_run_id: failed.parent_run_id.clone(),
    };
    let run = runner.enqueue(pipeline, request, link).await?;
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

    #[test]
    fn extreme_values_never_panic_and_stay_capped() {
        let week = Duration::from_secs(RETRY_DELAY.max);
        for (initial_delay, max_delay, multiplier) in [
            (u64::MAX, u64::MAX, f64::MAX),
            (u64::MAX, 10, 2.0),
            (1, u64::MAX, 1e308),
            (0, 0, f64::INFINITY),
            (5, 60, f64::NAN),
        ] {
            let s = RetryStrategy::ExponentialBackoff {
                initial_delay,
                max_delay,
                multiplier,
            };
            for retry in [0, 1, 2, 64, u32::MAX] {
                assert!(delay(Some(&s), retry) <= week);
            }
        }
        let fixed = RetryStrategy::FixedDelay {
            delay: 10_000_000_000_000,
        };
        assert_eq!(delay(Some(&fixed), 1), week);
        let custom = RetryStrategy::CustomSchedule {
            delays: vec![u64::MAX],
        };
        assert_eq!(delay(Some(&custom), u32::MAX), week);
        assert_eq!(
            delay(Some(&RetryStrategy::CustomSchedule { delays: vec![] }), 3).as_secs(),
            60
        );
    }
}
