//! Jobs, derived from the pipelines' metadata: one per `schedules[]` entry with
//! a cron or interval (else one for the top-level schedule), one for
//! `run_once_at`, one for `restart_interval`. A job's id is stable for the same
//! pipeline, run configuration and kind, across restarts and edits.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::db::schedule::JobKey;
use crate::pipelines::timing::{
    Catchup, Overlap, Timing, Trigger, parse_cron, parse_restart_interval, parse_timezone,
};
use crate::pipelines::{Pipeline, Snapshot};

/// What a job does at its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Start a run (with the job's run configuration).
    Schedule,
    /// `run_once_at`: start one run.
    Once,
    /// `restart_interval`: stop the running run, then start one after `restart_cooldown`.
    Restart,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Once => "once",
            Self::Restart => "restart",
        }
    }
}

/// One job as pipeline.json declares it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: String,
    pub pipeline_name: String,
    pub run_config_id: Option<String>,
    pub kind: JobKind,
    pub timing: Timing,
    pub catchup: Catchup,
    pub overlap: Overlap,
    /// `enabled` of the schedule entry in the file.
    pub enabled_in_file: bool,
    /// Why the pipeline cannot run at all (invalid, disabled); overrides cannot change this.
    pub pipeline_off: Option<String>,
}

impl JobSpec {
    /// Whether slots start runs, given the stored override.
    pub fn enabled(&self, override_: Option<bool>) -> bool {
        self.pipeline_off.is_none() && override_.unwrap_or(self.enabled_in_file)
    }

    /// Why slots do not start runs now, or `None`.
    pub fn off_reason(&self, override_: Option<bool>) -> Option<String> {
        if let Some(reason) = &self.pipeline_off {
            return Some(reason.clone());
        }
        match override_ {
            Some(false) => Some("disabled by a user (override)".into()),
            Some(true) => None,
            None if !self.enabled_in_file => Some(match &self.run_config_id {
                Some(id) => format!("schedule `{id}` has \"enabled\": false in pipeline.json"),
                None => "disabled in pipeline.json".into(),
            }),
            None => None,
        }
    }

    pub fn key(&self) -> JobKey {
        JobKey {
            id: self.id.clone(),
            pipeline_name: self.pipeline_name.clone(),
            run_config_id: self.run_config_id.clone(),
            kind: self.kind.as_str(),
            fingerprint: format!(
                "{}|{}|{}|{:?}|{:?}",
                self.timing.trigger.kind(),
                self.timing.trigger.value(),
                self.timing.tz.name(),
                self.timing.start,
                self.timing.end
            ),
        }
    }
}

/// The stable id: a UUID (as Fast-Flow's job ids are) derived from the pipeline,
/// the run configuration and the kind.
pub fn job_id(pipeline: &str, run_config_id: Option<&str>, kind: JobKind) -> String {
    let name = format!(
        "{pipeline}\0{}\0{}",
        run_config_id.unwrap_or(""),
        kind.as_str()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// Every job of every pipeline, by id.
pub fn from_snapshot(snapshot: &Snapshot) -> Arc<BTreeMap<String, JobSpec>> {
    let mut out = BTreeMap::new();
    for p in snapshot.pipelines.values() {
        for job in of_pipeline(p) {
            out.insert(job.id.clone(), job);
        }
    }
    Arc::new(out)
}

fn cron_trigger(expr: &str) -> Option<Trigger> {
    let cron = parse_cron(expr).ok()?;
    Some(Trigger::Cron {
        expr: expr.trim().to_string(),
        cron: Box::new(cron),
    })
}

fn schedule_trigger(cron: Option<&String>, interval: Option<u64>) -> Option<Trigger> {
    // Cron wins over an interval, as in Fast-Flow.
    match (cron, interval) {
        (Some(expr), _) => cron_trigger(expr),
        (None, Some(seconds)) => Some(Trigger::Interval { seconds }),
        (None, None) => None,
    }
}

pub fn of_pipeline(p: &Pipeline) -> Vec<JobSpec> {
    let m = &p.metadata;
    // A zone that could not be read would make every time wrong: no jobs until it is fixed.
    if p.errors
        .iter()
        .any(|e| e.field.ends_with("schedule_timezone"))
    {
        return Vec::new();
    }
    let zone = m
        .schedule_timezone
        .as_deref()
        .and_then(|z| parse_timezone(z).ok())
        .unwrap_or(chrono_tz::UTC);
    let pipeline_off = if !p.is_valid() {
        Some(format!(
            "pipeline is invalid: {}",
            p.error_lines().first().cloned().unwrap_or_default()
        ))
    } else if !m.enabled {
        Some("pipeline is disabled (\"enabled\": false in its metadata)".into())
    } else {
        None
    };
    let job = |kind: JobKind, run_config_id: Option<String>, timing: Timing| JobSpec {
        id: job_id(&p.name, run_config_id.as_deref(), kind),
        pipeline_name: p.name.clone(),
        run_config_id,
        kind,
        timing,
        catchup: m.catchup.unwrap_or_default(),
        overlap: m.overlap.unwrap_or_default(),
        enabled_in_file: true,
        pipeline_off: pipeline_off.clone(),
    };
    let mut jobs = Vec::new();
    if m.schedules.is_empty() {
        if let Some(trigger) =
            schedule_trigger(m.schedule_cron.as_ref(), m.schedule_interval_seconds)
        {
            let timing = bounded(trigger, zone, m.schedule_start, m.schedule_end);
            jobs.push(job(JobKind::Schedule, None, timing));
        }
    } else {
        for s in &m.schedules {
            let Some(trigger) =
                schedule_trigger(s.schedule_cron.as_ref(), s.schedule_interval_seconds)
            else {
                continue; // a run configuration without a schedule: webhooks, manual and downstream runs only
            };
            let tz = s
                .schedule_timezone
                .as_deref()
                .and_then(|z| parse_timezone(z).ok())
                .unwrap_or(zone);
            let mut spec = job(
                JobKind::Schedule,
                Some(s.id.clone()),
                bounded(trigger, tz, s.schedule_start, s.schedule_end),
            );
            spec.catchup = s.catchup.or(m.catchup).unwrap_or_default();
            spec.overlap = s.overlap.or(m.overlap).unwrap_or_default();
            spec.enabled_in_file = s.enabled;
            jobs.push(spec);
        }
    }
    if let Some(at) = m.run_once_at {
        jobs.push(job(
            JobKind::Once,
            None,
            bounded(Trigger::Once { at }, zone, None, None),
        ));
    }
    if let Some(text) = &m.restart_interval
        && let Ok(trigger) = parse_restart_interval(text)
    {
        let mut spec = job(JobKind::Restart, None, bounded(trigger, zone, None, None));
        // A restart is about now: one missed while down is not worth doing late.
        spec.catchup = Catchup::None;
        spec.overlap = Overlap::Allow;
        jobs.push(spec);
    }
    jobs
}

fn bounded(
    trigger: Trigger,
    tz: chrono_tz::Tz,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Timing {
    Timing {
        trigger,
        tz,
        start,
        end,
    }
}
