//! Tests of `pipeline.json` parsing.

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
    let p = parse_metadata(r#"{"mem_hard_limit": "1m", "cpu_soft_limit": 2, "cpu_hard_limit": 1}"#);
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
    let fixed =
        parse_metadata(r#"{"retry_strategy": {"type": "fixed_delay", "delay": 10000000000000}}"#);
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

#[test]
fn a_nul_in_default_env_is_an_error() {
    let p = parse_metadata(r#"{"default_env": {"A": "x\u0000y"}}"#);
    assert_eq!(fields(&p.errors), vec!["default_env.A"]);
}

#[test]
fn schedule_fields_policies_and_their_errors() {
    let p = parse_metadata(
        r#"{"schedule_cron": "0 2 * * 1-5", "schedule_timezone": "Europe/Berlin",
            "schedule_start": "2026-07-01", "schedule_end": "2026-07-31",
            "catchup": "all", "overlap": "queue", "restart_interval": 3600}"#,
    );
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let m = &p.metadata;
    assert_eq!(m.schedule_timezone.as_deref(), Some("Europe/Berlin"));
    // A date alone: the start and the last second of that day, in the schedule's zone.
    assert_eq!(
        m.schedule_start.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-06-30T22:00:00+00:00")
    );
    assert_eq!(
        m.schedule_end.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-07-31T21:59:59+00:00")
    );
    assert_eq!(m.catchup, Some(super::Catchup::All));
    assert_eq!(m.overlap, Some(super::Overlap::Queue));
    assert_eq!(m.restart_interval.as_deref(), Some("3600"));
    let bad = parse_metadata(
        r#"{"schedule_cron": "0 0 31 2 *", "schedule_timezone": "Mars/Base", "catchup": "some",
            "overlap": "stack", "restart_interval": "whenever",
            "schedules": [{"id": "a", "schedule_cron": "* * *", "schedule_timezone": "Nowhere"}]}"#,
    );
    assert_eq!(
        fields(&bad.errors),
        vec![
            "schedule_timezone",
            "catchup",
            "overlap",
            "restart_interval",
            "schedules[0].schedule_timezone",
            "schedules[0].schedule_cron",
        ],
        "the top-level cron is ignored (not checked) while `schedules` is set"
    );
    assert!(bad.errors[5].message.contains("has 3 fields"));
    let never = parse_metadata(r#"{"schedule_cron": "0 0 31 2 *"}"#);
    assert_eq!(fields(&never.errors), vec!["schedule_cron"]);
    assert!(never.errors[0].message.contains("never fires"));
}

#[test]
fn cron_wins_over_interval_with_a_warning_and_schedules_replace_the_top_level() {
    let p = parse_metadata(r#"{"schedule_cron": "*/5 * * * *", "schedule_interval_seconds": 60}"#);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(fields(&p.warnings), vec!["schedule_interval_seconds"]);
    assert!(p.warnings[0].message.contains("cron wins"));
    let p = parse_metadata(
        r#"{"schedule_cron": "*/5 * * * *", "schedules": [{"id": "a", "schedule_interval_seconds": 60}, {"id": "hooks-only"}]}"#,
    );
    assert!(
        p.errors.is_empty(),
        "a run configuration needs no schedule: {:?}",
        p.errors
    );
    assert_eq!(fields(&p.warnings), vec!["schedule_cron"]);
    assert!(p.warnings[0].message.contains("only its entries fire"));
}

#[test]
fn schedule_ids_and_webhook_keys_must_be_unique() {
    let p = parse_metadata(
        r#"{"webhook_key": "same", "schedules": [
            {"id": "a", "schedule_cron": "* * * * *", "webhook_key": "same"},
            {"id": "a", "schedule_interval_seconds": 60, "webhook_key": "other"}]}"#,
    );
    assert_eq!(
        fields(&p.errors),
        vec!["schedules[1].id", "schedules[0].webhook_key"]
    );
    assert!(p.errors[1].message.contains("same as webhook_key"));
}

#[test]
fn a_run_configuration_soft_limit_is_checked_against_the_hard_limit_it_inherits() {
    let p = parse_metadata(
        r#"{"mem_hard_limit": "1g", "schedules": [{"id": "big", "mem_soft_limit": "2g"}]}"#,
    );
    assert_eq!(fields(&p.errors), vec!["schedules[0].mem_soft_limit"]);
}

#[test]
fn secrets_names_are_checked_and_a_plain_encrypted_env_value_is_flagged() {
    let token = format!("gAAAAA{}", "x".repeat(100));
    let p = parse_metadata(&format!(
        r#"{{"secrets": ["DB_PASSWORD", "bad name", "FASTFLOW_RUN_ID"],
            "encrypted_env": {{"OK": "{token}", "PLAIN": "hunter2", "FASTFLOW_PIPELINE": "{token}"}},
            "schedules": [{{"id": "n", "encrypted_env": {{"CUT": "gAAAAAB"}}}}]}}"#
    ));
    assert_eq!(
        fields(&p.errors),
        [
            "secrets[1]",
            "secrets[2]",
            "encrypted_env.FASTFLOW_PIPELINE"
        ],
        "{:?}",
        p.errors
    );
    assert!(
        p.errors[0]
            .message
            .contains("not a valid environment variable name")
    );
    assert!(p.errors[1].message.contains("Fast-Flow's own variable"));
    assert_eq!(
        fields(&p.warnings),
        ["encrypted_env.PLAIN", "schedules[0].encrypted_env.CUT"],
        "{:?}",
        p.warnings
    );
    assert!(!p.warnings.iter().any(|w| w.message.contains("hunter2")));
}
