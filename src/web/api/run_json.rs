//! A run as the API shows it, serialized straight from the row: lists write
//! each field once into the response instead of building a `serde_json::Value`
//! map per run. `env_vars` values are masked like Fast-Flow 1.x.

use std::collections::BTreeMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::db::Run;
use crate::db::runs::EnvMap;
use crate::run_status::{ErrorType, RunStatus};
use crate::web::{ApiError, AppError};

/// The fields of every run JSON (lists and single runs).
#[derive(Serialize)]
pub(in crate::web) struct RunJson<'a> {
    id: &'a str,
    pipeline_name: &'a str,
    status: RunStatus,
    started_at: DateTime<Utc>,
    claimed_at: Option<DateTime<Utc>>,
    container_started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_seconds: Option<f64>,
    exit_code: Option<i64>,
    error_type: Option<ErrorType>,
    error_message: Option<&'a str>,
    triggered_by: &'a str,
    image: Option<&'a str>,
    log_file: &'a str,
    log_lines: i64,
    log_bytes: i64,
    log_truncated: bool,
    metrics_file: Option<String>,
    metrics_error: Option<&'a str>,
    /// Fast-Flow 1.x field; the runner image pins uv, so there is none per run.
    uv_version: Option<&'a str>,
    setup_duration: Option<f64>,
    peak_cpu_percent: Option<f64>,
    peak_memory_bytes: Option<i64>,
    soft_limit_warning: Option<&'a str>,
    attempt: i64,
    previous_run_id: Option<&'a str>,
    not_before: Option<DateTime<Utc>>,
    run_config_id: Option<&'a str>,
    parent_run_id: Option<&'a str>,
    git_sha: Option<&'a str>,
    git_branch: Option<&'a str>,
    git_subject: Option<&'a str>,
    /// Detail view only: the run's overrides, values masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    env_vars: Option<BTreeMap<&'a str, &'a str>>,
    /// Detail view only.
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a EnvMap>,
    /// Detail view only: the names of the secret values the run received and
    /// where each came from (`secret`, `parameter`, `encrypted_env`); no values.
    #[serde(skip_serializing_if = "Option::is_none")]
    injected_secrets: Option<&'a EnvMap>,
}

impl<'a> RunJson<'a> {
    /// The list form: no `env_vars` / `parameters`.
    pub(in crate::web) fn list(run: &'a Run) -> Self {
        Self {
            id: &run.id,
            pipeline_name: &run.pipeline_name,
            status: run.status,
            started_at: run.started_at,
            claimed_at: run.claimed_at,
            container_started_at: run.container_started_at,
            finished_at: run.finished_at,
            duration_seconds: run.duration_seconds(),
            exit_code: run.exit_code,
            error_type: run.error_type,
            error_message: run.error_message.as_deref(),
            triggered_by: &run.triggered_by,
            image: run.image.as_deref(),
            log_file: &run.log_file,
            log_lines: run.log_lines,
            log_bytes: run.log_bytes,
            log_truncated: run.log_truncated,
            metrics_file: run
                .log_file
                .strip_suffix(".log")
                .map(|base| format!("{base}_metrics.jsonl")),
            metrics_error: run.metrics_error.as_deref(),
            uv_version: None,
            setup_duration: run.setup_duration,
            peak_cpu_percent: run.peak_cpu_percent,
            peak_memory_bytes: run.peak_memory_bytes,
            soft_limit_warning: run.soft_limit_warning.as_deref(),
            attempt: run.attempt,
            previous_run_id: run.previous_run_id.as_deref(),
            not_before: run.not_before,
            run_config_id: run.run_config_id.as_deref(),
            parent_run_id: run.parent_run_id.as_deref(),
            git_sha: run.git_sha.as_deref(),
            git_branch: run.git_branch.as_deref(),
            git_subject: run.git_subject.as_deref(),
            env_vars: None,
            parameters: None,
            injected_secrets: None,
        }
    }

    /// The detail form, with the overrides; values of `env_vars` are masked
    /// except Fast-Flow's own `_fastflow_*` markers.
    pub(in crate::web) fn detail(run: &'a Run) -> Self {
        let masked = run
            .env_vars
            .0
            .iter()
            .map(|(k, v)| {
                let shown = if k.starts_with("_fastflow_") {
                    v.as_str()
                } else {
                    "***"
                };
                (k.as_str(), shown)
            })
            .collect();
        Self {
            env_vars: Some(masked),
            parameters: Some(&run.parameters.0),
            injected_secrets: Some(&run.injected_secrets.0),
            ..Self::list(run)
        }
    }
}

/// A run as a JSON value, for responses that add fields to it.
pub(in crate::web) fn run_json(run: &Run, detail: bool) -> Value {
    let shown = if detail {
        RunJson::detail(run)
    } else {
        RunJson::list(run)
    };
    // Serializing plain fields and string maps cannot fail.
    serde_json::to_value(shown).unwrap_or(Value::Null)
}

/// Bytes a listed run takes in JSON, about (a list's buffer is sized once from it:
/// growing it by doubling copied the body several times and churned the allocator).
const LISTED_RUN_JSON_BYTES: usize = 900;

/// `body` (holding `runs` listed runs) as an `application/json` response.
pub(in crate::web) fn run_list_response<T: Serialize>(
    body: &T,
    runs: usize,
) -> Result<Response, ApiError> {
    let mut out = Vec::with_capacity(
        runs.saturating_mul(LISTED_RUN_JSON_BYTES)
            .saturating_add(256),
    );
    serde_json::to_writer(&mut out, body)
        .map_err(|e| ApiError(AppError::internal("writing a run list as JSON", e)))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], out).into_response())
}
