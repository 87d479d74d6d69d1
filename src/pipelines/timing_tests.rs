use super::*;
use crate::pipelines::timing_words::describe;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("bad test time {text}: {e}"))
}

fn cron(expr: &str, tz: &str) -> Timing {
    Timing {
        trigger: Trigger::Cron {
            expr: expr.into(),
            cron: Box::new(parse_cron(expr).expect("valid cron")),
        },
        tz: parse_timezone(tz).expect("zone"),
        start: None,
        end: None,
    }
}

fn times(timing: &Timing, from: &str, n: usize) -> Vec<String> {
    timing
        .upcoming(utc(from), n)
        .iter()
        .map(|t| t.to_rfc3339())
        .collect()
}

#[test]
fn cron_five_and_six_fields() {
    let every_5 = cron("*/5 * * * *", "UTC");
    assert_eq!(
        times(&every_5, "2026-01-01T00:02:30Z", 2),
        ["2026-01-01T00:05:00+00:00", "2026-01-01T00:10:00+00:00"]
    );
    // The slot itself is not "after" itself.
    assert_eq!(
        times(&every_5, "2026-01-01T00:05:00Z", 1),
        ["2026-01-01T00:10:00+00:00"]
    );
    let seconds = cron("*/20 * * * * *", "UTC");
    assert_eq!(
        times(&seconds, "2026-01-01T00:00:05Z", 3),
        [
            "2026-01-01T00:00:20+00:00",
            "2026-01-01T00:00:40+00:00",
            "2026-01-01T00:01:00+00:00"
        ]
    );
    assert!(parse_cron("* * * *").unwrap_err().contains("has 4 fields"));
    assert!(
        parse_cron("0 0 * * * * 2030")
            .unwrap_err()
            .contains("has 7 fields")
    );
    assert!(
        parse_cron("61 * * * *")
            .unwrap_err()
            .contains("not a valid cron")
    );
    assert!(
        parse_cron("0 0 30 2 *")
            .unwrap_err()
            .contains("never fires")
    );
}

#[test]
fn cron_in_a_named_zone_across_dst() {
    // Berlin springs forward on 2026-03-29 (02:00 → 03:00) and falls back on 2026-10-25.
    let daily = cron("30 2 * * *", "Europe/Berlin");
    assert_eq!(
        times(&daily, "2026-03-27T12:00:00Z", 3),
        [
            "2026-03-28T01:30:00+00:00", // 02:30 CET
            "2026-03-29T01:00:00+00:00", // 02:30 does not exist: the first instant after the gap, 03:00 CEST
            "2026-03-30T00:30:00+00:00", // 02:30 CEST
        ]
    );
    // 02:30 happens twice on 2026-10-25; a daily job fires once.
    assert_eq!(
        times(&daily, "2026-10-24T12:00:00Z", 2),
        ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
    );
    let nine = cron("0 9 * * 1-5", "America/New_York");
    assert_eq!(
        times(&nine, "2026-03-06T00:00:00Z", 2),
        ["2026-03-06T14:00:00+00:00", "2026-03-09T13:00:00+00:00"]
    );
}

#[test]
fn interval_slots_are_anchored() {
    let every_hour = Timing {
        trigger: Trigger::Interval { seconds: 3600 },
        tz: chrono_tz::UTC,
        start: None,
        end: None,
    };
    // Anchored at the epoch: on the hour, whenever the server started.
    assert_eq!(
        times(&every_hour, "2026-05-01T10:17:00Z", 2),
        ["2026-05-01T11:00:00+00:00", "2026-05-01T12:00:00+00:00"]
    );
    let from_start = Timing {
        trigger: Trigger::Interval { seconds: 90 },
        tz: chrono_tz::UTC,
        start: Some(utc("2026-05-01T10:00:10Z")),
        end: Some(utc("2026-05-01T10:03:10Z")),
    };
    assert_eq!(
        times(&from_start, "2026-04-01T00:00:00Z", 5),
        [
            "2026-05-01T10:00:10+00:00",
            "2026-05-01T10:01:40+00:00",
            "2026-05-01T10:03:10+00:00"
        ],
        "the start is the first slot; the end is inclusive; nothing after"
    );
}

#[test]
fn start_end_bounds_and_once() {
    let mut daily = cron("0 6 * * *", "UTC");
    daily.start = Some(parse_instant("2026-02-01", chrono_tz::UTC, DayEdge::Start).expect("date"));
    daily.end = Some(parse_instant("2026-02-03", chrono_tz::UTC, DayEdge::End).expect("date"));
    assert_eq!(
        times(&daily, "2026-01-01T00:00:00Z", 10),
        [
            "2026-02-01T06:00:00+00:00",
            "2026-02-02T06:00:00+00:00",
            "2026-02-03T06:00:00+00:00"
        ]
    );
    let once = Timing {
        trigger: Trigger::Once {
            at: utc("2026-12-24T18:00:00Z"),
        },
        tz: chrono_tz::UTC,
        start: None,
        end: None,
    };
    assert_eq!(
        times(&once, "2026-12-01T00:00:00Z", 5),
        ["2026-12-24T18:00:00+00:00"]
    );
    assert!(once.next_after(utc("2026-12-24T18:00:00Z")).is_none());
}

#[test]
fn dates_without_offset_are_in_the_zone() {
    let berlin = parse_timezone("Europe/Berlin").expect("zone");
    assert_eq!(
        parse_instant("2026-07-01", berlin, DayEdge::Start)
            .expect("date")
            .to_rfc3339(),
        "2026-06-30T22:00:00+00:00"
    );
    assert_eq!(
        parse_instant("2026-07-01", berlin, DayEdge::End)
            .expect("date")
            .to_rfc3339(),
        "2026-07-01T21:59:59+00:00"
    );
    assert_eq!(
        parse_instant("2026-07-01T08:00:00Z", berlin, DayEdge::Start)
            .expect("instant")
            .to_rfc3339(),
        "2026-07-01T08:00:00+00:00"
    );
    assert!(parse_instant("yesterday", berlin, DayEdge::Start).is_err());
    for text in [
        "2026-01-31T08:00:00Z",
        "2026-01-31T08:00:00+01:00",
        "2026-01-31T08:00",
        "2026-01-31 08:00:00",
    ] {
        assert!(
            parse_instant(text, chrono_tz::UTC, DayEdge::Start).is_ok(),
            "{text}"
        );
    }
    assert!(parse_instant("tomorrow", chrono_tz::UTC, DayEdge::Start).is_err());
    assert!(parse_timezone("Mars/Olympus").unwrap_err().contains("IANA"));
}

#[test]
fn restart_interval_is_seconds_or_cron() {
    assert!(matches!(
        parse_restart_interval("3600"),
        Ok(Trigger::Interval { seconds: 3600 })
    ));
    assert!(matches!(
        parse_restart_interval("0 3 * * *"),
        Ok(Trigger::Cron { .. })
    ));
    assert!(parse_restart_interval("0").is_err());
    assert!(parse_restart_interval("99999999999999999999999").is_err());
    assert!(parse_restart_interval("soon").is_err());
}

#[test]
fn plain_words() {
    let words = |expr: &str, tz: &str| describe(&cron(expr, tz));
    assert_eq!(words("*/15 * * * *", "UTC"), "every 15 minutes");
    assert_eq!(words("* * * * *", "UTC"), "every minute");
    assert_eq!(words("*/10 * * * * *", "UTC"), "every 10 seconds");
    assert_eq!(
        words("0 2 * * 1-5", "Europe/Berlin"),
        "at 02:00 on weekdays, Europe/Berlin"
    );
    assert_eq!(
        words("30 6,18 * * *", "UTC"),
        "at 06:30 and 18:30 every day, UTC"
    );
    assert_eq!(
        words("0 8 1 * *", "UTC"),
        "at 08:00 on day 1 of the month, UTC"
    );
    assert_eq!(words("5 * * * *", "UTC"), "every hour at :05, UTC");
    assert_eq!(words("0 */2 * * *", "UTC"), "every 2 hours at :00, UTC");
    assert_eq!(
        words("0 9 * * MON,WED", "UTC"),
        "at 09:00 on Monday and Wednesday, UTC"
    );
    let interval = Timing {
        trigger: Trigger::Interval { seconds: 5400 },
        tz: chrono_tz::UTC,
        start: None,
        end: None,
    };
    assert_eq!(describe(&interval), "every 90 minutes");
    // Anything else still says something.
    assert!(!words("0 0 L * *", "UTC").is_empty());
}
