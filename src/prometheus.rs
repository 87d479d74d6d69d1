//! The Prometheus metrics of this process (one process serves one `/metrics`, so
//! the registry is process-wide): counters and histograms that the runner, the
//! scheduler and the git sync update as things happen, and gauges read when
//! `/metrics` is scraped (queue depth, running runs, containers, database size).
//! Counters start at zero with each process, as Prometheus expects of counters.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Distinct pipeline names given their own series; later ones are counted under
/// `pipeline="_other"`, so a flood of names cannot grow the registry without bound.
pub const MAX_PIPELINE_SERIES: usize = 2000;
const OTHER: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub pipeline: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabel {
    pub pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    pub channel: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub result: String,
}

/// What only the database and the runner know, read at scrape time.
#[derive(Debug, Default)]
pub struct ScrapeValues {
    pub queued: i64,
    pub running: i64,
    pub active_containers: i64,
    pub database_bytes: i64,
}

pub struct Metrics {
    registry: Registry,
    runs_finished: Family<RunLabels, Counter>,
    run_duration: Family<PipelineLabel, Histogram>,
    log_bytes: Family<PipelineLabel, Counter>,
    trigger_to_start: Histogram,
    scheduler_lag: Histogram,
    sync_results: Family<SyncLabels, Counter>,
    notifications: Family<NotifyLabels, Counter>,
    queued: Gauge,
    running: Gauge,
    active_containers: Gauge,
    database_bytes: Gauge,
    pipelines_seen: Mutex<HashSet<String>>,
    /// Encoding reads the registry while the gauges are set: one scrape at a time.
    scrape: Mutex<()>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Seconds, from a quick script to a long batch job.
const DURATION_BUCKETS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0,
];
/// Seconds, from an idle slot to a long queue.
const WAIT_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("fastflow");
        let runs_finished = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs_finished",
            "Runs that reached a final status, by pipeline and status",
            runs_finished.clone(),
        );
        let run_duration = Family::<PipelineLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(DURATION_BUCKETS)
        });
        registry.register_with_unit(
            "run_duration",
            "Time from container start (or trigger, when it never started) to the end, by pipeline",
            Unit::Seconds,
            run_duration.clone(),
        );
        let log_bytes = Family::<PipelineLabel, Counter>::default();
        registry.register_with_unit(
            "log_written",
            "Log bytes stored for finished runs, by pipeline",
            Unit::Bytes,
            log_bytes.clone(),
        );
        let trigger_to_start = Histogram::new(WAIT_BUCKETS);
        registry.register_with_unit(
            "trigger_to_container_start",
            "Time from a run's trigger (or its retry's due time) to its container's start",
            Unit::Seconds,
            trigger_to_start.clone(),
        );
        let scheduler_lag = Histogram::new(WAIT_BUCKETS);
        registry.register_with_unit(
            "scheduler_lag",
            "How late the scheduler queued a scheduled run after its slot",
            Unit::Seconds,
            scheduler_lag.clone(),
        );
        let sync_results = Family::<SyncLabels, Counter>::default();
        registry.register(
            "git_syncs",
            "Git syncs by result (ok, failed)",
            sync_results.clone(),
        );
        let notifications = Family::<NotifyLabels, Counter>::default();
        registry.register(
            "notification_attempts",
            "Notification delivery attempts by channel (email, webhook) and result (sent, retry, failed)",
            notifications.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let queued = gauge(&mut registry, "runs_queued", "Runs waiting to start");
        let running = gauge(
            &mut registry,
            "runs_running",
            "Runs started and not finished",
        );
        let active_containers = gauge(
            &mut registry,
            "active_containers",
            "Run containers this process follows now",
        );
        let database_bytes = Gauge::default();
        registry.register_with_unit(
            "database_size",
            "Size of the SQLite database (its pages in use; the write-ahead log not counted)",
            Unit::Bytes,
            database_bytes.clone(),
        );
        Self {
            registry,
            runs_finished,
            run_duration,
            log_bytes,
            trigger_to_start,
            scheduler_lag,
            sync_results,
            notifications,
            queued,
            running,
            active_containers,
            database_bytes,
            pipelines_seen: Mutex::new(HashSet::new()),
            scrape: Mutex::new(()),
        }
    }

    /// The pipeline's own label, or `_other` past [`MAX_PIPELINE_SERIES`] names.
    fn pipeline_label(&self, pipeline: &str) -> String {
        let mut seen = self
            .pipelines_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if seen.contains(pipeline) {
            return pipeline.to_string();
        }
        if seen.len() >= MAX_PIPELINE_SERIES {
            return OTHER.to_string();
        }
        seen.insert(pipeline.to_string());
        pipeline.to_string()
    }

    /// A run reached its final status after `seconds` and stored `log_bytes`.
    pub fn run_finished(&self, pipeline: &str, status: &str, seconds: f64, log_bytes: u64) {
        let pipeline = self.pipeline_label(pipeline);
        self.runs_finished
            .get_or_create(&RunLabels {
                pipeline: pipeline.clone(),
                status: status.to_string(),
            })
            .inc();
        let label = PipelineLabel { pipeline };
        self.run_duration
            .get_or_create(&label)
            .observe(seconds.max(0.0));
        self.log_bytes.get_or_create(&label).inc_by(log_bytes);
    }

    pub fn container_started(&self, seconds_since_trigger: f64) {
        self.trigger_to_start
            .observe(seconds_since_trigger.max(0.0));
    }

    pub fn scheduled_run_queued(&self, seconds_late: f64) {
        self.scheduler_lag.observe(seconds_late.max(0.0));
    }

    pub fn git_synced(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.sync_results
            .get_or_create(&SyncLabels {
                result: result.into(),
            })
            .inc();
    }

    /// One delivery attempt of a notification ended: `sent`, `retry` or `failed`.
    pub fn notification_attempt(&self, channel: &str, result: &str) {
        self.notifications
            .get_or_create(&NotifyLabels {
                channel: channel.into(),
                result: result.into(),
            })
            .inc();
    }

    /// The text exposition format (0.0.4), with the scrape-time values set first.
    pub fn render(&self, now: &ScrapeValues) -> Result<String, std::fmt::Error> {
        let _one = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        self.queued.set(now.queued);
        self.running.set(now.running);
        self.active_containers.set(now.active_containers);
        self.database_bytes.set(now.database_bytes);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_past_the_cap_share_one_series() {
        let m = Metrics::new();
        for i in 0..MAX_PIPELINE_SERIES + 5 {
            m.run_finished(&format!("p{i}"), "SUCCESS", 1.0, 10);
        }
        let text = m.render(&ScrapeValues::default()).unwrap();
        assert!(
            text.contains(r#"fastflow_runs_finished_total{pipeline="_other",status="SUCCESS"} 5"#)
        );
        assert!(text.contains(r#"fastflow_runs_finished_total{pipeline="p0",status="SUCCESS"} 1"#));
        assert!(!text.contains(&format!("p{}\"", MAX_PIPELINE_SERIES)));
    }
}
