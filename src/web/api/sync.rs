//! `/api/sync`, on Fast-Flow's paths: start a sync (answered "already running"
//! while one runs), its status and log.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiQuery, JsonBody, check_limit};
use crate::db;
use crate::gitsync::host_keys::{self, HostKey, HostKeyPolicy};
use crate::gitsync::{AutoSync, AutoSyncChange, GitSync, SyncOutcome};
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sync", post(start_sync))
        .route("/sync/status", get(status))
        .route("/sync/logs", get(logs))
        .route("/sync/settings", get(settings).put(change_settings))
        .route("/sync/host-key/status", get(host_key_status))
        .route("/sync/host-key/reset", post(host_key_reset))
}

/// The configured sync, or 400 saying how to configure one.
pub(in crate::web) fn configured(state: &AppState) -> Result<std::sync::Arc<GitSync>, ApiError> {
    state.gitsync().ok_or_else(|| {
        ApiError(AppError::BadRequest(
            "git sync is not configured: set GIT_REPO_URL or POST /api/sync/repo-config (see docs/deployment.md, \"Deploying from git\")"
                .into(),
        ))
    })
}

/// How long a sync request waits for its sync: within the request timeout.
pub(in crate::web) fn sync_wait(state: &AppState) -> std::time::Duration {
    let timeout = state.config.http.request_timeout;
    timeout
        .saturating_sub(std::time::Duration::from_secs(2))
        .max(std::time::Duration::from_secs(1))
}

async fn start_sync(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sync = configured(&state)?;
    let Some(outcome) = sync.sync_detached("manual", sync_wait(&state)).await else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "success": false,
                "already_running": false,
                "running": true,
                "message": "the sync takes a while and continues in the background; GET /api/sync/status tells when it ends",
            })),
        )
            .into_response());
    };
    match outcome {
        SyncOutcome::Replaced => Err(ApiError(AppError::Conflict(
            "the repository configuration changed meanwhile; sync again".into(),
        ))),
        SyncOutcome::AlreadyRunning => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "success": false,
                "already_running": true,
                "message": "a sync is already running",
                "branch": sync.spec().branch,
                "timestamp": chrono::Utc::now(),
            })),
        )
            .into_response()),
        SyncOutcome::Done(entry) => {
            let code = if entry.success {
                StatusCode::OK
            } else {
                StatusCode::BAD_GATEWAY
            };
            let mut body = serde_json::to_value(&entry).unwrap_or_default();
            body["already_running"] = json!(false);
            body["message"] = json!(match &entry.error {
                Some(e) => e.clone(),
                None if entry.old_commit == entry.new_commit => "already up to date".to_string(),
                None => "synced".to_string(),
            });
            if let Some(e) = &entry.error {
                body["detail"] = json!(e);
            }
            Ok((code, Json(body)).into_response())
        }
    }
}

async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let discovered = state.registry.snapshot().pipelines.len();
    let Some(sync) = state.gitsync() else {
        return Ok(Json(json!({
            "repo_configured": false,
            "is_git_repo": false,
            "running": false,
            "pipelines_discovered": discovered,
            "uv_pre_heat_enabled": state.config.git.uv_pre_heat,
        }))
        .into_response());
    };
    let s = sync.status();
    let mut body = serde_json::to_value(&s).unwrap_or_default();
    // Fast-Flow 1.x names of the same facts.
    body["repo_configured"] = json!(true);
    body["is_git_repo"] = json!(s.commit.is_some());
    body["current_branch"] = json!(s.branch);
    body["remote_url"] = json!(s.repo_url);
    body["last_commit"] = match &s.commit {
        Some(hash) => json!({"hash": hash, "message": s.subject, "date": s.commit_time}),
        None => serde_json::Value::Null,
    };
    body["last_sync"] = json!(s.last_sync_at);
    body["status"] = json!(
        s.last_sync_ok
            .map(|ok| if ok { "success" } else { "failed" })
    );
    body["pipelines_discovered"] = json!(discovered);
    body["uv_pre_heat_enabled"] = json!(state.config.git.uv_pre_heat);
    body["pre_heat"] = json!(sync.preheat_states());
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct LogsQuery {
    limit: Option<i64>,
}

async fn logs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Response, ApiError> {
    let limit = check_limit(q.limit, 100)?;
    let entries = db::gitsync::logs(&state.pool, limit).await?;
    Ok(Json(entries).into_response())
}

/// The SSH host key: how it is checked, what is pinned, and what the host presents now.
async fn host_key_status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sync = configured(&state)?;
    let Some(host) = sync.spec().ssh_host() else {
        return Ok(Json(json!({"ssh": false})).into_response());
    };
    let policy = sync.host_key_policy().await.map_err(sync_error)?;
    let presented = sync.presented_host_key().await;
    let (mode, expected) = match &policy {
        HostKeyPolicy::Known(keys) => ("known_hosts", keys.clone()),
        HostKeyPolicy::Pinned(pin) => ("pinned", pin.iter().cloned().collect()),
    };
    let describe = |k: &HostKey| json!({"key_type": k.key_type, "fingerprint": k.fingerprint()});
    let pinned_at = db::gitsync::pinned_host_key(&state.pool, &host)
        .await?
        .map(|p| p.pinned_at);
    Ok(Json(json!({
        "ssh": true,
        "host": host,
        "mode": mode,
        "expected": expected.iter().map(describe).collect::<Vec<_>>(),
        "pinned_at": pinned_at,
        "presented": presented.as_ref().map(describe),
        "matches": presented.as_ref().map(|p| host_keys::judge(&policy, p).is_ok()),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    confirm_text: String,
}

/// Drops the pinned host key and pins the one the host presents now. The
/// repository URL must be typed as confirmation, as in Fast-Flow.
async fn host_key_reset(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let sync = configured(&state)?;
    let body: ResetBody = body_as(body, r#"{"confirm_text": "<repository URL>"}"#)?;
    if body.confirm_text.trim() != sync.spec().shown_url {
        return Err(ApiError(AppError::BadRequest(
            "confirm_text must be the repository URL exactly as the Sync page shows it".into(),
        )));
    }
    let (old, new) = sync.reset_host_key().await.map_err(sync_error)?;
    tracing::warn!(old = ?old, new = ?new, "the pinned SSH host key of the git remote was reset");
    Ok(Json(json!({
        "success": true,
        "message": match &new {
            Some(_) => "host key reset and pinned anew",
            None => "host key reset; the host could not be reached, it is pinned at the next sync",
        },
        "old_fingerprint": old,
        "new_fingerprint": new,
    }))
    .into_response())
}

fn sync_error(e: crate::gitsync::SyncError) -> ApiError {
    ApiError(AppError::BadRequest(e.to_string()))
}

/// Auto-sync as in force (`auto_sync_enabled`, `auto_sync_interval` in seconds),
/// and which of them the environment fixes.
async fn settings(State(state): State<AppState>) -> Result<Response, ApiError> {
    let sync = configured(&state)?;
    Ok(Json(settings_json(sync.auto_sync_settings(), None)).into_response())
}

fn settings_json(auto: AutoSync, message: Option<&str>) -> serde_json::Value {
    let mut from_env = Vec::new();
    if auto.enabled_from_env {
        from_env.push("auto_sync_enabled");
    }
    if auto.interval_from_env {
        from_env.push("auto_sync_interval");
    }
    let mut body = json!({
        "auto_sync_enabled": auto.auto_sync_enabled,
        "auto_sync_interval": auto.auto_sync_interval,
        "from_environment": from_env,
    });
    if let Some(m) = message {
        body["message"] = json!(m);
    }
    body
}

/// `{"auto_sync_enabled": true, "auto_sync_interval": 300}` (either): stored, in force at once.
async fn change_settings(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let sync = configured(&state)?;
    let change: AutoSyncChange = body_as(
        body,
        r#"{"auto_sync_enabled": bool, "auto_sync_interval": seconds}"#,
    )?;
    let updated = sync.change_auto_sync(change).await.map_err(|e| match e {
        crate::gitsync::SyncError::Config(m) if m.contains("environment") => {
            ApiError(AppError::Conflict(m))
        }
        other => sync_error(other),
    })?;
    Ok(Json(settings_json(updated, Some("saved; in force now"))).into_response())
}

/// A JSON body as `T` (an absent body as `{}`), or 400 showing the expected `shape`.
pub(super) fn body_as<T: serde::de::DeserializeOwned>(
    body: Option<serde_json::Value>,
    shape: &str,
) -> Result<T, ApiError> {
    let body = body.unwrap_or_else(|| json!({}));
    serde_json::from_value(body)
        .map_err(|e| ApiError(AppError::BadRequest(format!("expected {shape}: {e}"))))
}
