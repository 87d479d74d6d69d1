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

/// The jobs, and how many rows could not be read (a value of the wrong type).
pub async fn source_jobs(source: &Pool) -> Result<(Vec<SourceJob>, usize), DbError> {
    let rows = sqlx::query(
        "SELECT pipeline_name, trigger_type, trigger_value, enabled, source, run_config_id \
         FROM scheduled_jobs ORDER BY pipeline_name, created_at",
    )
    .fetch_all(source)
    .await?;
    let mut jobs = Vec::new();
    let mut unreadable = 0;
    for r in &rows {
        let job = (|| -> Result<SourceJob, sqlx::Error> {
            Ok(SourceJob {
                pipeline_name: r.try_get("pipeline_name")?,
                trigger_type: r.try_get("trigger_type")?,
                trigger_value: r.try_get("trigger_value")?,
                enabled: r.try_get("enabled")?,
                source: r.try_get("source")?,
                run_config_id: r.try_get("run_config_id")?,
            })
        })();
        match job {
            Ok(j) => jobs.push(j),
            Err(_) => unreadable += 1,
        }
    }
    Ok((jobs, unreadable))
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
    /// Columns whose value had the wrong type.
    pub unreadable: Vec<&'static str>,
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
    // A value of the wrong type leaves that field out (the importer says which).
    let mut unreadable = Vec::new();
    let mut text = |c: &'static str| -> Option<String> {
        r.try_get::<Option<String>, _>(c).unwrap_or_else(|_| {
            unreadable.push(c);
            None
        })
    };
    let (host, user, password, from, recipients, teams_url) = (
        text("smtp_host"),
        text("smtp_user"),
        text("smtp_password_encrypted"),
        text("smtp_from"),
        text("email_recipients"),
        text("teams_webhook_url"),
    );
    let flag = |c: &'static str, bad: &mut Vec<&'static str>| {
        r.try_get::<Option<bool>, _>(c).unwrap_or_else(|_| {
            bad.push(c);
            None
        })
    };
    let email_enabled = flag("email_enabled", &mut unreadable);
    let teams_enabled = flag("teams_enabled", &mut unreadable);
    let smtp_port = r
        .try_get::<Option<i64>, _>("smtp_port")
        .unwrap_or_else(|_| {
            unreadable.push("smtp_port");
            None
        });
    Ok(Some(SourceNotify {
        email_enabled,
        smtp_host: host,
        smtp_port,
        smtp_user: user,
        smtp_password_encrypted: password,
        smtp_from: from,
        email_recipients: recipients,
        teams_enabled,
        teams_webhook_url: teams_url,
        unreadable,
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
