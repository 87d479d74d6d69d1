//! Readers for the nested parts of `pipeline.json`: `retry_strategy`, each entry
//! of `schedules[]` and `downstream_triggers`, plus the cron check they share with
//! the top level. Like every reader, they record each problem and go on.

use serde_json::{Map, Value};

use super::fields::{FieldIssue, FieldReader, shown};
use super::metadata::{DownstreamTrigger, ResourceLimits, RetryStrategy, ScheduleSpec};
use super::ranges;
use super::timing::{Catchup, DayEdge, Overlap};

/// A value already checked against a range that fits in `u32`.
pub(super) fn small(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

pub(super) fn check_cron(expr: &str, key: &str, r: &mut FieldReader<'_>) {
    if let Err(message) = super::timing::parse_cron(expr) {
        r.error(key, message);
    }
}

pub(super) fn read_retry_strategy(
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
    r.reject_leftovers("this retry strategy");
    strategy
}

/// One `schedules[]` entry; `pipeline_zone` applies unless it sets its own.
pub(super) fn read_schedule(
    obj: Map<String, Value>,
    prefix: &str,
    pipeline_zone: chrono_tz::Tz,
    errors: &mut Vec<FieldIssue>,
) -> ScheduleSpec {
    let mut r = FieldReader::new(obj, prefix, errors);
    let own_zone = r.timezone("schedule_timezone");
    let zone = own_zone.unwrap_or(pipeline_zone);
    let mut spec = ScheduleSpec {
        id: r.non_empty_string("id").unwrap_or_default(),
        schedule_cron: r.string("schedule_cron"),
        schedule_interval_seconds: r.integer_in("schedule_interval_seconds", &ranges::INTERVAL),
        schedule_start: r.instant("schedule_start", zone, DayEdge::Start),
        schedule_end: r.instant("schedule_end", zone, DayEdge::End),
        schedule_timezone: own_zone.map(|t| t.name().to_string()),
        catchup: r.policy("catchup", Catchup::parse),
        overlap: r.policy("overlap", Overlap::parse),
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
    if spec.id.is_empty() {
        r.error(
            "id",
            "is required (a name for this schedule, e.g. \"weekday-morning\")",
        );
    }
    if let Some(c) = &spec.schedule_cron {
        check_cron(c, "schedule_cron", &mut r);
    }
    if spec.schedule_cron.is_some() && spec.schedule_interval_seconds.is_some() {
        r.error(
            "schedule_interval_seconds",
            "set either schedule_cron or schedule_interval_seconds in one schedule, not both",
        );
    }
    if let (Some(start), Some(end)) = (spec.schedule_start, spec.schedule_end)
        && end <= start
    {
        r.error("schedule_end", "must be after schedule_start");
    }
    r.reject_leftovers("schedule");
    spec
}

/// `downstream_triggers` accepts pipeline names, or objects
/// `{"pipeline": "name", "on_success": true, "on_failure": false}`.
pub(super) fn read_downstream(r: &mut FieldReader<'_>) -> Vec<DownstreamTrigger> {
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
                sub.reject_leftovers("downstream trigger");
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
