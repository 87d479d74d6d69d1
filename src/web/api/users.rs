//! `/api/users` on Fast-Flow's paths and fields (ADMIN only): list, read,
//! change role or blocked (either ends the user's sessions at once), block,
//! unblock, delete — never the last active admin —, answer join requests
//! (approve / reject), invitations (create, list, revoke), and, ours, create a
//! local account (username, password, role) for installs without OAuth.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::JsonBody;
use super::sync::body_as;
use crate::auth::{Role, invitation, password};
use crate::db::{self, identities::Identity, users::User};
use crate::web::audit_trail::AuditNote;
use crate::web::identity::Identity as Caller;
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(one).put(update).delete(remove))
        .route("/users/{id}/block", post(block))
        .route("/users/{id}/unblock", post(unblock))
        .route("/users/{id}/approve", post(approve))
        .route("/users/{id}/reject", post(reject))
        .route("/users/invite", post(invite))
        .route("/users/invites", get(invites))
        .route("/users/invites/{id}", axum::routing::delete(revoke_invite))
}

/// Fast-Flow's `UserResponse`, with the provider ids of linked accounts.
fn user_json(u: &User, ids: &[Identity]) -> Value {
    let of = |p: &str| ids.iter().find(|i| i.user_id == u.id && i.provider == p);
    json!({
        "id": u.id, "username": u.username, "email": u.email, "role": u.role,
        "blocked": u.blocked, "status": u.status, "created_at": u.created_at,
        "last_login_at": u.last_login_at, "local_account": u.password_hash.is_some(),
        "microsoft_id": of("microsoft").map(|i| &i.subject),
        "github_id": of("github").map(|i| &i.subject),
        "github_login": of("github").and_then(|i| i.login.as_ref()),
        "google_id": of("google").map(|i| &i.subject),
        "custom_oauth_id": of("custom").map(|i| &i.subject),
    })
}

async fn one_json(state: &AppState, u: &User) -> Result<Value, ApiError> {
    Ok(user_json(
        u,
        &db::identities::of_user(&state.pool, &u.id).await?,
    ))
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let users = db::users::list(&state.pool).await?;
    let ids = db::identities::all(&state.pool).await?;
    Ok(Json(users.iter().map(|u| user_json(u, &ids)).collect::<Vec<_>>()).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<User, ApiError> {
    db::users::by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError(AppError::NotFound("no such user".into())))
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    Ok(Json(one_json(&state, &user).await?).into_response())
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
            status: "active",
        },
    )
    .await?
    .ok_or_else(|| ApiError(AppError::Conflict("that username is taken".into())))?;
    tracing::info!(user = %made.username, role = %role, "local account created");
    let mut r = (StatusCode::CREATED, Json(user_json(&made, &[]))).into_response();
    r.extensions_mut()
        .insert(AuditNote(format!("user {} role {role}", made.username)));
    Ok(r)
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
    let user = find(&state, &id).await?;
    Ok(Json(one_json(&state, &user).await?).into_response())
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
    let user = find(&state, &id).await?;
    Ok(Json(one_json(&state, &user).await?).into_response())
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Approval {
    #[serde(default)]
    role: Option<String>,
}

fn parse_role(raw: Option<&str>) -> Result<Role, ApiError> {
    raw.unwrap_or("READONLY")
        .parse()
        .map_err(|e: crate::auth::role::UnknownRole| ApiError(AppError::BadRequest(e.to_string())))
}

/// Answers a join request (Fast-Flow: body optional, role READONLY by default).
async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let approval: Approval = match body {
        Some(v) if !v.is_null() => body_as(Some(v), r#"{"role": "READONLY"}"#)?,
        _ => Approval::default(),
    };
    let role = parse_role(approval.role.as_deref())?;
    let user = find(&state, &id).await?;
    answer(&state, &user, "active", role).await?;
    let user = find(&state, &id).await?;
    Ok(Json(one_json(&state, &user).await?).into_response())
}

async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    answer(&state, &user, "rejected", Role::Readonly).await?;
    let user = find(&state, &id).await?;
    Ok(Json(one_json(&state, &user).await?).into_response())
}

/// Approve or reject; only a request still waiting (or rejected before) can be
/// answered, so an active admin is never demoted this way.
pub async fn answer(
    state: &AppState,
    user: &User,
    status: &str,
    role: Role,
) -> Result<(), AppError> {
    if user.status == "active" {
        return Err(AppError::Conflict(format!(
            "{} is already active; change the role instead",
            user.username
        )));
    }
    db::users::set_status(&state.pool, &user.id, status, role.as_str()).await?;
    tracing::info!(user = %user.username, status, role = %role, "join request answered");
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteRequest {
    email: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    expires_hours: Option<i64>,
}

/// Fast-Flow's answer: `{"link", "expires_at"}` (201), plus the invitation's id.
async fn invite(
    State(state): State<AppState>,
    Extension(who): Extension<Caller>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let req: InviteRequest = body_as(
        body,
        r#"{"email": "ada@example.com", "role": "WRITE", "expires_hours": 168}"#,
    )?;
    let role = parse_role(req.role.as_deref())?;
    let hours = req.expires_hours.unwrap_or(invitation::DEFAULT_HOURS);
    let made = invite_user(&state, &who, &req.email, role, hours).await?;
    let body = json!({
        "id": made.invitation.id,
        "link": made.link,
        "expires_at": made.invitation.expires_at,
    });
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    r.extensions_mut().insert(AuditNote(format!(
        "invitation for {} as {role}",
        made.invitation.recipient_email
    )));
    Ok(r)
}

/// Shared with the Users page.
pub async fn invite_user(
    state: &AppState,
    who: &Caller,
    email: &str,
    role: Role,
    hours: i64,
) -> Result<invitation::Made, AppError> {
    invitation::create(
        &state.pool,
        &state.config.base_url,
        email,
        role,
        hours,
        Some(&who.name),
    )
    .await
    .map_err(|e| match e {
        invitation::InviteError::Db(db) => AppError::from(db),
        other => AppError::BadRequest(other.to_string()),
    })
}

async fn invites(State(state): State<AppState>) -> Result<Response, ApiError> {
    let list = db::invitations::list(&state.pool).await?;
    let body: Vec<Value> = list
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "recipient_email": i.recipient_email, "role": i.role,
                "is_used": i.used_at.is_some(), "expires_at": i.expires_at,
                "created_at": i.created_at, "created_by": i.created_by,
            })
        })
        .collect();
    Ok(Json(body).into_response())
}

async fn revoke_invite(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !db::invitations::delete(&state.pool, &id).await? {
        return Err(ApiError(AppError::NotFound("no such invitation".into())));
    }
    Ok(Json(json!({"message": "invitation revoked", "id": id})).into_response())
}
