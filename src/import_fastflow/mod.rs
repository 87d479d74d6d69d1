//! `fastflow import-fastflow PATH/fastflow.db`: brings a Python Fast-Flow 1.x
//! installation's run history and its secrets and parameters into this one.
//!
//! Runs keep their ids (1.x's 32 hex digits become the dashed form), statuses,
//! exit codes, times, triggers, run configurations and commits. 1.x stored the
//! plain values of secrets in each run's `env_vars`; they are masked on import
//! (`***`, as 1.x's API showed them), and its own `_fastflow_*` markers become
//! the error type, error message and retry chain. A run 1.x left unfinished
//! (PENDING, RUNNING) and its WARNING state become INTERRUPTED with a note.
//! Secrets are Fernet tokens made with `ENCRYPTION_KEY` and are copied as they
//! are; with the same key here they open, and the import says how many do not.
//! Users come with their role, status, block and provider ids (GitHub, Google,
//! Microsoft, custom OIDC), so they sign in here as they did there; 1.x had no
//! local passwords. Rows that exist already (same run id, secret key, user id,
//! username or provider subject) are left alone, so the import can be run again.
//! Scheduler overrides and the notification settings come too (`settings.rs`).
//! Logs stay where 1.x wrote them.

mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::Config;
use crate::db::import_fastflow::{self as source, ImportedRun, SourceRun, parse_time};

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub runs_imported: usize,
    pub runs_present: usize,
    pub runs_unfinished: usize,
    pub secrets_imported: usize,
    pub secrets_present: usize,
    pub secrets_unreadable: Vec<String>,
    pub users_imported: usize,
    /// Users left out: their id, username or a provider subject is taken here.
    pub users_skipped: Vec<String>,
    pub revision: Option<String>,
    pub settings: settings::SettingsReport,
}

pub fn main(path: PathBuf) -> ExitCode {
    crate::command_runtime::run_with_config(true, |config| async move {
        let r = import(&config, &path).await?;
        let mut report = format!(
            "imported from {} (Alembic revision {}): {} runs ({} already here, {} unfinished there and now INTERRUPTED), {} secrets and parameters ({} already here), {} users ({} left out)",
            path.display(),
            r.revision.as_deref().unwrap_or("none"),
            r.runs_imported,
            r.runs_present,
            r.runs_unfinished,
            r.secrets_imported,
            r.secrets_present,
            r.users_imported,
            r.users_skipped.len()
        );
        if !r.users_skipped.is_empty() {
            report.push_str(&format!(
                "\nnote: users left out (their id, username or provider account is here already): {}",
                r.users_skipped.join(", ")
            ));
        }
        let s = &r.settings;
        report.push_str(&format!(
            "\nscheduler: {} jobs switched off in 1.x are off here too ({} already had an override); notification settings: {}",
            s.overrides_imported, s.overrides_present, s.notifications
        ));
        for note in &s.notes {
            report.push_str(&format!("\nnote: {note}"));
        }
        if !s.api_jobs.is_empty() {
            report.push_str(&format!(
                "\nnote: jobs made through 1.x's API are not imported (schedules live in pipeline.json here; add schedule_cron or schedule_interval_seconds): {}",
                s.api_jobs.join(", ")
            ));
        }
        if !r.secrets_unreadable.is_empty() {
            report.push_str(&format!(
                "\nwarning: these secrets do not open with ENCRYPTION_KEY(S): {} — set the key the Python Fast-Flow used",
                r.secrets_unreadable.join(", ")
            ));
        }
        Ok(report)
    })
}

pub async fn import(config: &Config, path: &Path) -> Result<ImportReport, String> {
    if !path.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let url = format!("sqlite://{}?mode=ro", path.display());
    let from = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let read = |e: crate::db::DbError| {
        format!(
            "{} is not a Fast-Flow 1.x database I can read: {e}",
            path.display()
        )
    };
    let mut report = ImportReport {
        revision: source::source_revision(&from).await.map_err(read)?,
        ..Default::default()
    };
    let runs = source::source_runs(&from).await.map_err(read)?;
    let secrets = source::source_secrets(&from).await.map_err(read)?;
    let users = source::source_users(&from).await.map_err(read)?;
    let (jobs, notify) = settings::read(&from).await;
    from.close().await;

    let pool = crate::db::connect(&config.database_url)
        .await
        .map_err(|e| format!("opening this installation's database: {e}"))?;
    for run in &runs {
        let imported = imported_run(run, config)?;
        if imported.unfinished {
            report.runs_unfinished += 1;
        }
        let stored = source::insert_run(&pool, &imported.as_row())
            .await
            .map_err(|e| format!("storing run {}: {e}", imported.id))?;
        if stored {
            report.runs_imported += 1;
        } else {
            report.runs_present += 1;
        }
    }
    let cipher = cipher_of(config);
    for (key, value, is_parameter, created, updated) in &secrets {
        let created_at = parse_time(created).unwrap_or_else(chrono::Utc::now);
        let updated_at = parse_time(updated).unwrap_or(created_at);
        if !is_parameter && cipher.as_ref().is_none_or(|c| c.decrypt(value).is_err()) {
            report.secrets_unreadable.push(key.clone());
        }
        let stored =
            source::insert_secret(&pool, key, value, *is_parameter, created_at, updated_at)
                .await
                .map_err(|e| format!("storing secret {key}: {e}"))?;
        if stored {
            report.secrets_imported += 1;
        } else {
            report.secrets_present += 1;
        }
    }
    for user in &users {
        let Some(id) = dashed(&user.id) else {
            report.users_skipped.push(user.username.clone());
            continue;
        };
        let role = match user.role.as_str() {
            r @ ("READONLY" | "WRITE" | "ADMIN") => r,
            _ => "READONLY",
        };
        let status = user
            .status
            .as_deref()
            .filter(|s| ["active", "pending", "rejected"].contains(s))
            .unwrap_or("active");
        let row = source::ImportedUser {
            id: &id,
            username: &user.username,
            email: user.email.as_deref(),
            role,
            status,
            blocked: user.blocked,
            created_at: parse_time(&user.created_at).unwrap_or_else(chrono::Utc::now),
            last_login_at: user.last_login_at.as_deref().and_then(parse_time),
            identities: &user.identities,
        };
        if source::insert_user(&pool, &row)
            .await
            .map_err(|e| format!("storing user {}: {e}", user.username))?
        {
            report.users_imported += 1;
        } else {
            report.users_skipped.push(user.username.clone());
        }
    }
    let (jobs, unreadable_jobs) = jobs.unwrap_or_default();
    report.settings = settings::import(&pool, &jobs, notify.as_ref(), cipher.as_ref())
        .await
        .map_err(|e| format!("storing the scheduler and notification settings: {e}"))?;
    if unreadable_jobs > 0 {
        report.settings.notes.push(format!(
            "{unreadable_jobs} scheduler jobs left out: a value of the wrong type in the 1.x row"
        ));
    }
    pool.close().await;
    Ok(report)
}

/// The server's keys, never a new one (a key made here would open nothing).
fn cipher_of(config: &Config) -> Option<crate::secrets::Cipher> {
    let file = crate::secrets::key_file(&config.data_dir);
    if config.encryption_keys.is_empty() && config.encryption_key.is_none() && !file.exists() {
        return None;
    }
    let (keys, _) = crate::secrets::resolve_encryption_keys(
        &config.encryption_keys,
        config.encryption_key.as_ref(),
        &config.data_dir,
        config.is_production(),
    )
    .ok()?;
    crate::secrets::Cipher::with_keys(&keys)
}

/// A source run in this installation's terms.
struct Converted {
    id: String,
    pipeline_name: String,
    status: &'static str,
    triggered_by: String,
    env_vars: String,
    parameters: String,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: chrono::DateTime<chrono::Utc>,
    exit_code: Option<i64>,
    error_type: Option<String>,
    error_message: Option<String>,
    log_file: String,
    attempt: i64,
    previous_run_id: Option<String>,
    setup_duration: Option<f64>,
    run_config_id: Option<String>,
    git: (Option<String>, Option<String>, Option<String>),
    unfinished: bool,
}

impl Converted {
    fn as_row(&self) -> ImportedRun<'_> {
        ImportedRun {
            id: &self.id,
            pipeline_name: &self.pipeline_name,
            status: self.status,
            triggered_by: &self.triggered_by,
            env_vars: &self.env_vars,
            parameters: &self.parameters,
            started_at: self.started_at,
            finished_at: self.finished_at,
            exit_code: self.exit_code,
            error_type: self.error_type.as_deref(),
            error_message: self.error_message.as_deref(),
            log_file: &self.log_file,
            attempt: self.attempt,
            previous_run_id: self.previous_run_id.as_deref(),
            setup_duration: self.setup_duration,
            run_config_id: self.run_config_id.as_deref(),
            git_sha: self.git.0.as_deref(),
            git_branch: self.git.1.as_deref(),
            git_subject: self.git.2.as_deref(),
        }
    }
}

/// 1.x's 32 hex digits (or an already dashed id) in our dashed form.
fn dashed(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

fn imported_run(run: &SourceRun, config: &Config) -> Result<Converted, String> {
    let id = dashed(&run.id).ok_or_else(|| format!("run id `{}` is not a UUID", run.id))?;
    let started_at = parse_time(&run.started_at)
        .ok_or_else(|| format!("run {id}: started_at `{}` is not a time", run.started_at))?;
    let env: BTreeMap<String, serde_json::Value> = run
        .env_vars
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let marker = |k: &str| {
        env.get(k).and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| Some(v.to_string()))
        })
    };
    let (status, unfinished) = match run.status.as_str() {
        "SUCCESS" => ("SUCCESS", false),
        "FAILED" => ("FAILED", false),
        "INTERRUPTED" => ("INTERRUPTED", false),
        "WARNING" => ("INTERRUPTED", false),
        _ => ("INTERRUPTED", true),
    };
    let mut error_message = marker("_fastflow_error_message");
    if run.status == "WARNING" {
        error_message.get_or_insert_with(|| {
            "Fast-Flow 1.x ended this run with WARNING (stopped without a container handle)".into()
        });
    }
    if unfinished {
        error_message = Some(format!(
            "Fast-Flow 1.x left this run {} when it was imported",
            run.status
        ));
    }
    const KNOWN: [&str; 6] = [
        "pipeline_error",
        "infrastructure_error",
        "dependency_error",
        "timeout",
        "oom",
        "cancelled",
    ];
    let error_type = match marker("_fastflow_error_type") {
        Some(t) if KNOWN.contains(&t.as_str()) => Some(t),
        _ => match run.status.as_str() {
            "SUCCESS" => None,
            "FAILED" => Some("pipeline_error".to_string()),
            "INTERRUPTED" => Some("cancelled".to_string()),
            _ => Some("infrastructure_error".to_string()),
        },
    };
    // Secret values were stored in plain text by 1.x: masked, markers kept out.
    let masked: BTreeMap<&str, &str> = env
        .keys()
        .filter(|k| !k.starts_with("_fastflow_"))
        .map(|k| (k.as_str(), crate::secrets::MASK))
        .collect();
    let attempt = marker("_fastflow_retry_count")
        .and_then(|c| c.trim().parse::<i64>().ok())
        .map_or(1, |c| c.clamp(0, 1000) + 1);
    Ok(Converted {
        log_file: crate::runner::logs::log_path(&config.logs_dir, &id)
            .display()
            .to_string(),
        finished_at: run
            .finished_at
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(started_at),
        previous_run_id: marker("_fastflow_previous_run_id").and_then(|p| dashed(&p)),
        env_vars: serde_json::to_string(&masked).unwrap_or_else(|_| "{}".into()),
        parameters: run
            .parameters
            .as_deref()
            .filter(|p| serde_json::from_str::<BTreeMap<String, String>>(p).is_ok())
            .unwrap_or("{}")
            .to_string(),
        pipeline_name: run.pipeline_name.clone(),
        triggered_by: run.triggered_by.clone(),
        exit_code: run.exit_code,
        setup_duration: run.setup_duration,
        run_config_id: run.run_config_id.clone(),
        git: (
            run.git_sha.clone(),
            run.git_branch.clone(),
            run.git_commit_message.clone(),
        ),
        id,
        status,
        started_at,
        error_type,
        error_message,
        attempt,
        unfinished,
    })
}
