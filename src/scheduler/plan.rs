//! The fate of a job's due slots, decided from the time alone: which start a
//! run, which are skipped (disabled) and which were missed, following the
//! job's catch-up policy. Pure, so every policy is tested without waiting.

use chrono::{DateTime, Duration, Utc};

use super::jobs::{JobKind, JobSpec};
use crate::pipelines::timing::{CATCHUP_ALL_CAP, Catchup};

/// The newest due slot is on time if it is at most this late; every other due slot
/// was missed and follows `catchup`.
pub const MISFIRE_GRACE: Duration = Duration::seconds(60);
/// Slots looked at per job and pass: the catch-up cap and some room.
pub const MAX_SLOTS_PER_PASS: usize = CATCHUP_ALL_CAP + 24;

/// What happens to one slot.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Record this outcome; start nothing.
    Record {
        outcome: &'static str,
        reason: String,
    },
    /// Start a run and record `outcome` (`started` or `caught_up`).
    Fire {
        outcome: &'static str,
        reason: String,
        /// Caught-up runs of `catchup: "all"` queue behind each other instead of skipping.
        queue_behind_previous: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSlot {
    pub time: DateTime<Utc>,
    pub decision: Decision,
}

/// The slots of `job` in `(cursor, now]` and what to do with each.
/// `off` is why the job does not fire (disabled), if it does not;
/// `process_start` tells a missed slot's reason (server down, or late).
pub fn plan(
    job: &JobSpec,
    off: Option<&str>,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
    process_start: DateTime<Utc>,
) -> Vec<PlannedSlot> {
    let window = job.timing.slots_in(cursor, now, MAX_SLOTS_PER_PASS);
    let mut out = Vec::with_capacity(window.slots.len() + 1);
    if let Some((first, last)) = window.earlier {
        let reason = format!(
            "every slot from {} to {} passed without a run ({}); recorded as this one row",
            first.format("%Y-%m-%d %H:%M:%S UTC"),
            last.format("%Y-%m-%d %H:%M:%S UTC"),
            off.map_or_else(|| why_late(first, process_start), |o| o.to_string())
        );
        let outcome = if off.is_some() {
            "skipped_disabled"
        } else {
            "missed"
        };
        out.push(record(first, outcome, reason));
    }
    if let Some(off) = off {
        out.extend(
            window
                .slots
                .iter()
                .map(|t| record(*t, "skipped_disabled", off.to_string())),
        );
        return out;
    }
    // Only the newest slot can be on time: older ones were missed, however
    // recently (a 40-second outage of an every-second job is 39 missed slots).
    let on_time_from = now - MISFIRE_GRACE;
    let mut late = window.slots.clone();
    let newest_on_time = late.last().is_some_and(|newest| *newest >= on_time_from);
    let on_time: Vec<DateTime<Utc>> = if newest_on_time {
        late.pop().into_iter().collect()
    } else {
        Vec::new()
    };
    let policy = job.catchup;
    let latest_late = late.last().copied();
    let caught_up_from = late.len().saturating_sub(CATCHUP_ALL_CAP);
    for (i, t) in late.iter().enumerate() {
        let why = why_late(*t, process_start);
        let decision = match policy {
            Catchup::None => skip(
                "missed",
                format!("{why}; catchup: \"none\" does not run missed slots"),
            ),
            Catchup::Latest if on_time.is_empty() && Some(*t) == latest_late => Decision::Fire {
                outcome: "caught_up",
                reason: format!("{why}; run late as the latest missed slot (catchup: \"latest\")"),
                queue_behind_previous: false,
            },
            Catchup::Latest => skip(
                "missed",
                format!("{why}; catchup: \"latest\" runs only the newest slot"),
            ),
            Catchup::All if i >= caught_up_from => Decision::Fire {
                outcome: "caught_up",
                reason: format!("{why}; run late (catchup: \"all\")"),
                queue_behind_previous: true,
            },
            Catchup::All => skip(
                "missed",
                format!(
                    "{why}; beyond the {CATCHUP_ALL_CAP} newest slots that catchup: \"all\" runs"
                ),
            ),
        };
        out.push(PlannedSlot { time: *t, decision });
    }
    for t in on_time {
        let reason = match job.kind {
            JobKind::Restart => "restart on schedule (restart_interval)".to_string(),
            _ => "on schedule".to_string(),
        };
        out.push(PlannedSlot {
            time: t,
            decision: Decision::Fire {
                outcome: "started",
                reason,
                queue_behind_previous: false,
            },
        });
    }
    out
}

fn why_late(slot: DateTime<Utc>, process_start: DateTime<Utc>) -> String {
    if slot < process_start {
        "the server was not running at this time".into()
    } else {
        "not fired at its time (the scheduler was held up, or the schedule could not be read then)"
            .into()
    }
}

fn skip(outcome: &'static str, reason: String) -> Decision {
    Decision::Record { outcome, reason }
}

fn record(time: DateTime<Utc>, outcome: &'static str, reason: String) -> PlannedSlot {
    PlannedSlot {
        time,
        decision: skip(outcome, reason),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
