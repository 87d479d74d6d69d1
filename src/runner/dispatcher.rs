//! The dispatcher: starts queued runs in FIFO order whenever a slot is free under
//! `MAX_CONCURRENT_RUNS` and the pipeline's `max_instances`. It sleeps until a
//! trigger, a finished run, or the next retry delay wakes it; it never polls.

use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;

use super::{Runner, engine};
use crate::db;

/// Queued runs looked at per pass; later ones are considered on the next pass.
const SCAN_LIMIT: i64 = 500;
/// How often to look for the engine while it is unreachable.
const ENGINE_RETRY: Duration = Duration::from_secs(2);

impl Runner {
    /// Runs until `shutdown`.
    pub async fn dispatch(self, shutdown: CancellationToken) {
        loop {
            // One bad pass (a database error, even a bug) never ends the dispatcher.
            let pass = std::panic::AssertUnwindSafe(self.start_what_fits()).catch_unwind();
            let sleep_for = match pass.await {
                // While the engine is away, look again every couple of seconds.
                Ok(Ok(())) if self.deps.engine.down_reason().is_some() => Some(ENGINE_RETRY),
                Ok(Ok(())) => self.time_to_next_retry().await,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "dispatching queued runs failed; retrying shortly");
                    Some(Duration::from_secs(1))
                }
                Err(_) => {
                    tracing::error!("a dispatch pass panicked; retrying shortly");
                    Some(Duration::from_secs(1))
                }
            };
            let timer = async {
                match sleep_for {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = timer => {}
            }
        }
    }

    async fn start_what_fits(&self) -> Result<(), db::DbError> {
        let max_total = self.deps.config.max_concurrent_runs as i64;
        let mut by_config = db::runs::running_by_config(&self.deps.pool).await?;
        let mut running: std::collections::HashMap<String, i64> = Default::default();
        for ((pipeline, _), n) in &by_config {
            *running.entry(pipeline.clone()).or_default() += n;
        }
        let mut total: i64 = running.values().sum();
        if total >= max_total {
            return Ok(());
        }
        let candidates = db::runs::startable(&self.deps.pool, SCAN_LIMIT).await?;
        if candidates.is_empty() {
            return Ok(());
        }
        // Claim nothing while the engine is away: the runs stay queued, with the reason shown.
        if !self.deps.engine.recently_ok() {
            match self.deps.docker.ping().await {
                Ok(_) => self.deps.engine.set_up(),
                Err(e) => {
                    self.deps.engine.set_down(format!(
                        "cannot reach the Docker engine at {}: {e}",
                        engine::describe_host(self.deps.config.docker_host.as_deref())
                    ));
                    return Ok(());
                }
            }
        }
        for candidate in candidates {
            let limit = self
                .deps
                .registry
                .get(&candidate.pipeline_name)
                .and_then(|p| p.metadata.max_instances);
            let of_pipeline = running.get(&candidate.pipeline_name).copied().unwrap_or(0);
            if limit.is_some_and(|l| of_pipeline >= l as i64) {
                continue; // FIFO within the pipeline; other pipelines may go ahead.
            }
            let job = (
                candidate.pipeline_name.clone(),
                candidate.run_config_id.clone(),
            );
            // Overlap "queue": one run of a job at a time, in slot order.
            if candidate.wait_for_previous && by_config.get(&job).is_some_and(|n| *n > 0) {
                continue;
            }
            let Some(run) = db::runs::claim(&self.deps.pool, &candidate.id).await? else {
                continue;
            };
            self.deps.hubs.notify_changed(&run.id);
            *by_config.entry(job).or_default() += 1;
            *running.entry(run.pipeline_name.clone()).or_default() += 1;
            total += 1;
            self.spawn_executor(run, None);
            if total >= max_total {
                break;
            }
        }
        Ok(())
    }

    async fn time_to_next_retry(&self) -> Option<Duration> {
        match db::runs::next_wakeup(&self.deps.pool).await {
            Ok(Some(at)) => {
                Some((at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(5))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "reading the retry schedule failed");
                Some(Duration::from_secs(1))
            }
        }
    }
}
