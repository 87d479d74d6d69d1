use super::*;
use crate::pipelines::timing::{Overlap, Timing, Trigger, parse_cron};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn every_minute(catchup: Catchup) -> JobSpec {
    JobSpec {
        id: "j".into(),
        pipeline_name: "p".into(),
        run_config_id: None,
        kind: JobKind::Schedule,
        timing: Timing {
            trigger: Trigger::Cron {
                expr: "* * * * *".into(),
                cron: Box::new(parse_cron("* * * * *").expect("cron")),
            },
            tz: chrono_tz::UTC,
            start: None,
            end: None,
        },
        catchup,
        overlap: Overlap::Skip,
        enabled_in_file: true,
        pipeline_off: None,
    }
}

fn outcomes(planned: &[PlannedSlot]) -> Vec<(String, &'static str)> {
    planned
        .iter()
        .map(|p| {
            let outcome = match &p.decision {
                Decision::Record { outcome, .. } | Decision::Fire { outcome, .. } => *outcome,
            };
            (p.time.format("%H:%M").to_string(), outcome)
        })
        .collect()
}

// The server stopped after the 10:00 slot and is back at 10:05:30 (started 10:05:20).
const CURSOR: &str = "2026-03-01T10:00:00Z";
const NOW: &str = "2026-03-01T10:05:30Z";
const START: &str = "2026-03-01T10:05:20Z";

fn after_downtime(catchup: Catchup) -> Vec<PlannedSlot> {
    plan(&every_minute(catchup), None, at(CURSOR), at(NOW), at(START))
}

#[test]
fn catchup_none_records_every_missed_slot() {
    let planned = after_downtime(Catchup::None);
    assert_eq!(
        outcomes(&planned),
        [
            ("10:01".into(), "missed"),
            ("10:02".into(), "missed"),
            ("10:03".into(), "missed"),
            ("10:04".into(), "missed"),
            // 30 s late: within the grace, so on time.
            ("10:05".into(), "started"),
        ]
    );
    let Decision::Record { reason, .. } = &planned[0].decision else {
        panic!("missed slots start nothing")
    };
    assert!(
        reason.contains("server was not running") && reason.contains("\"none\""),
        "{reason}"
    );
}

#[test]
fn catchup_latest_runs_only_the_newest_missed_slot() {
    // Back at 10:04:30 + 2 min: no slot on time, so the newest missed one runs.
    let planned = plan(
        &every_minute(Catchup::Latest),
        None,
        at(CURSOR),
        at("2026-03-01T10:04:59Z"),
        at("2026-03-01T10:04:58Z"),
    );
    assert_eq!(
        outcomes(&planned),
        [
            ("10:01".into(), "missed"),
            ("10:02".into(), "missed"),
            ("10:03".into(), "missed"),
            ("10:04".into(), "started"),
        ],
        "10:04 is 59 s late: on time; the older ones are covered by it"
    );
    // 10:06 is 1.5 s late: on time; 10:01 to 10:05 are covered by it.
    let planned = plan(
        &every_minute(Catchup::Latest),
        None,
        at(CURSOR),
        at("2026-03-01T10:06:01.5Z"),
        at("2026-03-01T10:06:01Z"),
    );
    let got = outcomes(&planned);
    assert_eq!(got.len(), 6);
    assert!(got[..5].iter().all(|(_, o)| *o == "missed"));
    assert_eq!(got[5], ("10:06".into(), "started"));
}

#[test]
fn catchup_latest_without_an_on_time_slot() {
    let mut job = every_minute(Catchup::Latest);
    job.timing.trigger = Trigger::Cron {
        expr: "*/10 * * * *".into(),
        cron: Box::new(parse_cron("*/10 * * * *").expect("cron")),
    };
    // Down from 09:55 to 10:35:30: 10:00, 10:10, 10:20, 10:30 passed; none on time.
    let planned = plan(
        &job,
        None,
        at("2026-03-01T09:55:00Z"),
        at("2026-03-01T10:35:30Z"),
        at("2026-03-01T10:35:00Z"),
    );
    assert_eq!(
        outcomes(&planned),
        [
            ("10:00".into(), "missed"),
            ("10:10".into(), "missed"),
            ("10:20".into(), "missed"),
            ("10:30".into(), "caught_up"),
        ]
    );
}

#[test]
fn catchup_all_runs_each_missed_slot_in_order() {
    let planned = after_downtime(Catchup::All);
    let got = outcomes(&planned);
    assert_eq!(got.iter().filter(|(_, o)| *o == "caught_up").count(), 4);
    assert_eq!(got.last(), Some(&("10:05".into(), "started")));
    assert!(planned.iter().all(|p| match &p.decision {
        Decision::Fire {
            outcome: "caught_up",
            queue_behind_previous,
            ..
        } => *queue_behind_previous,
        _ => true,
    }));
}

#[test]
fn catchup_all_is_capped_and_a_long_outage_is_one_summary_row() {
    // Every minute, down for 30 days: 43 200 slots.
    let planned = plan(
        &every_minute(Catchup::All),
        None,
        at("2026-03-01T00:00:00Z"),
        at("2026-03-31T00:00:30Z"),
        at("2026-03-31T00:00:20Z"),
    );
    let fired = planned
        .iter()
        .filter(|p| matches!(p.decision, Decision::Fire { .. }))
        .count();
    assert_eq!(fired, CATCHUP_ALL_CAP + 1, "the cap, plus the on-time slot");
    assert!(planned.len() <= MAX_SLOTS_PER_PASS + 1);
    let Decision::Record { outcome, reason } = &planned[0].decision else {
        panic!("the first row sums up the older slots")
    };
    assert_eq!(*outcome, "missed");
    assert!(reason.contains("2026-03-01 00:01:00"), "{reason}");
    // Every slot is accounted for: the summary's range ends right before the listed ones.
    assert!(planned[1].time > planned[0].time);
}

#[test]
fn a_disabled_job_records_each_slot_as_skipped() {
    let planned = plan(
        &every_minute(Catchup::Latest),
        Some("disabled by a user (override)"),
        at(CURSOR),
        at(NOW),
        at(START),
    );
    assert_eq!(planned.len(), 5);
    assert!(planned.iter().all(|p| matches!(
        &p.decision,
        Decision::Record { outcome: "skipped_disabled", reason } if reason.contains("override")
    )));
}

#[test]
fn nothing_due_means_nothing_recorded() {
    let planned = plan(
        &every_minute(Catchup::All),
        None,
        at("2026-03-01T10:00:00Z"),
        at("2026-03-01T10:00:59Z"),
        at(START),
    );
    assert!(planned.is_empty());
}

#[test]
fn a_short_outage_still_follows_catchup_only_the_newest_slot_is_on_time() {
    let mut job = every_minute(Catchup::None);
    job.timing.trigger = Trigger::Cron {
        expr: "* * * * * *".into(),
        cron: Box::new(parse_cron("* * * * * *").expect("cron")),
    };
    // Down for 40 s: every slot is within the grace, yet only the newest runs.
    let planned = plan(
        &job,
        None,
        at("2026-03-01T10:00:00Z"),
        at("2026-03-01T10:00:40Z"),
        at("2026-03-01T10:00:39Z"),
    );
    assert_eq!(planned.len(), 40);
    let started = planned
        .iter()
        .filter(|p| matches!(p.decision, Decision::Fire { .. }))
        .count();
    assert_eq!(started, 1);
    assert!(matches!(
        planned[39].decision,
        Decision::Fire {
            outcome: "started",
            ..
        }
    ));
}
