//! The statements of `fastflow import-fastflow` for settings: reading a 1.x
//! database's `scheduled_jobs` and the notification columns of its
//! `orchestrator_settings`, and storing a scheduler override here.

use sqlx::Row;

use super::{DbError, Pool};

/// One row of 1.x's `scheduled_jobs`.
#[derive(Debug, Clone)]
pub struct SourceJob {
    pub pipeline_name: String,
    /// `CRON`, `INTERVAL` or `DATE` (1.x's enum, any case).
    pub trigger_type: String,
    pub trigger_value: String,
    pub enabled: bool,
    /// `pipeline_json`, `api` or `daemon_restart`.
    pub source: String,
    pub run_config_id: Option<String>,
}

pub async fn source_jobs(source: &Pool) -> Result<Vec<SourceJob>, DbError> {
    let rows = sqlx::query(
        "SELECT pipeline_name, trigger_type, trigger_value, enabled, source, run_config_id \
         FROM scheduled_jobs ORDER BY pipeline_name, created_at",
    )
    .fetch_all(source)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SourceJob {
                pipeline_name: r.try_get("pipeline_name")?,
                trigger_type: r.try_get("trigger_type")?,
                trigger_value: r.try_get("trigger_value")?,
                enabled: r.try_get("enabled")?,
                source: r.try_get("source")?,
                run_config_id: r.try_get("run_config_id")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The notification settings 1.x stored (its Settings page).
#[derive(Debug, Clone, Default)]
pub struct SourceNotify {
    pub email_enabled: Option<bool>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<i64>,
    pub smtp_user: Option<String>,
    /// A Fernet token made with 1.x's `ENCRYPTION_KEY`.
    pub smtp_password_encrypted: Option<String>,
    pub smtp_from: Option<String>,
    pub email_recipients: Option<String>,
    pub teams_enabled: Option<bool>,
    /// Plain text in 1.x.
    pub teams_webhook_url: Option<String>,
}

/// `None` when 1.x never saved its settings page.
pub async fn source_notify(source: &Pool) -> Result<Option<SourceNotify>, DbError> {
    let row = sqlx::query(
        "SELECT email_enabled, smtp_host, smtp_port, smtp_user, smtp_password_encrypted, \
         smtp_from, email_recipients, teams_enabled, teams_webhook_url \
         FROM orchestrator_settings ORDER BY id LIMIT 1",
    )
    .fetch_optional(source)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(SourceNotify {
        email_enabled: r.try_get("email_enabled")?,
        smtp_host: r.try_get("smtp_host")?,
        smtp_port: r.try_get("smtp_port")?,
        smtp_user: r.try_get("smtp_user")?,
        smtp_password_encrypted: r.try_get("smtp_password_encrypted")?,
        smtp_from: r.try_get("smtp_from")?,
        email_recipients: r.try_get("email_recipients")?,
        teams_enabled: r.try_get("teams_enabled")?,
        teams_webhook_url: r.try_get("teams_webhook_url")?,
    }))
}

/// Stores a scheduler override for job `id` unless one is set here already;
/// the job row is made when it does not exist yet (its trigger is filled in
/// when the scheduler first sees the pipeline). Whether it was stored.
pub async fn insert_override(
    pool: &Pool,
    id: &str,
    pipeline: &str,
    run_config_id: Option<&str>,
    kind: &str,
    enabled: bool,
) -> Result<bool, DbError> {
    let now = chrono::Utc::now();
    let done = sqlx::query(
        "INSERT INTO schedule_jobs (id, pipeline_name, run_config_id, kind, fingerprint, defined_at, \
             enabled_override, override_at) VALUES (?, ?, ?, ?, '', ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET enabled_override = excluded.enabled_override, \
             override_at = excluded.override_at WHERE schedule_jobs.enabled_override IS NULL",
    )
    .bind(id)
    .bind(pipeline)
    .bind(run_config_id)
    .bind(kind)
    .bind(now)
    .bind(enabled)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
