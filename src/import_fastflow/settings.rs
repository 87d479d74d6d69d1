//! The settings part of `fastflow import-fastflow`: 1.x's scheduler overrides
//! and its notification settings.
//!
//! 1.x kept a scheduler job per schedule of a `pipeline.json` (source
//! `pipeline_json`) and let users switch it off; such a job switched off becomes
//! this installation's override of the same job (same pipeline, run
//! configuration and kind). Jobs made through 1.x's API (source `api`) have no
//! counterpart here — schedules live in `pipeline.json` — so they are listed
//! with their trigger, to be moved there. The e-mail and Teams settings of
//! 1.x's Settings page become those of Settings → Notifications unless that
//! page was saved here already; the SMTP password is a Fernet token and carries
//! over as it is, the Teams URL (plain in 1.x) is encrypted.

use crate::db::import_fastflow_settings::{self as source, SourceJob, SourceNotify};
use crate::db::notify_settings::NotifySettingsRow;
use crate::db::{DbError, Pool};
use crate::scheduler::jobs::{JobKind, job_id};
use crate::secrets::Cipher;

/// What the settings import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SettingsReport {
    pub overrides_imported: usize,
    pub overrides_present: usize,
    /// `pipeline (trigger)` of each 1.x API job left out.
    pub api_jobs: Vec<String>,
    /// `imported`, `already set here`, `none in 1.x`, or why not.
    pub notifications: String,
}

/// Reads what 1.x has (`None` for a table an older 1.x did not have yet).
pub async fn read(from: &Pool) -> (Option<Vec<SourceJob>>, Option<SourceNotify>) {
    let jobs = source::source_jobs(from).await.ok();
    let notify = source::source_notify(from).await.ok().flatten();
    (jobs, notify)
}

pub async fn import(
    pool: &Pool,
    jobs: &[SourceJob],
    notify: Option<&SourceNotify>,
    cipher: Option<&Cipher>,
) -> Result<SettingsReport, DbError> {
    let mut report = SettingsReport::default();
    for job in jobs {
        let kind = match (
            job.source.as_str(),
            job.trigger_type.to_ascii_lowercase().as_str(),
        ) {
            ("daemon_restart", _) => JobKind::Restart,
            ("pipeline_json", "date") => JobKind::Once,
            ("pipeline_json", _) => JobKind::Schedule,
            _ => {
                report.api_jobs.push(format!(
                    "{} ({} {})",
                    job.pipeline_name,
                    job.trigger_type.to_ascii_lowercase(),
                    job.trigger_value
                ));
                continue;
            }
        };
        // A job on follows pipeline.json here as it did there: nothing to store.
        if job.enabled {
            continue;
        }
        let run_config = job.run_config_id.as_deref().filter(|r| !r.is_empty());
        let id = job_id(&job.pipeline_name, run_config, kind);
        if source::insert_override(
            pool,
            &id,
            &job.pipeline_name,
            run_config,
            kind.as_str(),
            false,
        )
        .await?
        {
            report.overrides_imported += 1;
        } else {
            report.overrides_present += 1;
        }
    }
    report.notifications = match notify.filter(|n| has_any(n)) {
        None => "none in 1.x".into(),
        Some(n) => import_notify(pool, n, cipher).await?,
    };
    Ok(report)
}

fn has_any(n: &SourceNotify) -> bool {
    n.email_enabled.is_some()
        || n.smtp_host.is_some()
        || n.smtp_from.is_some()
        || n.email_recipients.is_some()
        || n.teams_enabled.is_some()
        || n.teams_webhook_url.is_some()
}

async fn import_notify(
    pool: &Pool,
    n: &SourceNotify,
    cipher: Option<&Cipher>,
) -> Result<String, DbError> {
    let here = crate::db::notify_settings::get(pool).await?;
    if here.updated_at.is_some() {
        return Ok("already set here, left alone".into());
    }
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let mut notes = Vec::new();
    let recipients = text(&n.email_recipients).and_then(|list| {
        match crate::pipelines::notify_spec::parse_address_list(&list) {
            Ok(l) => Some(l.join(", ")),
            Err(why) => {
                notes.push(format!("email_recipients left out: {why}"));
                None
            }
        }
    });
    let teams_url = match (text(&n.teams_webhook_url), cipher) {
        (Some(url), Some(c)) => match crate::pipelines::notify_spec::check_webhook_url(&url) {
            Ok(()) => Some(c.encrypt(&url)),
            Err(why) => {
                notes.push(format!("teams_webhook_url left out: {why}"));
                None
            }
        },
        (Some(_), None) => {
            notes.push("teams_webhook_url left out: no ENCRYPTION_KEY to store it with".into());
            None
        }
        (None, _) => None,
    };
    let row = NotifySettingsRow {
        email_enabled: n.email_enabled,
        smtp_host: text(&n.smtp_host),
        smtp_port: n.smtp_port.filter(|p| (1..=65535).contains(p)),
        smtp_user: text(&n.smtp_user),
        smtp_password_encrypted: text(&n.smtp_password_encrypted),
        smtp_from: text(&n.smtp_from)
            .filter(|f| crate::pipelines::notify_spec::check_address(f).is_ok()),
        email_recipients: recipients,
        teams_enabled: n.teams_enabled,
        teams_webhook_url_encrypted: teams_url,
        updated_at: Some(chrono::Utc::now()),
        updated_by: Some("import-fastflow".into()),
        ..Default::default()
    };
    crate::db::notify_settings::put(pool, &row).await?;
    let mut said = "imported".to_string();
    if !notes.is_empty() {
        said.push_str(&format!(" ({})", notes.join("; ")));
    }
    Ok(said)
}
