//! The dashboard's server-rendered SVG: a year of runs per day as a heat map
//! (weeks across, weekdays down, like a contribution graph) and a strip of a
//! pipeline's last outcomes. Numbers and fixed words only; every cell has a
//! `<title>` so a hover or a screen reader tells its day and counts.

use std::collections::HashMap;
use std::fmt::Write;

use chrono::{Datelike, Duration, NaiveDate};

use crate::db::dashboard::DayTotal;
use crate::run_status::RunStatus;

const CELL: i64 = 11;
const STEP: i64 = 13;
const LEFT: i64 = 28;
const TOP: i64 = 16;
/// Weeks shown: a year and the days of the current week.
const WEEKS: i64 = 53;

/// The heat map of the 53 weeks that end with `today`'s week. Darker is more
/// runs (four steps relative to the busiest day); a day with more failed than
/// successful runs is red.
pub fn heat_map(days: &[DayTotal], today: NaiveDate) -> String {
    let by_day: HashMap<&str, &DayTotal> = days.iter().map(|d| (d.day.as_str(), d)).collect();
    let busiest = days.iter().map(|d| d.total).max().unwrap_or(0).max(1);
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let first = monday - Duration::weeks(WEEKS - 1);
    let width = LEFT + WEEKS * STEP;
    let height = TOP + 7 * STEP;
    let total: i64 = days.iter().map(|d| d.total).sum();
    let mut svg = format!(
        r#"<svg class="heat" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="Runs per day over the last year: {total} runs">"#
    );
    for (row, label) in [(0, "Mon"), (2, "Wed"), (4, "Fri")] {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{}" y="{}">{label}</text>"#,
            LEFT - 4,
            TOP + row * STEP + CELL - 2
        );
    }
    let mut last_month = 0;
    for week in 0..WEEKS {
        let week_start = first + Duration::weeks(week);
        if week_start.month() != last_month {
            last_month = week_start.month();
            let _ = write!(
                svg,
                r#"<text class="month" x="{}" y="{}">{}</text>"#,
                LEFT + week * STEP,
                TOP - 5,
                week_start.format("%b")
            );
        }
        for weekday in 0..7 {
            let day = week_start + Duration::days(weekday);
            if day > today {
                break;
            }
            let key = day.format("%Y-%m-%d").to_string();
            let (class, label) = match by_day.get(key.as_str()) {
                None => ("h0".to_string(), format!("{key}: no runs")),
                Some(d) => {
                    let level = (d.total.saturating_mul(4) + busiest - 1) / busiest;
                    let class = if d.failed > d.succeeded {
                        "hf".to_string()
                    } else {
                        format!("h{}", level.clamp(1, 4))
                    };
                    (
                        class,
                        format!(
                            "{key}: {} runs, {} succeeded, {} failed",
                            d.total, d.succeeded, d.failed
                        ),
                    )
                }
            };
            let cell = format!(
                r#"<rect class="{class}" x="{}" y="{}" width="{CELL}" height="{CELL}" rx="2"><title>{label}</title></rect>"#,
                LEFT + week * STEP,
                TOP + weekday * STEP
            );
            // A day with runs opens the runs triggered that day.
            if by_day.contains_key(key.as_str()) {
                let _ = write!(svg, r#"<a href="/runs?from={key}&amp;to={key}">{cell}</a>"#);
            } else {
                svg.push_str(&cell);
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A pipeline's last outcomes as squares from the left, oldest first (the newest
/// is the rightmost square), each a link to its run.
/// `outcomes` come newest first (as the query returns them).
pub fn outcome_strip(outcomes: &[(String, RunStatus)]) -> String {
    const SLOTS: i64 = 10;
    let width = SLOTS * STEP;
    let mut svg = format!(
        r#"<svg class="strip" viewBox="0 0 {width} {CELL}" width="{width}" height="{CELL}" role="img" aria-label="last {} runs">"#,
        outcomes.len()
    );
    let shown = outcomes.iter().take(SLOTS as usize).rev();
    for (i, (id, status)) in shown.enumerate() {
        let x = i as i64 * STEP;
        // Run ids are UUIDs (checked where they are made); the class is a fixed word.
        let _ = write!(
            svg,
            r#"<a href="/runs/{id}"><rect class="s-{}" x="{x}" y="0" width="{CELL}" height="{CELL}" rx="2"><title>{status}</title></rect></a>"#,
            status.as_str().to_ascii_lowercase()
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_map_marks_busy_and_failing_days_and_stops_at_today() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
        let days = vec![
            DayTotal {
                day: "2026-12-01".into(),
                total: 8,
                succeeded: 8,
                failed: 0,
            },
            DayTotal {
                day: "2026-11-30".into(),
                total: 2,
                succeeded: 0,
                failed: 2,
            },
        ];
        let svg = heat_map(&days, today);
        assert!(
            svg.contains(r#"<rect class="h4""#)
                && svg.contains("2026-12-01: 8 runs, 8 succeeded, 0 failed")
        );
        assert!(svg.contains(r#"<rect class="hf""#) && svg.contains("2026-11-30: 2 runs"));
        assert!(svg.contains("2026-12-02: no runs"));
        assert!(!svg.contains("2026-12-03"), "no cells after today");
        assert!(
            svg.contains(r#"href="/runs?from=2026-11-30&amp;to=2026-11-30""#),
            "a day with runs links to them"
        );
        assert!(
            !svg.contains("from=2026-12-02"),
            "a day without runs has no link"
        );
        // 52 full weeks and Monday-Wednesday of this one.
        assert_eq!(svg.matches("<rect").count(), 52 * 7 + 3);
    }

    #[test]
    fn strip_puts_the_newest_run_on_the_right() {
        let runs = vec![
            ("new".to_string(), RunStatus::Failed),
            ("old".to_string(), RunStatus::Success),
        ];
        let svg = outcome_strip(&runs);
        let (old, new) = (svg.find("/runs/old"), svg.find("/runs/new"));
        assert!(old < new, "{svg}");
        assert!(svg.contains(r#"class="s-failed" x="13""#), "{svg}");
    }
}
