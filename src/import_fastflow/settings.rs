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
use crate::pipelines::fields::shown;
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
    /// What was left out, and why.
    pub notes: Vec<String>,
}

/// What 1.x has: its jobs (and how many rows could not be read), its
/// notification settings (`None` for a table an older 1.x did not have).
pub async fn read(from: &Pool) -> (Option<(Vec<SourceJob>, usize)>, Option<SourceNotify>) {
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
        let run_config_ok = job
            .run_config_id
            .as_deref()
            .is_none_or(|r| r.is_empty() || crate::pipelines::is_valid_pipeline_name(r));
        if !crate::pipelines::is_valid_pipeline_name(&job.pipeline_name) || !run_config_ok {
            report.notes.push(format!(
                "scheduler job of `{}` left out: not a pipeline name or run configuration id here",
                shown(&job.pipeline_name)
            ));
            continue;
        }
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
                    shown(&job.trigger_type.to_ascii_lowercase()),
                    shown(&job.trigger_value)
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
    let mut notes: Vec<String> = n
        .unreadable
        .iter()
        .map(|c| format!("{c} left out: not a value of its type"))
        .collect();
    let mut row = NotifySettingsRow::default();
    // Each value passes the same checks as the Settings page; a refused one is named.
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let fields = [
        ("smtp_host", text(&n.smtp_host)),
        ("smtp_user", text(&n.smtp_user)),
        ("smtp_port", n.smtp_port.map(|p| p.to_string())),
        ("smtp_from", text(&n.smtp_from)),
        ("email_recipients", text(&n.email_recipients)),
        ("email_enabled", n.email_enabled.map(|b| b.to_string())),
        ("teams_enabled", n.teams_enabled.map(|b| b.to_string())),
        ("teams_webhook_url", text(&n.teams_webhook_url)),
    ];
    let Some(cipher) = cipher else {
        return Ok(
            "left out: no ENCRYPTION_KEY here (set the one the Python Fast-Flow used)".into(),
        );
    };
    for (field, value) in fields {
        let Some(value) = value else { continue };
        if let Err(why) =
            crate::notify::settings::apply_change(&mut row, field, Some(&value), cipher)
        {
            notes.push(format!("{} left out", shown(&why)));
        }
    }
    // The password is 1.x's Fernet token: kept as it is when this key opens it.
    if let Some(token) = text(&n.smtp_password_encrypted) {
        if cipher.decrypt(&token).is_ok() {
            row.smtp_password_encrypted = Some(token);
        } else {
            notes.push("smtp_password left out: it does not open with ENCRYPTION_KEY(S) — set the key the Python Fast-Flow used, or type it on Settings → Notifications".into());
        }
    }
    row.updated_at = Some(chrono::Utc::now());
    row.updated_by = Some("import-fastflow".into());
    crate::db::notify_settings::put(pool, &row).await?;
    let mut said = "imported".to_string();
    if !notes.is_empty() {
        said.push_str(&format!(" ({})", notes.join("; ")));
    }
    Ok(said)
}
