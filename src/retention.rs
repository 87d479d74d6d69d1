//! Retention: removes finished runs past `LOG_RETENTION_DAYS` or beyond the newest
//! `LOG_RETENTION_RUNS` per pipeline, with their log and metrics files. Queued and
//! running runs are never touched; counters and daily statistics stay. The slot
//! ledger keeps `LOG_RETENTION_DAYS` too, and at most [`SLOTS_KEPT_PER_JOB`] rows
//! per job in any case. The notification log keeps 90 days (or less, with
//! `LOG_RETENTION_DAYS`).

use std::path::Path;

use chrono::{Duration, NaiveTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, Pool};
use crate::runner::logs::log_path;
use crate::runner::metrics::metrics_path;

/// What one cleanup removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    pub runs_deleted: u64,
    pub files_deleted: u64,
    pub bytes_freed: u64,
    /// Runs kept because a file could not be removed (with the reason).
    pub errors: Vec<String>,
    pub retention_days: Option<u32>,
    pub retention_runs: Option<u32>,
    /// Slot ledger rows removed.
    pub slots_deleted: u64,
    /// Sent and failed notifications removed (kept [`NOTIFICATIONS_KEPT_DAYS`]
    /// days, or `LOG_RETENTION_DAYS` when shorter).
    pub notifications_deleted: u64,
}

/// Days the notification log keeps a sent or failed message.
pub const NOTIFICATIONS_KEPT_DAYS: i64 = 90;

/// The newest ledger rows kept per scheduler job (an every-second job makes 86 400 a day).
pub const SLOTS_KEPT_PER_JOB: i64 = 10_000;

/// How long a request for a cleanup waits for its report; a longer cleanup goes on.
pub const CLEANUP_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs [`cleanup`] on a task of its own, so a request that ends (its timeout, a
/// client that leaves) never stops it halfway; one cleanup at a time. Returns the
/// report if it finished within `wait`, `None` if it goes on in the background.
pub async fn cleanup_detached(
    pool: Pool,
    config: std::sync::Arc<Config>,
    wait: std::time::Duration,
) -> Result<Option<CleanupReport>, db::DbError> {
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let task = tokio::spawn(async move {
        let _one = ONE_AT_A_TIME.lock().await;
        cleanup(&pool, &config).await
    });
    match tokio::time::timeout(wait, task).await {
        Ok(Ok(report)) => report.map(Some),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the retention cleanup task failed");
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

/// Removes what the retention settings say; with neither set it removes nothing.
pub async fn cleanup(pool: &Pool, config: &Config) -> Result<CleanupReport, db::DbError> {
    let mut report = CleanupReport {
        retention_days: config.log_retention_days,
        retention_runs: config.log_retention_runs,
        ..Default::default()
    };
    let older_than = config
        .log_retention_days
        .map(|d| Utc::now() - Duration::days(i64::from(d)));
    report.slots_deleted = db::schedule::prune_slots(pool, older_than, SLOTS_KEPT_PER_JOB).await?;
    let notices_before = older_than
        .unwrap_or_else(|| Utc::now() - Duration::days(NOTIFICATIONS_KEPT_DAYS))
        .max(Utc::now() - Duration::days(NOTIFICATIONS_KEPT_DAYS));
    report.notifications_deleted =
        db::notifications::delete_finished_before(pool, notices_before).await?;
    if config.log_retention_days.is_none() && config.log_retention_runs.is_none() {
        return Ok(report);
    }
    // In batches, so a long history is never loaded whole; a batch whose runs all
    // kept their files (an error each) ends the pass instead of repeating forever.
    loop {
        let expired = db::run_stats::expired(pool, older_than, config.log_retention_runs).await?;
        let full_batch = expired.len() as i64 >= db::run_stats::RETENTION_BATCH;
        let mut removable = Vec::with_capacity(expired.len());
        for (id, _) in expired {
            match remove_files(&config.logs_dir, &id) {
                Ok((files, bytes)) => {
                    report.files_deleted += files;
                    report.bytes_freed += bytes;
                    removable.push(id);
                }
                Err(e) => report.errors.push(format!("run {id}: {e}")),
            }
        }
        let deleted = db::run_stats::delete_finished(pool, &removable).await?;
        report.runs_deleted += deleted;
        if !full_batch || deleted == 0 {
            break;
        }
    }
    db::run_stats::repair_totals(pool).await?;
    tracing::info!(
        runs = report.runs_deleted,
        files = report.files_deleted,
        bytes = report.bytes_freed,
        errors = report.errors.len(),
        slots = report.slots_deleted,
        "retention cleanup done"
    );
    Ok(report)
}

fn remove_files(logs_dir: &Path, run_id: &str) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for path in [log_path(logs_dir, run_id), metrics_path(logs_dir, run_id)] {
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        std::fs::remove_file(&path)?;
        files += 1;
        bytes += size;
    }
    Ok((files, bytes))
}

/// Runs the cleanup every day at `CLEANUP_TIME` (UTC) until `shutdown`.
pub async fn run_daily(pool: Pool, config: std::sync::Arc<Config>, shutdown: CancellationToken) {
    if config.log_retention_days.is_none() && config.log_retention_runs.is_none() {
        return;
    }
    loop {
        let wait = until_next(config.cleanup_time);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if let Err(e) = cleanup(&pool, &config).await {
            tracing::error!(error = %e, "retention cleanup failed");
        }
    }
}

pub(crate) fn until_next(at: NaiveTime) -> std::time::Duration {
    let now = Utc::now();
    let today = now.date_naive().and_time(at).and_utc();
    let next = if today > now {
        today
    } else {
        today + Duration::days(1)
    };
    (next - now).to_std().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_cleanup_is_within_a_day() {
        let wait = until_next(NaiveTime::from_hms_opt(2, 0, 0).unwrap());
        assert!(wait <= std::time::Duration::from_secs(86_400));
    }
}
