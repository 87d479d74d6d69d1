//! Run configurations (`schedules[]` entries, Fast-Flow's "run configs"): the
//! pipeline as a run with a given `run_config_id` sees it, with that entry's
//! values laid over the pipeline's.

use std::borrow::Cow;

use super::discovery::Pipeline;
use super::metadata::ScheduleSpec;

impl Pipeline {
    /// The `schedules[]` entry with this id.
    pub fn run_config(&self, id: &str) -> Option<&ScheduleSpec> {
        self.metadata.schedules.iter().find(|s| s.id == id)
    }

    /// The ids of every run configuration, for messages and forms.
    pub fn run_config_ids(&self) -> Vec<&str> {
        self.metadata
            .schedules
            .iter()
            .map(|s| s.id.as_str())
            .collect()
    }

    /// The pipeline with run configuration `id` applied: its `default_env` and
    /// `encrypted_env` entries win over the pipeline's, and each limit, `timeout`,
    /// `retry_attempts` and `retry_strategy` it sets replaces the pipeline's.
    /// `Err` names the missing id (the file changed since the run was queued).
    pub fn with_run_config(&self, id: Option<&str>) -> Result<Cow<'_, Pipeline>, String> {
        let Some(id) = id else {
            return Ok(Cow::Borrowed(self));
        };
        let Some(config) = self.run_config(id) else {
            return Err(format!(
                "run configuration `{id}` is not in {} (known: {})",
                self.metadata_file.as_deref().unwrap_or("pipeline.json"),
                known_list(&self.run_config_ids())
            ));
        };
        let mut p = self.clone();
        let m = &mut p.metadata;
        m.default_env.extend(config.default_env.clone());
        m.encrypted_env.extend(config.encrypted_env.clone());
        let own = &config.limits;
        let limits = &mut m.limits;
        limits.cpu_hard_limit = own.cpu_hard_limit.or(limits.cpu_hard_limit);
        limits.cpu_soft_limit = own.cpu_soft_limit.or(limits.cpu_soft_limit);
        if own.mem_hard_limit.is_some() {
            limits.mem_hard_limit = own.mem_hard_limit.clone();
        }
        if own.mem_soft_limit.is_some() {
            limits.mem_soft_limit = own.mem_soft_limit.clone();
        }
        m.timeout = config.timeout.or(m.timeout);
        m.retry_attempts = config.retry_attempts.or(m.retry_attempts);
        if config.retry_strategy.is_some() {
            m.retry_strategy = config.retry_strategy.clone();
        }
        Ok(Cow::Owned(p))
    }
}

/// `a, b` or "none".
pub fn known_list(ids: &[&str]) -> String {
    if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(", ")
    }
}
