//! `POST /api/webhooks/{pipeline_name}/{webhook_key}`, as in Fast-Flow: the key
//! (compared in constant time) is the pipeline's `webhook_key` or one of its
//! `schedules[].webhook_key`, which selects that run configuration. Authenticated
//! by the key alone, rate-limited per client address (`WEBHOOK_RATE_LIMIT`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::JsonBody;
use super::pipelines::parse_trigger_body;
use crate::pipelines::Pipeline;
use crate::runner::TriggerRequest;
use crate::web::{ApiError, AppError, AppState};

/// Largest webhook body: 50 values of 16 KB each, twice (env_vars and parameters), and room.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Client addresses remembered by the rate limiter before idle ones are dropped.
const MAX_TRACKED_CLIENTS: usize = 10_000;

pub type Limiter = DefaultKeyedRateLimiter<IpAddr>;

/// `per_minute` calls per minute per client address, in bursts of up to that many.
pub fn limiter(per_minute: u32) -> Limiter {
    let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/webhooks/{pipeline_name}/{webhook_key}",
        post(webhook).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// The run configuration a key selects: `Some(None)` for the pipeline's own key,
/// `Some(Some(id))` for a schedule's, `None` for no match. Every key is compared,
/// in constant time, so the answer's timing does not say which one came close.
pub fn match_key(pipeline: &Pipeline, given: &str) -> Option<Option<String>> {
    let given = given.as_bytes();
    let mut found: Option<Option<String>> = None;
    if let Some(key) = &pipeline.metadata.webhook_key
        && bool::from(key.as_bytes().ct_eq(given))
    {
        found = Some(None);
    }
    for s in &pipeline.metadata.schedules {
        if let Some(key) = &s.webhook_key
            && bool::from(key.as_bytes().ct_eq(given))
            && found.is_none()
        {
            found = Some(Some(s.id.clone()));
        }
    }
    found
}

fn has_any_key(p: &Pipeline) -> bool {
    p.metadata.webhook_key.is_some() || p.metadata.schedules.iter().any(|s| s.webhook_key.is_some())
}

/// A 429 with `Retry-After` when `peer` made more than `WEBHOOK_RATE_LIMIT` calls
/// this minute (every webhook counts against the same limit).
pub(super) fn rate_limited(state: &AppState, peer: &SocketAddr) -> Option<Response> {
    let limiter = &state.webhook_limiter;
    if limiter.len() > MAX_TRACKED_CLIENTS {
        limiter.retain_recent();
    }
    let Err(not_until) = limiter.check_key(&peer.ip()) else {
        return None;
    };
    {
        use governor::clock::Clock;
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        let mut response = ApiError(AppError::TooManyRequests(format!(
            "more than {} webhook calls per minute from {}; slow down (WEBHOOK_RATE_LIMIT)",
            state.config.webhook_rate_limit,
            peer.ip()
        )))
        .into_response();
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from(wait.as_secs().saturating_add(1)),
        );
        Some(response)
    }
}

async fn webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((name, key)): Path<(String, String)>,
    body: Result<JsonBody, ApiError>,
) -> Result<Response, ApiError> {
    if let Some(refused) = rate_limited(&state, &peer) {
        return Ok(refused);
    }
    let not_found = || ApiError(AppError::NotFound(format!("pipeline not found: {name}")));
    let pipeline = state.registry.get(&name).ok_or_else(not_found)?;
    if !pipeline.metadata.enabled {
        return Err(AppError::NotFound(format!("pipeline is disabled: {name}")).into());
    }
    if !has_any_key(&pipeline) {
        return Err(AppError::NotFound(format!(
            "webhooks are disabled for this pipeline (no webhook_key): {name}"
        ))
        .into());
    }
    let Some(run_config_id) = match_key(&pipeline, &key) else {
        tracing::warn!(pipeline = %name, client = %peer.ip(), "webhook with a wrong key refused");
        return Err(ApiError(AppError::Unauthorized(
            "invalid webhook key".into(),
        )));
    };
    // Body errors are reported only to a caller that knows the key.
    let JsonBody(body) = body?;
    let body = parse_trigger_body(body, false)?;
    let request = TriggerRequest {
        env_vars: body.env_vars,
        parameters: body.parameters,
        run_config_id,
        ..TriggerRequest::new("webhook")
    };
    let run = state.runner.trigger(&pipeline, request).await?;
    Ok(Json(json!({
        "id": run.id,
        "pipeline_name": run.pipeline_name,
        "status": run.status,
        "started_at": run.started_at,
        "log_file": run.log_file,
        "run_config_id": run.run_config_id,
    }))
    .into_response())
}
