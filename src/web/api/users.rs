//! `/api/users` on Fast-Flow's paths and fields (ADMIN only): list, read,
//! change role or blocked (either ends the user's sessions at once), block,
//! unblock, delete — never the last active admin — and, ours, create a local
//! account (username, password, role) for installs without an OAuth provider.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::JsonBody;
use super::sync::body_as;
use crate::auth::{Role, password};
use crate::db::{self, users::User};
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(one).put(update).delete(remove))
        .route("/users/{id}/block", post(block))
        .route("/users/{id}/unblock", post(unblock))
}

/// Fast-Flow's `UserResponse` (its provider ids stay empty until OAuth login).
fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "username": u.username, "email": u.email, "role": u.role,
        "blocked": u.blocked, "status": u.status, "created_at": u.created_at,
        "last_login_at": u.last_login_at, "local_account": u.password_hash.is_some(),
        "microsoft_id": null, "github_id": null, "github_login": null,
        "google_id": null, "custom_oauth_id": null,
    })
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let users = db::users::list(&state.pool).await?;
    Ok(Json(users.iter().map(user_json).collect::<Vec<_>>()).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<User, ApiError> {
    db::users::by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError(AppError::NotFound("no such user".into())))
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(user_json(&find(&state, &id).await?)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLocalUser {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default = "readonly")]
    role: String,
}

fn readonly() -> String {
    "READONLY".into()
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new: NewLocalUser = body_as(
        body,
        r#"{"username": "…", "password": "…", "role": "READONLY"}"#,
    )?;
    let bad = |m: String| ApiError(AppError::BadRequest(m));
    crate::web::login_pages::check_username(new.username.trim()).map_err(bad)?;
    let role: Role = new
        .role
        .parse()
        .map_err(|e: crate::auth::role::UnknownRole| bad(e.to_string()))?;
    let hash = tokio::task::spawn_blocking(move || password::hash(&new.password))
        .await
        .map_err(|e| ApiError(AppError::internal("hashing a password", e)))?
        .map_err(|e| bad(e.to_string()))?;
    let made = db::users::insert(
        &state.pool,
        &db::users::NewUser {
            username: new.username.trim(),
            email: new.email.as_deref(),
            role: role.as_str(),
            password_hash: Some(&hash),
        },
    )
    .await?
    .ok_or_else(|| ApiError(AppError::Conflict("that username is taken".into())))?;
    tracing::info!(user = %made.username, role = %role, "local account created");
    Ok((StatusCode::CREATED, Json(user_json(&made))).into_response())
}

/// Refuses to leave the install without an active admin.
async fn keep_an_admin(state: &AppState, user: &User) -> Result<(), ApiError> {
    let is_active_admin = user.role == "ADMIN" && !user.blocked && user.status == "active";
    if is_active_admin && db::users::count_admins(&state.pool).await? <= 1 {
        return Err(ApiError(AppError::Conflict(
            "this is the last active admin: make another user admin first".into(),
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    role: Option<String>,
    blocked: Option<bool>,
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let change: Change = body_as(body, r#"{"role": "WRITE", "blocked": false}"#)?;
    let user = find(&state, &id).await?;
    if let Some(role) = &change.role {
        let role: Role = role.parse().map_err(|e: crate::auth::role::UnknownRole| {
            ApiError(AppError::BadRequest(e.to_string()))
        })?;
        if role != Role::Admin {
            keep_an_admin(&state, &user).await?;
        }
        db::users::set_role(&state.pool, &id, role.as_str()).await?;
        tracing::info!(user = %user.username, role = %role, "role changed; their sessions ended");
    }
    if let Some(blocked) = change.blocked {
        set_blocked(&state, &user, blocked).await?;
    }
    Ok(Json(user_json(&find(&state, &id).await?)).into_response())
}

async fn set_blocked(state: &AppState, user: &User, blocked: bool) -> Result<(), ApiError> {
    if blocked {
        keep_an_admin(state, user).await?;
    }
    db::users::set_blocked(&state.pool, &user.id, blocked).await?;
    tracing::info!(user = %user.username, blocked, "user blocked or unblocked");
    Ok(())
}

async fn block(state: State<AppState>, id: Path<String>) -> Result<Response, ApiError> {
    block_or_unblock(state, id, true).await
}

async fn unblock(state: State<AppState>, id: Path<String>) -> Result<Response, ApiError> {
    block_or_unblock(state, id, false).await
}

async fn block_or_unblock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    blocked: bool,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    set_blocked(&state, &user, blocked).await?;
    Ok(Json(user_json(&find(&state, &id).await?)).into_response())
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    keep_an_admin(&state, &user).await?;
    db::users::delete(&state.pool, &id).await?;
    tracing::info!(user = %user.username, "user deleted");
    Ok(Json(json!({"message": "deleted", "id": id})).into_response())
}
