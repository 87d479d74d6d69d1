//! The `pipeline.json` format of Fast-Flow: every field it knows, parsed and validated.
//!
//! Parsing never fails as a whole: it returns what it could read plus every
//! problem (errors make the pipeline invalid, warnings do not).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{FieldIssue, FieldReader, MemorySize, shown};
use super::ranges;

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
    fn read(r: &mut FieldReader<'_>) -> Self {
        Self {
            cpu_hard_limit: r.number_in("cpu_hard_limit", &ranges::CPU),
            mem_hard_limit: r.memory("mem_hard_limit", &ranges::MEM_HARD),
            cpu_soft_limit: r.number_in("cpu_soft_limit", &ranges::CPU),
            mem_soft_limit: r.memory("mem_soft_limit", &ranges::MEM_SOFT),
        }
    }

    /// Soft limits not above hard ones; `prefix` is the path of the owner.
    fn check(&self, prefix: &str, errors: &mut Vec<FieldIssue>) {
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
    pub schedules: Vec<ScheduleSpec>,
    pub downstream_triggers: Vec<DownstreamTrigger>,
    pub max_instances: Option<u32>,
    pub python_version: Option<String>,
    #[serde(rename = "type")]
    pub pipeline_type: Option<String>,
    pub restart_on_crash: bool,
    pub restart_cooldown: Option<u64>,
    pub restart_interval: Option<String>,
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
            schedules: Vec::new(),
            downstream_triggers: Vec::new(),
            max_instances: None,
            python_version: None,
            pipeline_type: None,
            restart_on_crash: false,
            restart_cooldown: None,
            restart_interval: None,
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
    check_consistency(&parsed.metadata, &mut parsed.errors);
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
        schedule_start: r.datetime("schedule_start"),
        schedule_end: r.datetime("schedule_end"),
        run_once_at: r.datetime("run_once_at"),
        schedules: Vec::new(),
        downstream_triggers: Vec::new(),
        max_instances: r
            .integer_in("max_instances", &ranges::MAX_INSTANCES)
            .map(small),
        python_version: r.non_empty_string("python_version"),
        pipeline_type: r.non_empty_string("type"),
        restart_on_crash: r.bool("restart_on_crash").unwrap_or(false),
        restart_cooldown: r.integer_in("restart_cooldown", &ranges::RESTART_COOLDOWN),
        restart_interval: r.non_empty_string("restart_interval"),
    };
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
    if let Some(cron) = &m.schedule_cron {
        check_cron(cron, "schedule_cron", r);
    }
    for (path, obj) in r.object_list("schedules", ranges::MAX_SCHEDULES) {
        m.schedules.push(read_schedule(obj, &path, r.errors));
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

/// A value already checked against a range that fits in `u32`.
fn small(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn check_cron(expr: &str, key: &str, r: &mut FieldReader<'_>) {
    if let Err(e) = expr.parse::<croner::Cron>() {
        r.error(
            key,
            format!("`{}` is not a valid cron expression: {e}", shown(expr)),
        );
    }
}

fn read_retry_strategy(
    obj: Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldIssue>,
) -> Option<RetryStrategy> {
    let mut r = FieldReader::new(obj, prefix, errors);
    let kind = r.string("type");
    let strategy = match kind.as_deref() {
        Some("exponential_backoff") => {
            let initial_delay = r
                .integer_in("initial_delay", &ranges::RETRY_DELAY)
                .unwrap_or(60);
            let max_delay = r
                .integer_in("max_delay", &ranges::RETRY_DELAY)
                .unwrap_or(3600);
            let multiplier = r
                .number_in("multiplier", &ranges::RETRY_MULTIPLIER)
                .unwrap_or(2.0);
            Some(RetryStrategy::ExponentialBackoff {
                initial_delay,
                max_delay,
                multiplier,
            })
        }
        Some("fixed_delay") => Some(RetryStrategy::FixedDelay {
            delay: r.integer_in("delay", &ranges::RETRY_DELAY).unwrap_or(60),
        }),
        Some("custom_schedule") => {
            let mut delays = Vec::new();
            match r.take("delays") {
                Some(Value::Array(items))
                    if !items.is_empty()
                        && r.within("delays", items.len(), ranges::RETRY_DELAYS_LEN) =>
                {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_u64() {
                            Some(d) if ranges::RETRY_DELAY.contains(d) => delays.push(d),
                            _ => r.error(
                                &format!("delays[{i}]"),
                                format!(
                                    "must be a whole number of seconds from 0 to {}, got {}",
                                    ranges::RETRY_DELAY.max,
                                    shown(&item.to_string())
                                ),
                            ),
                        }
                    }
                }
                Some(Value::Array(items)) if !items.is_empty() => {}
                _ => r.error("delays", "must be a non-empty list of delays in seconds"),
            }
            Some(RetryStrategy::CustomSchedule { delays })
        }
        Some(other) => {
            r.error("type", format!("unknown retry strategy `{}` (expected exponential_backoff, fixed_delay or custom_schedule)", shown(other)));
            None
        }
        None => {
            r.error(
                "type",
                "is required (exponential_backoff, fixed_delay or custom_schedule)",
            );
            None
        }
    };
    for key in r.leftover_keys() {
        r.errors.push(FieldIssue {
            file: None,
            field: key,
            message: "unknown field for this retry strategy".into(),
        });
    }
    strategy
}

fn read_schedule(
    obj: Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<FieldIssue>,
) -> ScheduleSpec {
    let mut r = FieldReader::new(obj, prefix, errors);
    let mut spec = ScheduleSpec {
        id: r.non_empty_string("id").unwrap_or_default(),
        schedule_cron: r.string("schedule_cron"),
        schedule_interval_seconds: r.integer_in("schedule_interval_seconds", &ranges::INTERVAL),
        schedule_start: r.datetime("schedule_start"),
        schedule_end: r.datetime("schedule_end"),
        enabled: r.bool("enabled").unwrap_or(true),
        default_env: r.string_map("default_env"),
        encrypted_env: r.string_map("encrypted_env"),
        limits: ResourceLimits::read(&mut r),
        timeout: r.integer_in("timeout", &ranges::TIMEOUT),
        retry_attempts: r
            .integer_in("retry_attempts", &ranges::RETRY_ATTEMPTS)
            .map(small),
        retry_strategy: None,
        webhook_key: r.non_empty_string("webhook_key"),
    };
    if let Some(obj) = r.object("retry_strategy") {
        spec.retry_strategy = read_retry_strategy(obj, &r.path("retry_strategy"), r.errors);
    }
    spec.limits.check(prefix, r.errors);
    if spec.id.is_empty() {
        r.error(
            "id",
            "is required (a name for this schedule, e.g. \"weekday-morning\")",
        );
    }
    if let Some(c) = &spec.schedule_cron {
        check_cron(c, "schedule_cron", &mut r);
    }
    if spec.schedule_cron.is_none() && spec.schedule_interval_seconds.is_none() {
        r.error("", "needs `schedule_cron` or `schedule_interval_seconds`");
    }
    for key in r.leftover_keys() {
        r.errors.push(FieldIssue {
            file: None,
            field: key,
            message: "unknown field in schedule".into(),
        });
    }
    spec
}

/// `downstream_triggers` accepts pipeline names, or objects
/// `{"pipeline": "name", "on_success": true, "on_failure": false}`.
fn read_downstream(r: &mut FieldReader<'_>) -> Vec<DownstreamTrigger> {
    let Some(value) = r.take("downstream_triggers") else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        r.error(
            "downstream_triggers",
            "must be a list of pipeline names or {\"pipeline\": ...} objects",
        );
        return Vec::new();
    };
    if !r.within("downstream_triggers", items.len(), ranges::MAX_DOWNSTREAM) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("downstream_triggers[{i}]");
        match item {
            Value::String(name) if super::is_valid_pipeline_name(&name) => {
                out.push(DownstreamTrigger {
                    pipeline: name,
                    on_success: true,
                    on_failure: false,
                    run_config_id: None,
                })
            }
            Value::Object(obj) => {
                let full = r.path(&path);
                let mut sub = FieldReader::new(obj, &full, r.errors);
                let name = sub
                    .string("pipeline")
                    .or_else(|| sub.string("pipeline_name"));
                let on_success = sub.bool("on_success").unwrap_or(true);
                let on_failure = sub.bool("on_failure").unwrap_or(false);
                let run_config_id = sub.non_empty_string("run_config_id");
                for key in sub.leftover_keys() {
                    sub.errors.push(FieldIssue {
                        file: None,
                        field: key,
                        message: "unknown field in downstream trigger".into(),
                    });
                }
                match name {
                    Some(n) if super::is_valid_pipeline_name(&n) => out.push(DownstreamTrigger {
                        pipeline: n,
                        on_success,
                        on_failure,
                        run_config_id,
                    }),
                    Some(n) => sub.error(
                        "pipeline",
                        format!("`{}` is not a valid pipeline name", shown(&n)),
                    ),
                    None => sub.error("pipeline", "is required"),
                }
            }
            other => r.error(
                &path,
                format!(
                    "must be a pipeline name or an object, got {}",
                    shown(&other.to_string())
                ),
            ),
        }
    }
    out
}

fn check_consistency(m: &PipelineMetadata, errors: &mut Vec<FieldIssue>) {
    m.limits.check("", errors);
    let mut err = |field: &str, message: String| {
        errors.push(FieldIssue {
            file: None,
            field: field.into(),
            message,
        })
    };
    if let (Some(start), Some(end)) = (m.schedule_start, m.schedule_end)
        && end <= start
    {
        err("schedule_end", "must be after schedule_start".into());
    }
    if m.schedule_cron.is_some() && m.schedule_interval_seconds.is_some() {
        err("schedule_interval_seconds", "set either schedule_cron or schedule_interval_seconds, not both (use `schedules` for several)".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(issues: &[FieldIssue]) -> Vec<&str> {
        issues.iter().map(|i| i.field.as_str()).collect()
    }

    #[test]
    fn fast_flow_readme_example_parses() {
        let p = parse_metadata(
            r#"{
              "cpu_hard_limit": 1.0, "mem_hard_limit": "1g", "cpu_soft_limit": 0.8, "mem_soft_limit": "800m",
              "timeout": 3600, "retry_attempts": 3, "description": "Prozessiert", "tags": ["a", "b"],
              "enabled": true, "default_env": {"LOG_LEVEL": "INFO", "DEBUG": "false"}
            }"#,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.warnings.is_empty());
        assert_eq!(p.metadata.limits.mem_hard_limit.unwrap().bytes, 1 << 30);
        assert_eq!(p.metadata.limits.mem_soft_limit.unwrap().bytes, 800 << 20);
        assert_eq!(p.metadata.timeout, Some(3600));
        assert_eq!(p.metadata.retry_attempts, Some(3));
        assert_eq!(p.metadata.default_env["LOG_LEVEL"], "INFO");
    }

    #[test]
    fn every_field_parses() {
        let p = parse_metadata(
            r#"{
              "timeout": 0, "retry_strategy": {"type": "exponential_backoff", "initial_delay": 5, "max_delay": 60, "multiplier": 3},
              "encrypted_env": {"TOKEN": "gAAAA..."}, "secrets": ["DB_PASSWORD"], "webhook_key": "k1",
              "schedule_cron": "*/5 * * * *", "schedule_start": "2026-01-01T00:00:00Z", "schedule_end": "2027-01-01T00:00:00Z",
              "run_once_at": "2026-12-24T18:00", "schedules": [{"id": "weekdays", "schedule_cron": "0 8 * * 1-5"}, {"id": "often", "schedule_interval_seconds": 90, "default_env": {"MODE": "fast"}}],
              "downstream_triggers": ["report", {"pipeline": "alert", "on_success": false, "on_failure": true}],
              "max_instances": 2, "python_version": "3.12", "type": "script", "restart_on_crash": false
            }"#,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let m = p.metadata;
        assert_eq!(m.timeout, Some(0));
        assert_eq!(
            m.retry_strategy,
            Some(RetryStrategy::ExponentialBackoff {
                initial_delay: 5,
                max_delay: 60,
                multiplier: 3.0
            })
        );
        assert_eq!(m.schedules.len(), 2);
        assert_eq!(m.schedules[1].schedule_interval_seconds, Some(90));
        assert_eq!(m.schedules[1].default_env["MODE"], "fast");
        assert_eq!(
            m.downstream_triggers[1],
            DownstreamTrigger {
                pipeline: "alert".into(),
                on_success: false,
                on_failure: true,
                run_config_id: None
            }
        );
        assert_eq!(m.max_instances, Some(2));
        assert_eq!(m.pipeline_type.as_deref(), Some("script"));
    }

    #[test]
    fn broken_json_says_where() {
        let p = parse_metadata("{\n  \"timeout\": 10,\n  \"tags\": [\"a\",]\n}");
        assert_eq!(p.errors.len(), 1);
        assert!(
            p.errors[0].message.contains("line 3"),
            "{}",
            p.errors[0].message
        );
    }

    #[test]
    fn wrong_types_units_and_negatives_are_errors_with_field() {
        let p = parse_metadata(
            r#"{"cpu_hard_limit": "two", "mem_hard_limit": "12 parsecs", "mem_soft_limit": "-5m",
                "timeout": -1, "retry_attempts": 1.5, "enabled": "yes", "tags": ["ok", 3],
                "default_env": {"A": {"nested": 1}}, "schedule_cron": "not a cron",
                "retry_strategy": {"type": "sometimes"}}"#,
        );
        let f = fields(&p.errors);
        for expected in [
            "cpu_hard_limit",
            "mem_hard_limit",
            "mem_soft_limit",
            "timeout",
            "retry_attempts",
            "enabled",
            "tags[1]",
            "default_env.A",
            "schedule_cron",
            "retry_strategy.type",
        ] {
            assert!(
                f.contains(&expected),
                "missing error for {expected}: {:?}",
                p.errors
            );
        }
        assert!(p.errors.iter().any(|e| e.message.contains("unknown unit")));
    }

    #[test]
    fn unknown_fields_warn_only() {
        let p = parse_metadata(r#"{"descripton": "typo", "enabled": false}"#);
        assert!(p.errors.is_empty());
        assert_eq!(fields(&p.warnings), vec!["descripton"]);
        assert!(!p.metadata.enabled);
    }

    #[test]
    fn limits_must_be_consistent() {
        let p =
            parse_metadata(r#"{"mem_hard_limit": "1m", "cpu_soft_limit": 2, "cpu_hard_limit": 1}"#);
        let f = fields(&p.errors);
        assert!(
            f.contains(&"mem_hard_limit") && f.contains(&"cpu_soft_limit"),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn schedule_limits_are_checked_like_the_pipeline_ones() {
        let p = parse_metadata(
            r#"{"schedules": [{"id": "x", "schedule_interval_seconds": 5, "mem_hard_limit": "1m"}]}"#,
        );
        assert_eq!(
            fields(&p.errors),
            vec!["schedules[0].mem_hard_limit"],
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn numbers_outside_their_range_are_errors_with_the_range() {
        let p = parse_metadata(
            r#"{"retry_strategy": {"type": "exponential_backoff", "initial_delay": 18446744073709551615,
                                   "max_delay": 18446744073709551615, "multiplier": 1e308},
                "retry_attempts": 4294967295, "cpu_hard_limit": 1e-12, "cpu_soft_limit": 1e300,
                "mem_hard_limit": "9000000t", "mem_soft_limit": "1k", "timeout": 1e20,
                "max_instances": 0, "schedule_interval_seconds": 0, "restart_cooldown": -5,
                "python_version": "3.11111111111111111111"}"#,
        );
        let f = fields(&p.errors);
        for expected in [
            "retry_strategy.initial_delay",
            "retry_strategy.max_delay",
            "retry_strategy.multiplier",
            "retry_attempts",
            "cpu_hard_limit",
            "cpu_soft_limit",
            "mem_hard_limit",
            "mem_soft_limit",
            "timeout",
            "max_instances",
            "schedule_interval_seconds",
            "restart_cooldown",
            "python_version",
        ] {
            assert!(
                f.contains(&expected),
                "no error for {expected}: {:?}",
                p.errors
            );
        }
        let attempts = p
            .errors
            .iter()
            .find(|e| e.field == "retry_attempts")
            .unwrap();
        assert_eq!(
            attempts.message,
            "must be a number from 0 to 100 (retries), got 4294967295"
        );
        let fixed = parse_metadata(
            r#"{"retry_strategy": {"type": "fixed_delay", "delay": 10000000000000}}"#,
        );
        assert_eq!(fields(&fixed.errors), vec!["retry_strategy.delay"]);
        let custom = parse_metadata(
            r#"{"retry_strategy": {"type": "custom_schedule", "delays": [1, 18446744073709551615]}}"#,
        );
        assert_eq!(fields(&custom.errors), vec!["retry_strategy.delays[1]"]);
        // The largest values inside the ranges are fine.
        let ok = parse_metadata(
            r#"{"retry_attempts": 100, "timeout": 31536000, "cpu_hard_limit": 0.01, "mem_hard_limit": "6m",
                "retry_strategy": {"type": "exponential_backoff", "initial_delay": 604800, "max_delay": 604800, "multiplier": 100}}"#,
        );
        assert!(ok.errors.is_empty(), "{:?}", ok.errors);
    }

    #[test]
    fn long_lists_and_values_are_refused_and_not_echoed_whole() {
        let tags: Vec<String> = (0..101).map(|i| format!("\"t{i}\"")).collect();
        let long = "x".repeat(100_000);
        let p = parse_metadata(&format!(
            r#"{{"tags": [{}], "default_env": {{"BIG": "{long}"}}, "mem_hard_limit": "{long}"}}"#,
            tags.join(",")
        ));
        assert_eq!(
            fields(&p.errors),
            vec!["mem_hard_limit", "tags", "default_env.BIG"]
        );
        assert!(
            p.errors.iter().all(|e| e.message.len() < 200),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn non_object_is_an_error() {
        let p = parse_metadata("[1, 2]");
        assert!(p.errors[0].message.contains("JSON object"));
    }
}
