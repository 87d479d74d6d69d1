//! The JSON API under `/api`, with Fast-Flow 1.x paths and field names: one
//! router per area, plus what they share (run JSON, lookups, strict extractors
//! whose rejections are `{"detail": ...}` like every other API error).

mod logs;
pub(super) mod pipelines;
mod runs;
mod scheduler;
mod system;
pub mod webhooks;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiError, AppError, AppState};
use crate::db::{self, Run};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(pipelines::router())
        .merge(runs::router())
        .merge(logs::router())
        .merge(scheduler::router())
        .merge(webhooks::router())
        .merge(system::router())
}

/// A run as the API shows it; `env_vars` values are masked like Fast-Flow 1.x.
pub(super) fn run_json(run: &Run, detail: bool) -> Value {
    let mut v = json!({
        "id": run.id,
        "pipeline_name": run.pipeline_name,
        "status": run.status,
        "started_at": run.started_at,
        "claimed_at": run.claimed_at,
        "container_started_at": run.container_started_at,
        "finished_at": run.finished_at,
        "duration_seconds": run.duration_seconds(),
        "exit_code": run.exit_code,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "triggered_by": run.triggered_by,
        "image": run.image,
        "log_file": run.log_file,
        "log_lines": run.log_lines,
        "log_bytes": run.log_bytes,
        "log_truncated": run.log_truncated,
        "metrics_file": run.log_file.strip_suffix(".log").map(|base| format!("{base}_metrics.jsonl")),
        "metrics_error": run.metrics_error,
        "uv_version": Value::Null,
        "setup_duration": run.setup_duration,
        "peak_cpu_percent": run.peak_cpu_percent,
        "peak_memory_bytes": run.peak_memory_bytes,
        "soft_limit_warning": run.soft_limit_warning,
        "attempt": run.attempt,
        "previous_run_id": run.previous_run_id,
        "not_before": run.not_before,
        "run_config_id": run.run_config_id,
        "parent_run_id": run.parent_run_id,
    });
    if detail {
        let masked: BTreeMap<&str, &str> = run
            .env_vars
            .0
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if k.starts_with("_fastflow_") {
                        v.as_str()
                    } else {
                        "***"
                    },
                )
            })
            .collect();
        v["env_vars"] = json!(masked);
        v["parameters"] = json!(run.parameters.0);
    }
    v
}

/// The run `id`, or 404.
pub(super) async fn load_run(state: &AppState, id: &str) -> Result<Run, ApiError> {
    db::runs::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError(AppError::NotFound(format!("run `{id}` not found"))))
}

/// `limit` within 1..=1000.
pub(super) fn check_limit(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match limit.unwrap_or(default) {
        l @ 1..=1000 => Ok(l),
        l => Err(ApiError(AppError::BadRequest(format!(
            "limit must be between 1 and 1000, got {l}"
        )))),
    }
}

/// `Query<T>` whose rejection is a JSON 400 naming the parameter.
pub(super) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError(AppError::BadRequest(e.body_text())))
    }
}

/// A request body that is empty, or JSON sent as `application/json`. Anything
/// else is refused with 415, so a plain HTML form on another site cannot post here.
pub(super) struct JsonBody(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError(AppError::PayloadTooLarge(format!(
                        "request body too large: {}",
                        e.body_text()
                    )))
                } else {
                    ApiError(AppError::BadRequest(e.body_text()))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if is_json != Some(true) {
            return Err(ApiError(AppError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            )));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Self(Some(v)))
            .map_err(|e| {
                ApiError(AppError::BadRequest(format!(
                    "request body is not valid JSON: {e}"
                )))
            })
    }
}
