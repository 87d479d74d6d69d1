//! The Users page (ADMIN): join requests to approve or reject, every user
//! with role, status, linked providers and last sign-in (change role, block,
//! unblock, delete), local accounts to create, and invitations (make one —
//! its link is shown once —, see which are open, used or expired, revoke).
//! Each form answers with the whole page and a notice; a refusal keeps its
//! status code. The rules are `user_admin`'s, shared with `/api/users`.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Extension, Form, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::audit_trail::AuditNote;
use super::identity::Identity;
use super::user_admin::{self, find, parse_role};
use super::views::fmt_time;
use super::{AppError, AppState};
use crate::auth::invitation;
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(page))
        .route("/users/local", post(create_local))
        .route("/users/invite", post(invite))
        .route("/users/invites/{id}/revoke", post(revoke_invite))
        .route("/users/{id}/role", post(role))
        .route("/users/{id}/block", post(block))
        .route("/users/{id}/unblock", post(unblock))
        .route("/users/{id}/delete", post(delete))
        .route("/users/{id}/approve", post(approve))
        .route("/users/{id}/reject", post(reject))
}

pub struct UserRow {
    pub id: String,
    pub username: String,
    pub email: String,
    pub role: String,
    pub status: String,
    pub blocked: bool,
    pub providers: String,
    pub local: bool,
    pub last_login: String,
    pub created: String,
    pub myself: bool,
}

pub struct InviteRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub state: &'static str,
    pub expires: String,
    pub created_by: String,
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "pages/users.html")]
pub struct UsersPage {
    pub requests: Vec<UserRow>,
    pub users: Vec<UserRow>,
    pub invites: Vec<InviteRow>,
    pub local_login: bool,
    pub notice: String,
    pub notice_ok: bool,
    /// A link just made: shown this once.
    pub new_link: String,
    pub roles: [&'static str; 3],
}

async fn load(state: &AppState, who: &Identity) -> Result<UsersPage, AppError> {
    let ids = db::identities::all(&state.pool).await?;
    let label = |provider: &str| {
        crate::config::auth::ProviderId::parse(provider)
            .and_then(|p| state.config.auth.provider(p))
            .map(|p| p.label.clone())
            .unwrap_or_else(|| provider.to_string())
    };
    let mut requests = Vec::new();
    let mut users = Vec::new();
    for u in db::users::list(&state.pool).await? {
        let providers = ids
            .iter()
            .filter(|i| i.user_id == u.id)
            .map(|i| match &i.login {
                Some(l) => format!("{} ({l})", label(&i.provider)),
                None => label(&i.provider),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let row = UserRow {
            myself: who.user_id.as_deref() == Some(u.id.as_str()),
            id: u.id,
            username: u.username,
            email: u.email.unwrap_or_default(),
            role: u.role,
            status: u.status.clone(),
            blocked: u.blocked,
            providers,
            local: u.password_hash.is_some(),
            last_login: u
                .last_login_at
                .as_ref()
                .map(fmt_time)
                .unwrap_or_else(|| "never".into()),
            created: fmt_time(&u.created_at),
        };
        if u.status == "pending" {
            requests.push(row);
        } else {
            users.push(row);
        }
    }
    let now = chrono::Utc::now();
    let invites = db::invitations::list(&state.pool)
        .await?
        .into_iter()
        .map(|i| InviteRow {
            state: if i.used_at.is_some() {
                "used"
            } else if i.expires_at <= now {
                "expired"
            } else {
                "open"
            },
            id: i.id,
            email: i.recipient_email,
            role: i.role,
            expires: fmt_time(&i.expires_at),
            created_by: i.created_by.unwrap_or_default(),
        })
        .collect();
    Ok(UsersPage {
        requests,
        users,
        invites,
        local_login: state.config.auth.local_login,
        roles: ["READONLY", "WRITE", "ADMIN"],
        ..UsersPage::default()
    })
}

async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
) -> Result<UsersPage, AppError> {
    load(&state, &who).await
}

/// The page after a form: its notice, the status a refusal keeps, and what
/// the audit log should add.
async fn answered(
    state: &AppState,
    who: &Identity,
    done: Result<(String, String), AppError>,
) -> Result<Response, AppError> {
    let mut page = load(state, who).await?;
    Ok(match done {
        Ok((notice, note)) => {
            page.notice = notice;
            page.notice_ok = true;
            let mut r = page.into_response();
            r.extensions_mut().insert(AuditNote(note));
            r
        }
        Err(e) if e.status().is_client_error() => {
            page.notice = e.message();
            (e.status(), page).into_response()
        }
        Err(e) => return Err(e),
    })
}

type FormMap = Form<HashMap<String, String>>;

fn field(form: &HashMap<String, String>, k: &str) -> String {
    form.get(k)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

async fn create_local(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Form(form): FormMap,
) -> Result<Response, AppError> {
    let done = async {
        let role = parse_role(&field(&form, "role"))?;
        let password = form.get("password").cloned().unwrap_or_default();
        let email = field(&form, "email");
        let made = user_admin::create_local(
            &state,
            &field(&form, "username"),
            password,
            Some(&email),
            role,
        )
        .await?;
        Ok((
            format!("Account {} created as {role}.", made.username),
            format!("user {} role {role}", made.username),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn invite(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Form(form): FormMap,
) -> Result<Response, AppError> {
    let made = async {
        let role = parse_role(&field(&form, "role"))?;
        let hours = match field(&form, "hours").as_str() {
            "" => invitation::DEFAULT_HOURS,
            h => h.parse().map_err(|_| {
                AppError::BadRequest("`hours`: a whole number from 1 to 8760".into())
            })?,
        };
        user_admin::invite(&state, &who, &field(&form, "email"), role, hours).await
    }
    .await;
    match made {
        Ok(made) => {
            let mut page = load(&state, &who).await?;
            page.notice = format!(
                "Invitation for {} made. Send them this link; it is shown only now.",
                made.invitation.recipient_email
            );
            page.notice_ok = true;
            page.new_link = made.link;
            let mut r = page.into_response();
            let note = format!(
                "invitation for {} as {}",
                made.invitation.recipient_email, made.invitation.role
            );
            r.extensions_mut().insert(AuditNote(note));
            Ok(r)
        }
        Err(e) => answered(&state, &who, Err(e)).await,
    }
}

async fn revoke_invite(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let done = async {
        if !db::invitations::delete(&state.pool, &id).await? {
            return Err(AppError::NotFound("no such invitation".into()));
        }
        Ok((
            "Invitation revoked.".to_string(),
            format!("invitation {id}"),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn role(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): FormMap,
) -> Result<Response, AppError> {
    let done = async {
        let user = find(&state, &id).await?;
        let role = parse_role(&field(&form, "role"))?;
        user_admin::change_role(&state, &user, role).await?;
        Ok((
            format!("{} is now {role}; their sessions ended.", user.username),
            format!("user {} role {role}", user.username),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn set_blocked(
    state: AppState,
    who: Identity,
    id: String,
    blocked: bool,
) -> Result<Response, AppError> {
    let done = async {
        let user = find(&state, &id).await?;
        user_admin::set_blocked(&state, &user, blocked).await?;
        let what = if blocked {
            "blocked; their sessions ended"
        } else {
            "unblocked"
        };
        Ok((
            format!("{} is {what}.", user.username),
            format!("user {}", user.username),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn block(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    set_blocked(state, who, id, true).await
}

async fn unblock(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    set_blocked(state, who, id, false).await
}

async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let done = async {
        let user = find(&state, &id).await?;
        user_admin::delete(&state, &user).await?;
        Ok((
            format!("{} deleted.", user.username),
            format!("user {}", user.username),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn approve(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
    Form(form): FormMap,
) -> Result<Response, AppError> {
    let done = async {
        let user = find(&state, &id).await?;
        let role = parse_role(&field(&form, "role"))?;
        user_admin::answer(&state, &user, "active", role).await?;
        Ok((
            format!("{} may now sign in as {role}.", user.username),
            format!("user {} as {role}", user.username),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn reject(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let done = async {
        let user = find(&state, &id).await?;
        user_admin::answer(&state, &user, "rejected", crate::auth::Role::Readonly).await?;
        Ok((
            format!("The request of {} is rejected.", user.username),
            format!("user {}", user.username),
        ))
    }
    .await;
    answered(&state, &who, done).await
}
