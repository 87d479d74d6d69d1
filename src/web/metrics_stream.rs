//! Following a run's resource samples for a viewer: the stored samples first,
//! then live ones from the hub (newer than the last sent), then the end.

use tokio::sync::broadcast::error::RecvError;

use futures_util::Stream;

use super::AppState;
use crate::db;
use crate::run_status::RunStatus;
use crate::runner::hub::HubEvent;
use crate::runner::metrics::{MAX_POINTS, Sample, metrics_path, read_samples};

pub enum MetricFollow {
    Samples(Vec<Sample>),
    End(RunStatus),
}

pub fn follow_metrics(state: AppState, run_id: String) -> impl Stream<Item = MetricFollow> {
    async_stream::stream! {
        let path = metrics_path(&state.config.logs_dir, &run_id);
        let hubs = state.runner.hubs().clone();
        let mut rx = hubs.subscribe(&run_id);
        let mut end = match db::runs::get(&state.pool, &run_id).await {
            Ok(Some(run)) => run.status.is_terminal().then_some(run.status),
            _ => { hubs.forget_if_unused(&run_id); return; }
        };
        let mut last = None;
        let mut replay = true;
        loop {
            if replay {
                let stored = {
                    let path = path.clone();
                    super::log_stream::blocking(move || read_samples(&path, MAX_POINTS))
                        .await
                        .unwrap_or_default()
                };
                let fresh: Vec<Sample> = stored
                    .samples
                    .into_iter()
                    .filter(|s| last.is_none_or(|t| s.timestamp > t))
                    .collect();
                if let Some(s) = fresh.last() {
                    last = Some(s.timestamp);
                    yield MetricFollow::Samples(fresh);
                }
                replay = false;
            }
            if let Some(status) = end {
                drop(rx);
                hubs.forget_if_unused(&run_id);
                yield MetricFollow::End(status);
                return;
            }
            let event = tokio::select! {
                event = rx.recv() => event,
                _ = state.shutdown.cancelled() => return,
            };
            match event {
                Ok(HubEvent::Metric(sample)) => {
                    if last.is_none_or(|t| sample.timestamp > t) {
                        last = Some(sample.timestamp);
                        yield MetricFollow::Samples(vec![(*sample).clone()]);
                    }
                }
                Ok(HubEvent::Lines(_) | HubEvent::Changed) => {}
                Ok(HubEvent::End(status)) => { end = Some(status); replay = true; }
                Err(RecvError::Lagged(_)) => replay = true,
                Err(RecvError::Closed) => {
                    end = Some(match db::runs::get(&state.pool, &run_id).await {
                        Ok(Some(run)) => run.status,
                        _ => RunStatus::Failed,
                    });
                    replay = true;
                }
            }
        }
    }
}
