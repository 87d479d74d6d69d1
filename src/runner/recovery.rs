//! Startup repair: runs left RUNNING by a previous process are closed with a
//! reason, and this installation's leftover containers are removed. (Re-attaching
//! to still-running containers is the run engine's next step.)

use super::RunnerDeps;
use super::engine;
use super::logs::{LogWriter, log_path};
use crate::db::{self, RunOutcome};
use crate::run_status::{ErrorType, RunStatus};

/// Returns how many runs were closed.
pub async fn recover_after_restart(deps: &RunnerDeps) -> Result<usize, db::DbError> {
    let stale = db::runs::running(&deps.pool).await?;
    let reason = "Fast-Flow stopped while this run was in progress; its container was removed at the next start";
    for run in &stale {
        let path = log_path(&deps.config.logs_dir, &run.id);
        let mut summary = Default::default();
        if let Ok(mut w) = LogWriter::open(&path, deps.config.log_max_size_bytes) {
            let _ = w.write_system(format!("[fastflow] {reason}"));
            summary = w.close().map(|(s, _)| s).unwrap_or_default();
        }
        let outcome = RunOutcome {
            status: RunStatus::Failed,
            exit_code: None,
            error_type: Some(ErrorType::InfrastructureError),
            error_message: Some(reason.into()),
            log_lines: summary.lines,
            log_bytes: summary.bytes,
            log_truncated: summary.truncated,
        };
        db::runs::finish(&deps.pool, &run.id, &outcome).await?;
        tracing::warn!(run = %run.id, pipeline = %run.pipeline_name, "{reason}");
    }
    match engine::list_instance_containers(&deps.docker, &deps.instance_id).await {
        Ok(containers) => {
            for (container, run_id) in containers {
                tracing::info!(%container, run = %run_id, "removing leftover run container");
                engine::remove_in_background(&deps.docker, container);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not list leftover containers (is the Docker engine reachable?)")
        }
    }
    Ok(stale.len())
}
