//! Property tests: arbitrary JSON in every `pipeline.json` field (and arbitrary
//! text as the whole file) goes through parsing, host fitting, the pipeline page,
//! the pipelines table, the API JSON, the container spec and the retry delays
//! without a panic, and every error names a field that exists.

use std::collections::BTreeMap;
use std::path::PathBuf;

use askama::Template;
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::pipeline_list_page::{ListFragment, ListView};
use super::pipeline_pages::detail_view;
use super::views::PipelineRow;
use crate::config::Config;
use crate::pipelines::metadata::parse_metadata;
use crate::pipelines::{HostResources, Pipeline};

const TOP: &[&str] = &[
    "cpu_hard_limit",
    "mem_hard_limit",
    "cpu_soft_limit",
    "mem_soft_limit",
    "timeout",
    "retry_attempts",
    "retry_strategy",
    "enabled",
    "description",
    "tags",
    "default_env",
    "encrypted_env",
    "secrets",
    "webhook_key",
    "schedule_cron",
    "schedule_interval_seconds",
    "schedule_start",
    "schedule_end",
    "run_once_at",
    "schedules",
    "downstream_triggers",
    "max_instances",
    "python_version",
    "type",
    "restart_on_crash",
    "restart_cooldown",
    "restart_interval",
    "schedule_timezone",
    "catchup",
    "overlap",
];
const RETRY: &[&str] = &[
    "type",
    "initial_delay",
    "max_delay",
    "multiplier",
    "delay",
    "delays",
];
const SCHEDULE: &[&str] = &[
    "id",
    "schedule_cron",
    "schedule_interval_seconds",
    "schedule_start",
    "schedule_end",
    "enabled",
    "default_env",
    "encrypted_env",
    "cpu_hard_limit",
    "mem_hard_limit",
    "timeout",
    "retry_attempts",
    "retry_strategy",
    "webhook_key",
    "schedule_timezone",
    "catchup",
    "overlap",
];

/// Numbers at and beyond every boundary, and ordinary ones.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1e-12)),
        Just(serde_json::json!(0.01)),
        Just(serde_json::json!(1e300)),
        Just(serde_json::json!(-1e300)),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(i64::MIN)),
        Just(serde_json::json!(4_294_967_295u64)),
        Just(serde_json::json!(10_000_000_000_000u64)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("9000000t".to_string()),
        Just("-5m".to_string()),
        Just("1e400m".to_string()),
        Just("exponential_backoff".to_string()),
        Just("fixed_delay".to_string()),
        Just("custom_schedule".to_string()),
        Just("*/5 * * * *".to_string()),
        Just("*/7 * * * * *".to_string()),
        Just("0 0 30 2 *".to_string()),
        Just("Europe/Berlin".to_string()),
        Just("2026-03-29".to_string()),
        Just("2026-03-29T02:30".to_string()),
        Just("all".to_string()),
        Just("queue".to_string()),
        Just("2026-13-45T99:99".to_string()),
        Just("<script>alert(1)</script>".to_string()),
        ".{0,40}",
        "[0-9.]{1,12}[kmgtb]{0,2}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a field of a known name gets: mostly boundary numbers and tricky strings.
fn field_value() -> BoxedStrategy<Value> {
    prop_oneof![
        5 => number(),
        2 => text().prop_map(Value::String),
        1 => json(),
    ]
    .boxed()
}

/// An object whose keys come from `known` (plus a stray one), values from `value`.
fn object_of(known: &'static [&'static str], value: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::vec((prop::sample::select(known), value), 0..10)
        .prop_map(|pairs| {
            let mut map = Map::new();
            for (k, v) in pairs {
                map.insert(k.to_string(), v);
            }
            Value::Object(map)
        })
        .boxed()
}

/// A `retry_strategy` with a real (or bogus) type and boundary-heavy parameters.
fn retry_strategy() -> BoxedStrategy<Value> {
    (
        prop::sample::select(
            &[
                "exponential_backoff",
                "fixed_delay",
                "custom_schedule",
                "sometimes",
            ][..],
        ),
        object_of(&RETRY[1..], field_value()),
        prop::collection::vec(number(), 0..4),
    )
        .prop_map(|(kind, mut obj, delays)| {
            if let Value::Object(map) = &mut obj {
                map.insert("type".into(), Value::String(kind.to_string()));
                if kind == "custom_schedule" {
                    map.insert("delays".into(), Value::Array(delays));
                }
            }
            obj
        })
        .boxed()
}

fn metadata() -> impl Strategy<Value = Value> {
    let any_value = prop_oneof![4 => field_value(), 1 => retry_strategy()].boxed();
    let schedule = object_of(SCHEDULE, any_value.clone());
    let value = prop_oneof![
        6 => any_value,
        1 => prop::collection::vec(schedule, 0..4).prop_map(Value::Array),
    ]
    .boxed();
    let base = object_of(TOP, value);
    (base, prop::option::of(retry_strategy())).prop_map(|(mut meta, retry)| {
        if let (Value::Object(map), Some(retry)) = (&mut meta, retry) {
            map.insert("retry_strategy".into(), retry);
        }
        meta
    })
}

fn config() -> Config {
    let vars = std::collections::HashMap::from([
        ("DEFAULT_CPU_LIMIT".to_string(), "1".to_string()),
        ("DEFAULT_MEM_LIMIT".to_string(), "256m".to_string()),
    ]);
    Config::from_vars(&vars).expect("test config")
}

fn pipeline_from(text: &str) -> Pipeline {
    let parsed = parse_metadata(text);
    let mut p = Pipeline {
        name: "p".into(),
        dir: PathBuf::from("/srv/p"),
        metadata_file: Some("pipeline.json".into()),
        has_requirements: true,
        requirements: Some("six\n".into()),
        metadata: parsed.metadata,
        errors: parsed.errors,
        warnings: parsed.warnings,
        revision: None,
    };
    let host = HostResources {
        cpus: 2.0,
        memory_bytes: 1 << 30,
    };
    crate::pipelines::host::fit_to_host(&mut p.metadata.limits, &host, "", &mut p.warnings);
    p
}

/// Every renderer and consumer of a pipeline, as the server would call them.
fn render_everything(p: &Pipeline) {
    let config = config();
    let now = chrono::Utc::now();
    let jobs = crate::scheduler::jobs::of_pipeline(p)
        .iter()
        .map(|spec| {
            let view = crate::scheduler::view::JobView::new(spec, None, now);
            // Every job can list its next fire times without panicking.
            let _ = spec.timing.upcoming(now, 5);
            view
        })
        .collect();
    let mut page = detail_view(p, &config, None, Vec::new(), jobs);
    for tab in super::pipeline_pages::TABS {
        page.tab = tab;
        let html = page.render();
        assert!(html.is_ok(), "{tab}: {html:?}");
    }
    let table = ListFragment {
        view: ListView::single_page(vec![PipelineRow::new(p, None)]),
    }
    .render();
    assert!(table.is_ok());
    let api = serde_json::to_value(super::api::pipelines::pipeline_json(p, None));
    assert!(api.is_ok_and(|v| v.is_object()));
    let limits = crate::runner::limits::for_run(&p.metadata.limits, &config, None);
    let env = BTreeMap::new();
    let ctx = crate::runner::container_spec::RunContext {
        run_id: "r",
        instance_id: "i",
        run_env: &env,
        user: "1:1",
        image: "img",
        limits: &limits,
    };
    let body = crate::runner::container_spec::build(&config, p, &ctx);
    let hc = body.host_config.expect("host config");
    assert!(hc.memory.is_none_or(|m| m > 0) && hc.nano_cpus.is_none_or(|c| c > 0));
    for retry in [0, 1, 2, 50, u32::MAX] {
        let _ = crate::runner::retry::delay(p.metadata.retry_strategy.as_ref(), retry);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_metadata_never_panics_anywhere(meta in metadata()) {
        let text = meta.to_string();
        let p = pipeline_from(&text);
        for issue in p.errors.iter().chain(&p.warnings) {
            let root = issue.field.split(['.', '[']).next().unwrap_or_default();
            prop_assert!(root.is_empty() || TOP.contains(&root) || meta.get(root).is_some(),
                "error names an unknown field: {issue:?}");
            prop_assert!(issue.message.len() < 600, "message too long: {issue:?}");
        }
        render_everything(&p);
    }

    #[test]
    fn arbitrary_text_never_panics(text in ".{0,200}") {
        render_everything(&pipeline_from(&text));
    }
}
