//! `/api/sync/repo-config`, on Fast-Flow's paths: the repository stored from
//! the Sync page (credentials encrypted, shown only as set), put in force at
//! once; a generated deploy key; the connection test, also of unsaved settings.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::JsonBody;
use super::sync::{body_as, sync_wait};
use crate::gitsync::SyncOutcome;
use crate::gitsync::deployment::StoreError;
use crate::gitsync::repo_config::{ChangeProblem, RepoConfigChange};
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sync/repo-config", get(show).post(save).delete(remove))
        .route(
            "/sync/repo-config/generate-deploy-key",
            post(generate_deploy_key),
        )
        .route("/sync/repo-config/test", post(test_connection))
}

const CHANGE_SHAPE: &str = r#"{"repo_url": "https://… | git@host:owner/repo.git", "branch": "main", "pipelines_subdir": "", "token" | "deploy_key" | "github_app_id" + "github_app_installation_id" + "github_app_private_key": "…", "webhook_secret": "…"}"#;

pub(in crate::web) fn store_error(e: StoreError) -> ApiError {
    ApiError(match e {
        StoreError::Refused(ChangeProblem::SetByEnvironment(m)) => AppError::Conflict(m),
        StoreError::Refused(ChangeProblem::Invalid(m)) => AppError::BadRequest(m),
        StoreError::Unusable(e) => AppError::BadRequest(e.to_string()),
        StoreError::Database(m) => AppError::internal("storing the repository configuration", m),
    })
}

async fn show(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.deployment.view().await).into_response())
}

/// What the first sync of a new configuration did, in words.
pub(in crate::web) fn first_sync_message(
    outcome: Result<Option<SyncOutcome>, ()>,
) -> (bool, String) {
    match outcome {
        Err(()) => (
            true,
            "the first sync takes a while and continues in the background".into(),
        ),
        Ok(None) => (true, "in force now".into()),
        Ok(Some(SyncOutcome::Done(e))) if e.success => (
            true,
            format!(
                "synced {}",
                e.new_commit
                    .as_deref()
                    .unwrap_or_default()
                    .get(..10)
                    .unwrap_or_default()
            ),
        ),
        Ok(Some(SyncOutcome::Done(e))) => (
            false,
            format!(
                "the first sync failed, the previous pipelines keep serving: {}",
                e.error.unwrap_or_default()
            ),
        ),
        Ok(Some(SyncOutcome::AlreadyRunning | SyncOutcome::Replaced)) => {
            (true, "a sync is already running".into())
        }
    }
}

/// Stores the repository settings and puts them in force (a first sync runs).
async fn save(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let change: RepoConfigChange = body_as(body, CHANGE_SHAPE)?;
    state.deployment.store(&change).await.map_err(store_error)?;
    tracing::info!("the repository configuration was stored from the API");
    let outcome = state
        .deployment
        .apply_detached(true, sync_wait(&state))
        .await;
    let (synced, message) = first_sync_message(outcome);
    let mut out = serde_json::to_value(state.deployment.view().await).unwrap_or_default();
    out["success"] = json!(true);
    out["synced"] = json!(synced);
    out["message"] = json!(format!("saved; {message}"));
    Ok(Json(out).into_response())
}

/// Forgets the stored settings: the environment's repository, or `PIPELINES_DIR`, serves.
async fn remove(State(state): State<AppState>) -> Result<Response, ApiError> {
    let removed = state
        .deployment
        .remove_stored()
        .await
        .map_err(store_error)?;
    let _ = state
        .deployment
        .apply_detached(true, sync_wait(&state))
        .await;
    let view = state.deployment.view().await;
    let message = match (removed, view.configured) {
        (false, _) => "nothing was stored",
        (true, true) => "removed; the repository set by the environment stays in force",
        (true, false) => "removed; the pipelines come from PIPELINES_DIR again",
    };
    let mut out = serde_json::to_value(view).unwrap_or_default();
    out["success"] = json!(true);
    out["message"] = json!(message);
    Ok(Json(out).into_response())
}

/// A new Ed25519 key for an SSH URL, stored encrypted; answers its public line
/// to add as a deploy key. No sync runs until the key is added there.
async fn generate_deploy_key(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let change: RepoConfigChange = body_as(
        body,
        r#"{"repo_url": "git@host:owner/repo.git", "branch": "main", "pipelines_subdir": ""}"#,
    )?;
    let public_key = state
        .deployment
        .store_new_deploy_key(&change)
        .await
        .map_err(store_error)?;
    tracing::info!("a new deploy key was generated and stored");
    let _ = state
        .deployment
        .apply_detached(false, sync_wait(&state))
        .await;
    let mut out = serde_json::to_value(state.deployment.view().await).unwrap_or_default();
    out["success"] = json!(true);
    out["public_key"] = json!(public_key);
    out["message"] = json!(
        "deploy key generated: add the public key to the repository (GitHub: Settings → Deploy keys; GitLab: Settings → Repository → Deploy keys), then sync"
    );
    Ok(Json(out).into_response())
}

/// `git ls-remote` against the configured repository, or, given a body, against
/// those settings as if they were stored (nothing is stored).
async fn test_connection(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let result = match body {
        Some(body) if body.as_object().is_some_and(|o| !o.is_empty()) => {
            let change: RepoConfigChange = body_as(Some(body), CHANGE_SHAPE)?;
            state.deployment.test_candidate(&change).await
        }
        _ => {
            let sync = super::sync::configured(&state)?;
            let branch = sync.spec().branch.clone();
            sync.test_connection()
                .await
                .map(|b| (branch, b))
                .map_err(StoreError::Unusable)
        }
    };
    let (success, message, branches) = match result {
        Ok((branch, branches)) if branches.contains(&branch) => (
            true,
            format!("connected; branch `{branch}` found"),
            branches,
        ),
        Ok((branch, branches)) => (
            false,
            format!("connected, but the repository has no branch `{branch}`"),
            branches,
        ),
        Err(StoreError::Unusable(e)) => (false, e.to_string(), Vec::new()),
        Err(other) => return Err(store_error(other)),
    };
    Ok(Json(json!({"success": success, "message": message, "branches": branches})).into_response())
}
