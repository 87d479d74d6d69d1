//! A job as the API and the pages show it: Fast-Flow's fields (`id`,
//! `pipeline_name`, `trigger_type`, `trigger_value`, `enabled`, `next_run_time`,
//! …) plus ours (time zone, policies, plain words, override state).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Scheduler;
use super::jobs::JobSpec;
use crate::db::schedule::JobRow;
use crate::db::{self, DbError};
use crate::pipelines::timing_words::describe;

#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub pipeline_name: String,
    pub trigger_type: &'static str,
    pub trigger_value: String,
    pub enabled: bool,
    pub next_run_time: Option<DateTime<Utc>>,
    pub last_run_time: Option<DateTime<Utc>>,
    pub run_count: i64,
    pub source: &'static str,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub run_config_id: Option<String>,
    pub timezone: String,
    pub catchup: &'static str,
    pub overlap: &'static str,
    /// `schedule`, `once` or `restart` (`restart_interval`).
    pub kind: &'static str,
    /// The schedule in plain words.
    pub description: String,
    /// `enabled` as pipeline.json says.
    pub enabled_in_file: bool,
    /// A user's override (`null` = follows pipeline.json).
    pub enabled_override: Option<bool>,
    /// Whether the override says something other than the file.
    pub override_differs: bool,
    /// Why slots do not start runs, when they do not.
    pub disabled_reason: Option<String>,
    /// No slot is left (a fired `run_once_at`, a passed `schedule_end`).
    pub ended: bool,
}

impl JobView {
    pub fn new(spec: &JobSpec, row: Option<&JobRow>, now: DateTime<Utc>) -> Self {
        let enabled_override = row.and_then(|r| r.enabled_override);
        let enabled = spec.enabled(enabled_override);
        Self {
            id: spec.id.clone(),
            pipeline_name: spec.pipeline_name.clone(),
            trigger_type: spec.timing.trigger.kind(),
            trigger_value: spec.timing.trigger.value(),
            enabled,
            next_run_time: if enabled {
                spec.timing.next_after(now)
            } else {
                None
            },
            last_run_time: row.and_then(|r| r.last_run_time),
            run_count: row.map_or(0, |r| r.run_count),
            source: "pipeline_json",
            start_date: spec.timing.start,
            end_date: spec.timing.end,
            run_config_id: spec.run_config_id.clone(),
            timezone: spec.timing.tz.name().to_string(),
            catchup: spec.catchup.as_str(),
            overlap: spec.overlap.as_str(),
            kind: spec.kind.as_str(),
            description: describe(&spec.timing),
            enabled_in_file: spec.enabled_in_file,
            enabled_override,
            override_differs: enabled_override.is_some_and(|o| o != spec.enabled_in_file),
            disabled_reason: spec.off_reason(enabled_override),
            ended: spec.timing.next_after(now).is_none(),
        }
    }
}

impl Scheduler {
    /// Every current job, by pipeline then run configuration.
    pub async fn job_views(&self) -> Result<Vec<JobView>, DbError> {
        let specs = self.jobs();
        let rows = db::schedule::all_jobs(self.pool()).await?;
        let now = Utc::now();
        let mut views: Vec<JobView> = specs
            .values()
            .map(|s| JobView::new(s, rows.get(&s.id), now))
            .collect();
        views.sort_by(|a, b| {
            (&a.pipeline_name, &a.run_config_id, a.kind).cmp(&(
                &b.pipeline_name,
                &b.run_config_id,
                b.kind,
            ))
        });
        Ok(views)
    }

    /// The jobs of one pipeline.
    pub async fn jobs_of(&self, pipeline: &str) -> Result<Vec<JobView>, DbError> {
        let mut views = self.job_views().await?;
        views.retain(|v| v.pipeline_name == pipeline);
        Ok(views)
    }

    /// One job and its spec, if it exists now.
    pub async fn job_view(&self, id: &str) -> Result<Option<(JobView, JobSpec)>, DbError> {
        let specs = self.jobs();
        let Some(spec) = specs.get(id) else {
            return Ok(None);
        };
        let row = db::schedule::job(self.pool(), id).await?;
        Ok(Some((
            JobView::new(spec, row.as_ref(), Utc::now()),
            spec.clone(),
        )))
    }
}
