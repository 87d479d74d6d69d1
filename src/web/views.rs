//! Display-ready rows for the templates: formatting of times, durations and
//! statuses happens here once, not in every template.

use chrono::{DateTime, Utc};

use crate::db::Run;
use crate::db::run_stats::PipelineRunStats;
use crate::pipelines::Pipeline;

pub fn fmt_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "just now", "5 min ago", "3 h ago", "2 days ago" — the absolute time goes in a title.
pub fn fmt_ago(t: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - *t).num_seconds();
    match secs {
        i64::MIN..=44 => "just now".to_string(),
        45..=3_599 => format!("{} min ago", (secs + 30) / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        86_400..=172_799 => "yesterday".to_string(),
        _ => format!("{} days ago", secs / 86_400),
    }
}

pub fn fmt_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        format!(
            "{}m {:02}s",
            (seconds / 60.0) as u64,
            (seconds % 60.0) as u64
        )
    } else {
        format!(
            "{}h {:02}m",
            (seconds / 3600.0) as u64,
            ((seconds % 3600.0) / 60.0) as u64
        )
    }
}

pub fn fmt_bytes(bytes: u64) -> String {
    crate::byte_size::human_bytes(bytes)
}

/// One line of the pipelines table.
pub struct PipelineRow {
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub valid: bool,
    pub enabled: bool,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub has_requirements: bool,
    pub total_runs: i64,
    pub last_status: String,
    pub last_run_id: String,
    pub last_run_at: String,
    pub last_run_ago: String,
    /// "93 %" of its finished runs succeeded (lifetime counters); empty before any.
    pub success_rate: String,
    /// Its last 10 outcomes as SVG squares (`dashboard_charts::outcome_strip`); empty before any run.
    pub strip: String,
}

impl PipelineRow {
    pub fn new(p: &Pipeline, stats: Option<&PipelineRunStats>) -> Self {
        Self {
            name: p.name.clone(),
            description: p.metadata.description.clone().unwrap_or_default(),
            tags: p.metadata.tags.clone(),
            valid: p.is_valid(),
            enabled: p.metadata.enabled,
            errors: p.error_lines(),
            warnings: p.warnings.iter().map(|w| p.located(w)).collect(),
            has_requirements: p.has_requirements,
            total_runs: stats.map(|s| s.total_runs).unwrap_or(0),
            last_status: stats
                .and_then(|s| s.last_run_status)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            last_run_id: stats
                .and_then(|s| s.last_run_id.clone())
                .unwrap_or_default(),
            last_run_at: stats
                .and_then(|s| s.last_run_at.as_ref())
                .map(fmt_time)
                .unwrap_or_default(),
            last_run_ago: stats
                .and_then(|s| s.last_run_at.as_ref())
                .map(|t| fmt_ago(t, Utc::now()))
                .unwrap_or_default(),
            success_rate: stats
                .filter(|s| s.successful_runs + s.failed_runs > 0)
                .map(|s| {
                    let rate = s.successful_runs as f64 * 100.0
                        / (s.successful_runs + s.failed_runs) as f64;
                    format!("{rate:.0} %")
                })
                .unwrap_or_default(),
            strip: String::new(),
        }
    }

    pub fn runnable(&self) -> bool {
        self.valid && self.enabled
    }
}

/// One line of a runs table.
pub struct RunRow {
    pub id: String,
    pub short_id: String,
    pub pipeline_name: String,
    pub status: String,
    pub started_at: String,
    /// The trigger time relative to now ("5 min ago"), `started_at` on hover.
    pub started_ago: String,
    /// The trigger time, RFC 3339 (a `<time datetime>`).
    pub started_iso: String,
    pub duration: String,
    pub exit_code: String,
    pub error_type: String,
    pub error_message: String,
    pub triggered_by: String,
    /// A soft-limit warning, if the run exceeded one.
    pub warning: String,
    pub attempt: i64,
    pub run_config_id: String,
    /// A later attempt listed under its first run (indented, "↳ attempt 2").
    pub under_first: bool,
}

/// The last 8 characters of a run id, as lists show it (`…a1b2c3d4`).
pub fn short_id(id: &str) -> String {
    let start = id.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
    id[start..].to_string()
}

impl RunRow {
    pub fn new(r: &Run) -> Self {
        Self {
            id: r.id.clone(),
            short_id: short_id(&r.id),
            pipeline_name: r.pipeline_name.clone(),
            status: r.status.to_string(),
            started_at: fmt_time(&r.started_at),
            started_ago: fmt_ago(&r.started_at, Utc::now()),
            started_iso: r
                .started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            duration: r.duration_seconds().map(fmt_duration).unwrap_or_default(),
            exit_code: r.exit_code.map(|c| c.to_string()).unwrap_or_default(),
            error_type: r.error_type.map(|e| e.to_string()).unwrap_or_default(),
            error_message: r.error_message.clone().unwrap_or_default(),
            triggered_by: r.triggered_by.clone(),
            warning: r.soft_limit_warning.clone().unwrap_or_default(),
            attempt: r.attempt,
            run_config_id: r.run_config_id.clone().unwrap_or_default(),
            under_first: false,
        }
    }
}

/// The run detail header: everything about a run except its log.
pub struct RunDetail {
    pub row: RunRow,
    pub finished: bool,
    /// Finished in the database, but its container is still stopping (a cancel
    /// or a timeout is recorded first): exit code and log counts come later.
    pub stopping: bool,
    pub queued_at: String,
    pub container_started_at: String,
    pub finished_at: String,
    pub image: String,
    pub log_lines: i64,
    pub log_size: String,
    pub log_truncated: bool,
    pub env_keys: Vec<String>,
    /// Names of the secret values the run received, with their source; no values.
    pub injected_secrets: Vec<(String, String)>,
    pub previous_run_id: String,
    /// Why a queued run waits, and its place in the queue.
    pub waiting: String,
    pub setup: String,
    pub peak_cpu: String,
    pub peak_memory: String,
    /// Why the run has no (or incomplete) resource samples.
    pub metrics_error: String,
    pub run_config_id: String,
    /// The run whose end started this one (downstream trigger).
    pub parent_run_id: String,
    /// "pipeline (STATUS)" of that run, when it is still there.
    pub parent_label: String,
    /// Runs this one's end started: (id, pipeline, status).
    pub children: Vec<(String, String, String)>,
    /// "12:00:00 UTC slot of job …" when a schedule started the run: (job id, slot time).
    pub slot: Option<(String, String)>,
    /// When the container started, RFC 3339, while the run goes on: the browser
    /// ticks the duration from it (`static/app.js`).
    pub ticking_since: String,
    /// Attempts that retry this run: (id, "attempt 3 PENDING", "scheduled at …" or "").
    pub next_attempts: Vec<(String, String, String)>,
    /// The git commit the run's files came from: (short sha, full sha, branch, subject).
    pub git: Option<(String, String, String, String)>,
}

impl RunDetail {
    pub fn new(r: &Run) -> Self {
        let mut env_keys: Vec<String> = r
            .env_vars
            .0
            .keys()
            .chain(r.parameters.0.keys())
            .cloned()
            .collect();
        env_keys.sort();
        env_keys.dedup();
        Self {
            row: RunRow::new(r),
            finished: r.status.is_terminal(),
            stopping: false,
            queued_at: fmt_time(&r.started_at),
            container_started_at: r
                .container_started_at
                .as_ref()
                .map(fmt_time)
                .unwrap_or_default(),
            finished_at: r.finished_at.as_ref().map(fmt_time).unwrap_or_default(),
            image: r.image.clone().unwrap_or_default(),
            log_lines: r.log_lines,
            log_size: fmt_bytes(r.log_bytes.max(0) as u64),
            log_truncated: r.log_truncated,
            env_keys,
            injected_secrets: r
                .injected_secrets
                .0
                .iter()
                .map(|(k, s)| (k.clone(), s.replace('_', " ")))
                .collect(),
            previous_run_id: r.previous_run_id.clone().unwrap_or_default(),
            waiting: String::new(),
            setup: r.setup_duration.map(fmt_duration).unwrap_or_default(),
            peak_cpu: r
                .peak_cpu_percent
                .map(|c| format!("{c:.0}% of a core"))
                .unwrap_or_default(),
            peak_memory: r
                .peak_memory_bytes
                .map(|b| fmt_bytes(b.max(0) as u64))
                .unwrap_or_default(),
            metrics_error: r.metrics_error.clone().unwrap_or_default(),
            run_config_id: r.run_config_id.clone().unwrap_or_default(),
            parent_run_id: r.parent_run_id.clone().unwrap_or_default(),
            parent_label: String::new(),
            children: Vec::new(),
            slot: None,
            ticking_since: match (&r.container_started_at, r.status.is_terminal()) {
                (Some(t), false) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                _ => String::new(),
            },
            next_attempts: Vec::new(),
            git: r.git_sha.as_ref().map(|sha| {
                (
                    sha.chars().take(12).collect(),
                    sha.clone(),
                    r.git_branch.clone().unwrap_or_default(),
                    r.git_subject.clone().unwrap_or_default(),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        let now = Utc::now();
        let ago = |s: i64| fmt_ago(&(now - chrono::Duration::seconds(s)), now);
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(10), "just now");
        assert_eq!(ago(300), "5 min ago");
        assert_eq!(ago(7_200), "2 h ago");
        assert_eq!(ago(90_000), "yesterday");
        assert_eq!(ago(3 * 86_400), "3 days ago");
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(1.234), "1.2s");
        assert_eq!(fmt_duration(75.0), "1m 15s");
        assert_eq!(fmt_duration(3725.0), "1h 02m");
    }
}
