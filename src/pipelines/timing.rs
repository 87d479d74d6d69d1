//! When a schedule fires: a cron expression (5 fields, or 6 with seconds), an
//! interval or one date-time, in an IANA time zone, bounded by start and end.
//! Pure functions of time, so the scheduler, the pages and the tests agree.

use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::Serialize;

use super::fields::shown;

/// What to do with slots that passed while the server was not running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Record them as missed.
    None,
    /// Run the most recent one, record the rest as missed.
    #[default]
    Latest,
    /// Run each of them (at most [`CATCHUP_ALL_CAP`]), oldest first.
    All,
}

/// What a slot does while an earlier run of the same job is still queued or running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Record the slot as skipped.
    #[default]
    Skip,
    /// Queue the run; it starts when the earlier one has finished.
    Queue,
    /// Start it alongside.
    Allow,
}

/// `catchup: "all"` runs at most this many missed slots; older ones are recorded as missed.
pub const CATCHUP_ALL_CAP: usize = 1000;

impl Catchup {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Self::None),
            "latest" => Ok(Self::Latest),
            "all" => Ok(Self::All),
            other => Err(format!(
                "unknown catch-up policy `{}` (expected \"none\", \"latest\" or \"all\")",
                shown(other)
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Latest => "latest",
            Self::All => "all",
        }
    }
}

impl Overlap {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "skip" => Ok(Self::Skip),
            "queue" => Ok(Self::Queue),
            "allow" => Ok(Self::Allow),
            other => Err(format!(
                "unknown overlap policy `{}` (expected \"skip\", \"queue\" or \"allow\")",
                shown(other)
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Queue => "queue",
            Self::Allow => "allow",
        }
    }
}

/// An IANA time zone name such as `Europe/Berlin`.
pub fn parse_timezone(text: &str) -> Result<Tz, String> {
    Tz::from_str(text.trim()).map_err(|_| {
        format!(
            "`{}` is not an IANA time zone name (e.g. \"UTC\", \"Europe/Berlin\", \"America/New_York\")",
            shown(text)
        )
    })
}

/// A cron expression with 5 fields (minute hour day-of-month month day-of-week)
/// or 6 (seconds first). An expression that can never fire is refused too.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let fields = expr.split_whitespace().count();
    let nickname = expr.trim_start().starts_with('@');
    if !nickname && !(5..=6).contains(&fields) {
        return Err(format!(
            "`{}` has {fields} fields; a cron expression has 5 (minute hour day-of-month month day-of-week) or 6 (with seconds first)",
            shown(expr)
        ));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    let cron = parser
        .parse(expr)
        .map_err(|e| format!("`{}` is not a valid cron expression: {e}", shown(expr)))?;
    // Feb 30 parses but never comes: a schedule that never fires is a mistake to report.
    let probe = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    match cron.find_next_occurrence(&probe, false) {
        Ok(next) if next.year() < 2100 => Ok(cron),
        _ => Err(format!(
            "`{}` never fires (no such date exists)",
            shown(expr)
        )),
    }
}

/// `restart_interval`: a number of seconds (1 to the interval range's maximum) or a cron expression.
pub fn parse_restart_interval(text: &str) -> Result<Trigger, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        let range = &super::ranges::INTERVAL;
        return match text.parse::<u64>() {
            Ok(seconds) if range.contains(seconds) => Ok(Trigger::Interval { seconds }),
            _ => Err(format!(
                "{} seconds is out of range: must be from {} to {}",
                shown(text),
                range.min,
                range.max
            )),
        };
    }
    let cron = parse_cron(text)?;
    Ok(Trigger::Cron {
        expr: text.to_string(),
        cron: Box::new(cron),
    })
}

/// Which side of a day a date without a time stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayEdge {
    Start,
    End,
}

/// An ISO date or date-time. With an offset (`Z`, `+02:00`) it is that instant;
/// without one it is a wall-clock time in `tz`; a date alone is the start (or the
/// last second) of that day in `tz`.
pub fn parse_instant(text: &str, tz: Tz, edge: DayEdge) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Ok(dt.with_timezone(&Utc));
    }
    let naive = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(text, fmt).ok())
    .or_else(|| {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        let time = match edge {
            DayEdge::Start => NaiveTime::MIN,
            DayEdge::End => NaiveTime::from_hms_opt(23, 59, 59)?,
        };
        Some(date.and_time(time))
    });
    let Some(naive) = naive else {
        return Err(format!(
            "`{}` is not a date or date-time: use ISO 8601, e.g. \"2026-01-31\" or \"2026-01-31T08:00:00Z\"",
            shown(text)
        ));
    };
    // A wall-clock time skipped by a DST change is taken one hour later; a repeated one, the first time.
    let local = tz
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(|| format!("`{}` does not exist in {tz}", shown(text)))?;
    Ok(local.with_timezone(&Utc))
}

/// What makes a schedule fire.
#[derive(Debug, Clone)]
pub enum Trigger {
    Cron {
        expr: String,
        cron: Box<Cron>,
    },
    /// Slots are `anchor + k * seconds`: the schedule's start, else 1970-01-01 UTC,
    /// so the same slots come back after every restart.
    Interval {
        seconds: u64,
    },
    Once {
        at: DateTime<Utc>,
    },
}

impl Trigger {
    /// Fast-Flow's `trigger_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cron { .. } => "CRON",
            Self::Interval { .. } => "INTERVAL",
            Self::Once { .. } => "DATE",
        }
    }

    /// Fast-Flow's `trigger_value`: the expression, the seconds or the date-time.
    pub fn value(&self) -> String {
        match self {
            Self::Cron { expr, .. } => expr.clone(),
            Self::Interval { seconds } => seconds.to_string(),
            Self::Once { at } => at.to_rfc3339(),
        }
    }
}

/// A trigger in a time zone, within optional bounds.
#[derive(Debug, Clone)]
pub struct Timing {
    pub trigger: Trigger,
    pub tz: Tz,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl Timing {
    /// The first fire time strictly after `t`, or `None` if there is none (ended).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Before the start, the start itself may be a slot.
        let (from, inclusive) = match self.start {
            Some(start) if start > t => (start, true),
            _ => (t, false),
        };
        let next = match &self.trigger {
            Trigger::Cron { cron, .. } => cron
                .find_next_occurrence(&from.with_timezone(&self.tz), inclusive)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Trigger::Interval { seconds } => next_interval_slot(
                self.start.map_or(0, |s| s.timestamp()),
                *seconds,
                from,
                inclusive,
            ),
            Trigger::Once { at } => (*at > t && self.start.is_none_or(|s| *at >= s)).then_some(*at),
        }?;
        match self.end {
            Some(end) if next > end => None,
            _ => Some(next),
        }
    }

    /// The last fire time at or before `t`, or `None` if there is none.
    pub fn last_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = match self.end {
            Some(end) if end < t => end,
            _ => t,
        };
        let last = match &self.trigger {
            Trigger::Cron { cron, .. } => cron
                .find_previous_occurrence(&t.with_timezone(&self.tz), true)
                .ok()
                .map(|d| d.with_timezone(&Utc)),
            Trigger::Interval { seconds } => {
                let anchor = self.start.map_or(0, |s| s.timestamp());
                let step = i64::try_from(*seconds).ok().filter(|s| *s > 0)?;
                let ts = t.timestamp();
                if ts < anchor {
                    None
                } else {
                    let k = (ts - anchor) / step;
                    anchor
                        .checked_add(k.checked_mul(step)?)
                        .and_then(|slot| DateTime::from_timestamp(slot, 0))
                }
            }
            Trigger::Once { at } => (*at <= t).then_some(*at),
        }?;
        match self.start {
            Some(start) if last < start => None,
            _ => Some(last),
        }
    }

    /// The slots in `(after, until]`: all of them if at most `max`, else the
    /// newest `max` plus the first and last of the older ones (see [`SlotWindow`]).
    pub fn slots_in(&self, after: DateTime<Utc>, until: DateTime<Utc>, max: usize) -> SlotWindow {
        let mut slots = Vec::new();
        let mut cursor = after;
        while slots.len() <= max {
            match self.next_after(cursor) {
                Some(next) if next <= until && next > cursor => {
                    slots.push(next);
                    cursor = next;
                }
                _ => {
                    return SlotWindow {
                        slots,
                        earlier: None,
                    };
                }
            }
        }
        // More than `max`: take the newest ones, walking back from `until`.
        let first = slots[0];
        let mut newest = Vec::with_capacity(max);
        let mut cursor = until;
        while newest.len() < max {
            match self.last_at_or_before(cursor) {
                Some(slot) if slot > after => {
                    newest.push(slot);
                    cursor = slot - chrono::Duration::seconds(1);
                }
                _ => break,
            }
        }
        newest.reverse();
        let earlier = newest
            .first()
            .and_then(|oldest| self.last_at_or_before(*oldest - chrono::Duration::seconds(1)))
            .filter(|last| *last >= first)
            .map(|last| (first, last));
        SlotWindow {
            slots: newest,
            earlier,
        }
    }

    /// The next `count` fire times after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = t;
        while out.len() < count {
            match self.next_after(cursor) {
                Some(next) if next > cursor => {
                    out.push(next);
                    cursor = next;
                }
                _ => break,
            }
        }
        out
    }
}

/// Slots of a time range, bounded in number.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotWindow {
    /// Oldest first.
    pub slots: Vec<DateTime<Utc>>,
    /// When there were more: the first and last slot before `slots`, not listed one by one.
    pub earlier: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// `anchor + k * seconds` for the smallest k ≥ 0 with the slot after `from`
/// (or at it, if `inclusive`). Checked arithmetic: `None` past the calendar's end.
fn next_interval_slot(
    anchor: i64,
    seconds: u64,
    from: DateTime<Utc>,
    inclusive: bool,
) -> Option<DateTime<Utc>> {
    let step = i64::try_from(seconds).ok().filter(|s| *s > 0)?;
    let ts = from.timestamp();
    let exact = from.timestamp_subsec_nanos() == 0;
    let slot = if ts < anchor {
        anchor
    } else {
        let k = (ts - anchor) / step;
        let on_slot = anchor.checked_add(k.checked_mul(step)?)?;
        if on_slot == ts && exact && inclusive {
            on_slot
        } else {
            on_slot.checked_add(step)?
        }
    };
    DateTime::from_timestamp(slot, 0)
}

#[cfg(test)]
#[path = "timing_tests.rs"]
mod tests;
