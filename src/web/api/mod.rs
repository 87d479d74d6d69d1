//! The JSON API under `/api`, with Fast-Flow 1.x paths and field names: one
//! router per area, plus what they share (run JSON, lookups, strict extractors
//! whose rejections are `{"detail": ...}` like every other API error).

mod audit;
mod auth;
pub(crate) use auth::unlink_provider;
mod logs;
mod notifications;
pub(super) mod pipelines;
mod run_json;
mod runs;
mod scheduler;
mod secrets;
mod sync;
mod sync_repo_config;
mod sync_webhook;
mod system;
mod users;
pub mod webhooks;

use run_json::{RunJson, run_json, run_list_response};
pub(super) use sync::sync_wait;
pub(super) use sync_repo_config::{first_sync_message, store_error};

use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{ApiError, AppError, AppState};
use crate::db::{self, Run};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(audit::router())
        .merge(auth::router())
        .merge(pipelines::router())
        .merge(runs::router())
        .merge(logs::router())
        .merge(notifications::router())
        .merge(scheduler::router())
        .merge(secrets::router())
        .merge(sync::router())
        .merge(sync_repo_config::router())
        .merge(sync_webhook::router())
        .merge(webhooks::router())
        .merge(system::router())
        .merge(users::router())
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
