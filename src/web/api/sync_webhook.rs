//! `POST /api/sync/webhook`: a push webhook from GitHub (`X-Hub-Signature-256`)
//! or GitLab (`X-Gitlab-Token`), checked against `GIT_WEBHOOK_SECRET`. A push to
//! the configured branch asks for a sync and is answered at once (202); GitHub's
//! `ping` is answered; other events and branches are acknowledged and ignored.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::sync::configured;
use super::webhooks::rate_limited;
use crate::gitsync::Trigger;
use crate::gitsync::webhook::{github_signature_ok, gitlab_token_ok, pushed_ref};
use crate::web::{ApiError, AppError, AppState};

/// Largest push payload accepted (GitHub sends at most 25 MB; the ref is near the top
/// but the signature covers the whole body).
pub const MAX_BODY_BYTES: usize = 26 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/sync/webhook",
        post(push_webhook).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn push_webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(refused) = rate_limited(&state, &peer) {
        return Ok(refused);
    }
    let sync = configured(&state)?;
    let Some(secret) = sync.webhook_secret() else {
        return Err(ApiError(AppError::Forbidden(
            "the push webhook is off: set GIT_WEBHOOK_SECRET or store a webhook secret on the Sync page".into(),
        )));
    };
    let secret = secret.expose();
    let verified = match (
        header(&headers, "x-hub-signature-256"),
        header(&headers, "x-gitlab-token"),
    ) {
        (Some(signature), _) => github_signature_ok(secret, &body, signature),
        (None, Some(token)) => gitlab_token_ok(secret, token),
        (None, None) => false,
    };
    if !verified {
        tracing::warn!(client = %peer.ip(), "push webhook with a missing or wrong signature refused");
        return Err(ApiError(AppError::Unauthorized(
            "missing or invalid webhook signature (X-Hub-Signature-256 or X-Gitlab-Token)".into(),
        )));
    }
    let event = header(&headers, "x-github-event")
        .or_else(|| header(&headers, "x-gitlab-event"))
        .unwrap_or("push");
    if event == "ping" {
        return Ok(Json(json!({"ok": true, "message": "pong"})).into_response());
    }
    if event != "push" && event != "Push Hook" {
        return Ok(
            Json(json!({"ok": true, "ignored": format!("event `{event}`")})).into_response(),
        );
    }
    let wanted = format!("refs/heads/{}", sync.spec().branch);
    match pushed_ref(&body) {
        Some(r) if r == wanted => {
            sync.request(Trigger::Webhook);
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({"ok": true, "syncing": true, "ref": r})),
            )
                .into_response())
        }
        Some(r) => Ok(Json(json!({
            "ok": true,
            "ignored": format!("push to `{r}`, not `{wanted}`"),
        }))
        .into_response()),
        None => Err(ApiError(AppError::BadRequest(
            "a push event needs a JSON body with `ref`".into(),
        ))),
    }
}
