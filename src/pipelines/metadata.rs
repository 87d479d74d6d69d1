//! The `pipeline.json` format of Fast-Flow: every field it knows, parsed and validated.
//!
//! Parsing never fails as a whole: it returns what it could read plus every
//! problem (errors make the pipeline invalid, warnings do not).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::fields::{FieldIssue, FieldReader, MemorySize, shown};
use super::nested::{check_cron, read_downstream, read_retry_strategy, read_schedule, small};
use super::notify_spec::NotifySpec;
use super::ranges;
use super::timing::{Catchup, DayEdge, Overlap};

/// Retry timing between attempts, as in Fast-Flow.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RetryStrategy {
    ExponentialBackoff {
        initial_delay: u64,
        max_delay: u64,
        multiplier: f64,
    },
    FixedDelay {
        delay: u64,
    },
    CustomSchedule {
        delays: Vec<u64>,
    },
}

/// One entry of `schedules[]` (Fast-Flow "run configs"): an `id`, a cron or an
/// interval, and values that override the pipeline's for runs it starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScheduleSpec {
    pub id: String,
    pub schedule_cron: Option<String>,
    pub schedule_interval_seconds: Option<u64>,
    pub schedule_start: Option<DateTime<Utc>>,
    pub schedule_end: Option<DateTime<Utc>>,
    /// This entry's own time zone, catch-up and overlap policies (else the pipeline's).
    pub schedule_timezone: Option<String>,
    pub catchup: Option<Catchup>,
    pub overlap: Option<Overlap>,
    pub enabled: bool,
    pub default_env: BTreeMap<String, String>,
    #[serde(skip)]
    pub encrypted_env: BTreeMap<String, String>,
    #[serde(flatten)]
    pub limits: ResourceLimits,
    pub timeout: Option<u64>,
    pub retry_attempts: Option<u32>,
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(skip)]
    pub webhook_key: Option<String>,
}

/// Hard limits (enforced by Docker) and soft limits (monitored), as a pipeline or
/// one of its schedules sets them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResourceLimits {
    pub cpu_hard_limit: Option<f64>,
    pub mem_hard_limit: Option<MemorySize>,
    pub cpu_soft_limit: Option<f64>,
    pub mem_soft_limit: Option<MemorySize>,
}

impl ResourceLimits {
    pub(super) fn read(r: &mut FieldReader<'_>) -> Self {
        Self {
            cpu_hard_limit: r.number_in("cpu_hard_limit", &ranges::CPU),
            mem_hard_limit: r.memory("mem_hard_limit", &ranges::MEM_HARD),
            cpu_soft_limit: r.number_in("cpu_soft_limit", &ranges::CPU),
            mem_soft_limit: r.memory("mem_soft_limit", &ranges::MEM_SOFT),
        }
    }

    /// Soft limits not above hard ones; `prefix` is the path of the owner.
    pub(super) fn check(&self, prefix: &str, errors: &mut Vec<FieldIssue>) {
        let path = |f: &str| {
            if prefix.is_empty() {
                f.to_string()
            } else {
                format!("{prefix}.{f}")
            }
        };
        if let (Some(soft), Some(hard)) = (&self.mem_soft_limit, &self.mem_hard_limit)
            && soft.bytes > hard.bytes
        {
            errors.push(FieldIssue {
                file: None,
                field: path("mem_soft_limit"),
                message: format!("`{}` is above mem_hard_limit `{}`", soft.text, hard.text),
            });
        }
        if let (Some(soft), Some(hard)) = (self.cpu_soft_limit, self.cpu_hard_limit)
            && soft > hard
        {
            errors.push(FieldIssue {
                file: None,
                field: path("cpu_soft_limit"),
                message: format!("{soft} is above cpu_hard_limit {hard}"),
            });
        }
    }
}

/// A pipeline to start after this one finishes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DownstreamTrigger {
    pub pipeline: String,
    pub on_success: bool,
    pub on_failure: bool,
    /// Which `schedules[].id` of the downstream pipeline to run with.
    pub run_config_id: Option<String>,
}

/// Everything `pipeline.json` can say. Absent fields take Fast-Flow's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineMetadata {
    #[serde(flatten)]
    pub limits: ResourceLimits,
    /// Seconds; `Some(0)` means explicitly no timeout, `None` means use `CONTAINER_TIMEOUT`.
    pub timeout: Option<u64>,
    pub retry_attempts: Option<u32>,
    pub retry_strategy: Option<RetryStrategy>,
    pub enabled: bool,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub default_env: BTreeMap<String, String>,
    /// Fernet tokens; never shown in clear.
    #[serde(skip)]
    pub encrypted_env: BTreeMap<String, String>,
    pub secrets: Vec<String>,
    #[serde(skip)]
    pub webhook_key: Option<String>,
    pub schedule_cron: Option<String>,
    pub schedule_interval_seconds: Option<u64>,
    pub schedule_start: Option<DateTime<Utc>>,
    pub schedule_end: Option<DateTime<Utc>>,
    pub run_once_at: Option<DateTime<Utc>>,
    /// IANA zone of the cron expression and of date-times written without an offset; UTC if absent.
    pub schedule_timezone: Option<String>,
    pub catchup: Option<Catchup>,
    pub overlap: Option<Overlap>,
    pub schedules: Vec<ScheduleSpec>,
    pub downstream_triggers: Vec<DownstreamTrigger>,
    pub max_instances: Option<u32>,
    pub python_version: Option<String>,
    #[serde(rename = "type")]
    pub pipeline_type: Option<String>,
    pub restart_on_crash: bool,
    pub restart_cooldown: Option<u64>,
    pub restart_interval: Option<String>,
    /// `notify`: this pipeline's events, extra recipients and webhook.
    pub notify: Option<NotifySpec>,
}

impl Default for PipelineMetadata {
    fn default() -> Self {
        Self {
            limits: ResourceLimits::default(),
            timeout: None,
            retry_attempts: None,
            retry_strategy: None,
            enabled: true,
            description: None,
            tags: Vec::new(),
            default_env: BTreeMap::new(),
            encrypted_env: BTreeMap::new(),
            secrets: Vec::new(),
            webhook_key: None,
            schedule_cron: None,
            schedule_interval_seconds: None,
            schedule_start: None,
            schedule_end: None,
            run_once_at: None,
            schedule_timezone: None,
            catchup: None,
            overlap: None,
            schedules: Vec::new(),
            downstream_triggers: Vec::new(),
            max_instances: None,
            python_version: None,
            pipeline_type: None,
            restart_on_crash: false,
            restart_cooldown: None,
            restart_interval: None,
            notify: None,
        }
    }
}

/// The outcome of reading one metadata file.
#[derive(Debug, Clone, Default)]
pub struct ParsedMetadata {
    pub metadata: PipelineMetadata,
    pub errors: Vec<FieldIssue>,
    pub warnings: Vec<FieldIssue>,
}

/// Parses the text of a metadata file.
pub fn parse_metadata(text: &str) -> ParsedMetadata {
    let mut parsed = ParsedMetadata::default();
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            parsed.errors.push(FieldIssue {
                file: None,
                field: String::new(),
                message: format!(
                    "invalid JSON at line {} column {}: {}",
                    e.line(),
                    e.column(),
                    json_reason(&e)
                ),
            });
            return parsed;
        }
    };
    let Value::Object(object) = value else {
        parsed.errors.push(FieldIssue {
            file: None,
            field: String::new(),
            message: format!(
                "must be a JSON object {{ ... }}, got {}",
                super::fields::kind(&value)
            ),
        });
        return parsed;
    };
    let mut errors = Vec::new();
    let mut r = FieldReader::new(object, "", &mut errors);
    let m = read_fields(&mut r);
    let leftover = r.leftover_keys();
    parsed.metadata = m;
    parsed.warnings = leftover
        .into_iter()
        .map(|field| FieldIssue {
            file: None,
            field,
            message: "unknown field, ignored".into(),
        })
        .collect();
    parsed.errors = errors;
    super::metadata_checks::check_consistency(&parsed.metadata, &mut parsed.errors);
    super::metadata_checks::collect_warnings(&parsed.metadata, &mut parsed.warnings);
    parsed
}

fn json_reason(e: &serde_json::Error) -> String {
    // serde_json appends " at line X column Y"; we already say where.
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn read_fields(r: &mut FieldReader<'_>) -> PipelineMetadata {
    // The zone comes first: it gives meaning to the date-times below.
    let tz = r.timezone("schedule_timezone");
    let zone = tz.unwrap_or(chrono_tz::UTC);
    let mut m = PipelineMetadata {
        limits: ResourceLimits::read(r),
        timeout: r.integer_in("timeout", &ranges::TIMEOUT),
        retry_attempts: r
            .integer_in("retry_attempts", &ranges::RETRY_ATTEMPTS)
            .map(small),
        retry_strategy: None,
        enabled: r.bool("enabled").unwrap_or(true),
        description: r.string("description"),
        tags: r.string_list("tags", ranges::MAX_TAGS),
        default_env: r.string_map("default_env"),
        encrypted_env: r.string_map("encrypted_env"),
        secrets: r.string_list("secrets", ranges::MAX_SECRETS),
        webhook_key: r.non_empty_string("webhook_key"),
        schedule_cron: r.string("schedule_cron"),
        schedule_interval_seconds: r.integer_in("schedule_interval_seconds", &ranges::INTERVAL),
        schedule_start: r.instant("schedule_start", zone, DayEdge::Start),
        schedule_end: r.instant("schedule_end", zone, DayEdge::End),
        run_once_at: r.instant("run_once_at", zone, DayEdge::Start),
        schedule_timezone: tz.map(|t| t.name().to_string()),
        catchup: r.policy("catchup", Catchup::parse),
        overlap: r.policy("overlap", Overlap::parse),
        schedules: Vec::new(),
        downstream_triggers: Vec::new(),
        max_instances: r
            .integer_in("max_instances", &ranges::MAX_INSTANCES)
            .map(small),
        python_version: r.non_empty_string("python_version"),
        pipeline_type: r.non_empty_string("type"),
        restart_on_crash: r.bool("restart_on_crash").unwrap_or(false),
        restart_cooldown: r.integer_in("restart_cooldown", &ranges::RESTART_COOLDOWN),
        restart_interval: None,
        notify: None,
    };
    m.restart_interval = read_restart_interval(r);
    m.notify = super::notify_spec::read_notify(r);
    match m.pipeline_type.as_deref() {
        None | Some("script") => {}
        Some("notebook") => r.error(
            "type",
            "notebook pipelines (main.ipynb) are not supported by this version; use \"script\"",
        ),
        Some(other) => r.error(
            "type",
            format!(
                "unknown pipeline type `{}` (expected \"script\")",
                shown(other)
            ),
        ),
    }
    if let Some(obj) = r.object("retry_strategy") {
        m.retry_strategy = read_retry_strategy(obj, &r.path("retry_strategy"), r.errors);
    }
    for (path, obj) in r.object_list("schedules", ranges::MAX_SCHEDULES) {
        m.schedules.push(read_schedule(obj, &path, zone, r.errors));
    }
    // With `schedules` set the top-level expression is ignored (a warning says so), not checked.
    if let Some(cron) = &m.schedule_cron
        && m.schedules.is_empty()
    {
        check_cron(cron, "schedule_cron", r);
    }
    m.downstream_triggers = read_downstream(r);
    if let Some(v) = &m.python_version
        && (v.len() > 16 || !v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    {
        r.error(
            "python_version",
            format!("`{}` is not a Python version like \"3.12\"", shown(v)),
        );
    }
    m
}

/// `restart_interval`: a cron expression, or a number of seconds (as in Fast-Flow).
fn read_restart_interval(r: &mut FieldReader<'_>) -> Option<String> {
    let text = match r.take("restart_interval")? {
        Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => {
            r.error(
                "restart_interval",
                format!(
                    "must be a cron expression or a number of seconds, got {}",
                    super::fields::kind(&other)
                ),
            );
            return None;
        }
    };
    if let Err(message) = super::timing::parse_restart_interval(&text) {
        r.error("restart_interval", message);
        return None;
    }
    Some(text)
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
