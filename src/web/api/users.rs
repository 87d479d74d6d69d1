//! `/api/users` on Fast-Flow's paths and fields (ADMIN only): list, read,
//! change role or blocked, block, unblock, delete, answer join requests
//! (approve / reject), invitations (create, list, revoke), and, ours, create a
//! local account. The rules are `web::user_admin`'s, shared with the page.

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::JsonBody;
use super::sync::body_as;
use crate::auth::{Role, invitation};
use crate::db::{self, identities::Identity, users::User};
use crate::web::audit_trail::AuditNote;
use crate::web::identity::Identity as Caller;
use crate::web::user_admin::{self, find, parse_role};
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
        .route("/users/invites/{id}", delete(revoke_invite))
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

/// The user as stored now.
async fn current(state: &AppState, id: &str) -> Result<Response, ApiError> {
    let u = find(state, id).await?;
    let ids = db::identities::of_user(&state.pool, &u.id).await?;
    Ok(Json(user_json(&u, &ids)).into_response())
}

fn noted(mut r: Response, note: String) -> Response {
    r.extensions_mut().insert(AuditNote(note));
    r
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let users = db::users::list(&state.pool).await?;
    let ids = db::identities::all(&state.pool).await?;
    Ok(Json(users.iter().map(|u| user_json(u, &ids)).collect::<Vec<_>>()).into_response())
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    current(&state, &id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLocalUser {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new: NewLocalUser = body_as(
        body,
        r#"{"username": "…", "password": "…", "role": "READONLY"}"#,
    )?;
    let role = parse_role(new.role.as_deref().unwrap_or("READONLY"))?;
    let made = user_admin::create_local(
        &state,
        &new.username,
        new.password,
        new.email.as_deref(),
        role,
    )
    .await?;
    let note = format!("user {} role {role}", made.username);
    let r = (StatusCode::CREATED, Json(user_json(&made, &[]))).into_response();
    Ok(noted(r, note))
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
    let mut note = Vec::new();
    if let Some(role) = &change.role {
        let role = parse_role(role)?;
        user_admin::change_role(&state, &user, role).await?;
        note.push(format!("role {role}"));
    }
    if let Some(blocked) = change.blocked {
        user_admin::set_blocked(&state, &user, blocked).await?;
        note.push(format!("blocked {blocked}"));
    }
    let r = current(&state, &id).await?;
    Ok(noted(
        r,
        format!("user {}: {}", user.username, note.join(", ")),
    ))
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
    user_admin::set_blocked(&state, &user, blocked).await?;
    Ok(noted(
        current(&state, &id).await?,
        format!("user {}", user.username),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    user_admin::delete(&state, &user).await?;
    let r = Json(json!({"message": "deleted", "id": id})).into_response();
    Ok(noted(r, format!("user {}", user.username)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Approval {
    #[serde(default)]
    role: Option<String>,
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
    let role = parse_role(approval.role.as_deref().unwrap_or("READONLY"))?;
    let user = find(&state, &id).await?;
    user_admin::answer(&state, &user, "active", role).await?;
    Ok(noted(
        current(&state, &id).await?,
        format!("user {} as {role}", user.username),
    ))
}

async fn reject(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = find(&state, &id).await?;
    user_admin::answer(&state, &user, "rejected", Role::Readonly).await?;
    Ok(noted(
        current(&state, &id).await?,
        format!("user {}", user.username),
    ))
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
    let role = parse_role(req.role.as_deref().unwrap_or("READONLY"))?;
    let hours = req.expires_hours.unwrap_or(invitation::DEFAULT_HOURS);
    let made = user_admin::invite(&state, &who, &req.email, role, hours).await?;
    let body = json!({
        "id": made.invitation.id,
        "link": made.link,
        "expires_at": made.invitation.expires_at,
    });
    let note = format!(
        "invitation for {} as {role}",
        made.invitation.recipient_email
    );
    Ok(noted(
        (StatusCode::CREATED, Json(body)).into_response(),
        note,
    ))
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
