//! `/api/settings/notifications`, the test sends (`/api/settings/test-email`
//! and `test-teams` as in Fast-Flow 1.x, plus `test-webhook`) and
//! `/api/notifications`, the log of sent notifications with their results.

use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiQuery, JsonBody, check_limit};
use crate::db;
use crate::notify::settings::{Effective, FIELDS};
use crate::pipelines::notify_spec::shown_url;
use crate::web::identity::Identity;
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/settings/notifications",
            get(settings).put(change_settings),
        )
        .route("/settings/test-email", post(|s| test(s, "email")))
        .route("/settings/test-teams", post(|s| test(s, "teams")))
        .route("/settings/test-webhook", post(|s| test(s, "webhook")))
        .route("/notifications", get(deliveries))
}

/// The settings in force, each with where it comes from; credentials only as
/// "configured" (a webhook as `scheme://host/…`).
pub fn settings_json(e: &Effective) -> Value {
    let source: serde_json::Map<String, Value> = FIELDS
        .iter()
        .map(|f| {
            let from = if e.is_overridden(f) {
                "settings"
            } else {
                "environment"
            };
            (f.to_string(), json!(from))
        })
        .collect();
    json!({
        "email_enabled": e.email_enabled,
        "smtp_host": e.smtp_host,
        "smtp_port": e.smtp_port,
        "smtp_user": e.smtp_user,
        "smtp_password_configured": e.smtp_password.is_some(),
        "smtp_from": e.smtp_from,
        "smtp_tls": e.smtp_tls.as_str(),
        "email_recipients": e.email_recipients,
        "teams_enabled": e.teams_enabled,
        "teams_webhook_url": e.teams_webhook_url.as_ref().map(|u| shown_url(u.expose())),
        "webhook_url": e.webhook_url.as_ref().map(|u| shown_url(u.expose())),
        "webhook_format": e.webhook_format.map(|f| f.as_str()),
        "notify_on": e.notify_on.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        "email_ready": e.email_unready().is_none(),
        "email_problem": e.email_unready(),
        "problems": e.problems,
        "source": source,
    })
}

async fn settings(State(state): State<AppState>) -> Result<Response, ApiError> {
    let e = state.runner.deps().notifier.settings().await?;
    Ok(Json(settings_json(&e)).into_response())
}

/// A JSON object of fields to change (Fast-Flow 1.x's names); `null` gives a
/// field back to the environment. `email_recipients` and `notify_on` may be
/// lists or comma-separated text.
async fn change_settings(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Some(Value::Object(map)) = body else {
        return Err(ApiError(AppError::BadRequest(format!(
            "expected a JSON object with any of: {}",
            FIELDS.join(", ")
        ))));
    };
    let mut changes = Vec::new();
    for (field, value) in map {
        let value = match value {
            Value::Null => None,
            Value::String(s) => Some(s),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(items) if matches!(field.as_str(), "email_recipients" | "notify_on") => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        Value::String(s) => parts.push(s),
                        other => {
                            return Err(ApiError(AppError::BadRequest(format!(
                                "{field}: expected a list of strings, got {other}"
                            ))));
                        }
                    }
                }
                // An empty list tells nothing (`,`), as the page's unticked boxes do.
                Some(if parts.is_empty() && field == "notify_on" {
                    ",".to_string()
                } else {
                    parts.join(",")
                })
            }
            _ => {
                return Err(ApiError(AppError::BadRequest(format!(
                    "{field}: expected a string, number, true/false or null"
                ))));
            }
        };
        changes.push((field, value));
    }
    let notifier = &state.runner.deps().notifier;
    crate::notify::settings::change(&state.pool, &state.cipher, &changes, &who.name)
        .await?
        .map_err(|why| ApiError(AppError::BadRequest(why)))?;
    let e = notifier.settings().await?;
    let mut out = settings_json(&e);
    out["message"] = json!("saved; in force for the next notification");
    Ok(Json(out).into_response())
}

/// Sends a test message now: `{"status": "success", "message": …}`, or 400
/// when the channel is not set up, 502 when the server or webhook refused it,
/// 429 past `TEST_SENDS_PER_MINUTE`.
async fn test(State(state): State<AppState>, channel: &'static str) -> Response {
    let notifier = &state.runner.deps().notifier;
    match notifier.send_test(channel).await {
        Ok(message) => Json(json!({"status": "success", "message": message})).into_response(),
        Err(failure) => {
            use crate::notify::TestFailureKind;
            let code = match failure.kind {
                TestFailureKind::Refused => axum::http::StatusCode::BAD_GATEWAY,
                TestFailureKind::TooMany => axum::http::StatusCode::TOO_MANY_REQUESTS,
                TestFailureKind::NotSetUp => axum::http::StatusCode::BAD_REQUEST,
            };
            (code, Json(json!({"detail": failure.message}))).into_response()
        }
    }
}

#[derive(Deserialize)]
struct DeliveryQuery {
    limit: Option<i64>,
    before: Option<i64>,
    run_id: Option<String>,
}

/// Newest first: `{"notifications": [...], "next_before": id | null}`.
async fn deliveries(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<Response, ApiError> {
    let limit = check_limit(q.limit, 50)?;
    let rows = match &q.run_id {
        Some(run) => db::notifications::for_run(&state.pool, run).await?,
        None => db::notifications::list(&state.pool, q.before, limit).await?,
    };
    let next = (q.run_id.is_none() && rows.len() as i64 == limit)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    Ok(Json(json!({"notifications": rows, "next_before": next})).into_response())
}
