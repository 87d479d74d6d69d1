//! The page an invitation link opens: sign in with a provider that vouches for
//! the invited e-mail, or (where local accounts are on) choose a username and
//! password. Either way the invitation is used once.

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{ConnectInfo, Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_sessions::Session;

use super::audit_trail::sign_in_event;
use super::login_pages::sign_in;
use super::page_query::PageQuery as Query;
use super::sign_in_checks::{new_account_hash, too_many};
use super::{AppError, AppState};
use crate::auth::{Role, invitation};
use crate::db::{self, invitations::Invitation};

pub fn router() -> Router<AppState> {
    Router::new().route("/invite", get(page).post(accept))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/invite.html")]
struct InvitePage {
    token: String,
    email: String,
    role: String,
    expires_at: String,
    providers: Vec<(String, String)>,
    local_login: bool,
    username: String,
    notice: String,
}

/// Why `token` opens no invitation: cut short, or used up.
fn gone(token: &str) -> AppError {
    if crate::auth::api_token::well_formed(token) {
        AppError::Forbidden(
            "this invitation link was used, revoked or has expired (or the admin who made it can no longer invite); ask an administrator for a new one"
                .into(),
        )
    } else {
        AppError::BadRequest(
            "this is not a whole invitation link: check that you copied all of it (it ends in a 46-character token starting with ff_)"
                .into(),
        )
    }
}

/// A refused invitation, written to the audit log (the pages are rate limited).
async fn refused(state: &AppState, peer: &SocketAddr, token: &str) -> AppError {
    let why = gone(token);
    sign_in_event(
        state,
        "invitation.refused",
        "anonymous",
        None,
        peer,
        "denied",
        why.message(),
    )
    .await;
    why
}

fn render(
    state: &AppState,
    token: &str,
    inv: &Invitation,
    username: &str,
    notice: String,
) -> InvitePage {
    InvitePage {
        token: token.into(),
        email: inv.recipient_email.clone(),
        role: inv.role.clone(),
        expires_at: inv.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        providers: state
            .config
            .auth
            .providers
            .iter()
            .map(|p| (p.id.as_str().to_string(), p.label.clone()))
            .collect(),
        local_login: state.config.auth.local_login,
        username: username.chars().take(200).collect(),
        notice,
    }
}

async fn page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    let token = q.get("token").cloned().unwrap_or_default();
    let Some(inv) = invitation::find_usable(&state.pool, &token).await? else {
        return Err(refused(&state, &peer, &token).await);
    };
    Ok(render(&state, &token, &inv, "", String::new()).into_response())
}

async fn accept(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    if !state.config.auth.local_login {
        return Err(AppError::Forbidden(
            "local accounts are off here (LOCAL_LOGIN_ENABLED=false): accept the invitation by signing in with a provider".into(),
        ));
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (token, username) = (field("token"), field("username").trim().to_string());
    let Some(inv) = invitation::find_usable(&state.pool, &token).await? else {
        return Err(refused(&state, &peer, &token).await);
    };
    let again = |notice: String| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            render(&state, &token, &inv, &username, notice),
        )
            .into_response()
    };
    let hash = match new_account_hash(&username, &field("password"), &field("password2")).await? {
        Ok(hash) => hash,
        Err(notice) => return Ok(again(notice)),
    };
    if db::users::by_username(&state.pool, &username)
        .await?
        .is_some()
    {
        return Ok(again("That username is taken.".into()));
    }
    // Used up before the account exists: two tabs cannot both use it.
    if !db::invitations::redeem(&state.pool, &inv.id).await? {
        return Err(gone(&token));
    }
    let role: Role = inv.role.parse().unwrap_or(Role::Readonly);
    let new = db::users::NewUser {
        username: &username,
        email: Some(&inv.recipient_email),
        role: role.as_str(),
        password_hash: Some(&hash),
        status: "active",
    };
    let Some(user) = db::users::insert(&state.pool, &new).await? else {
        return Ok(again(
            "That username was just taken; the invitation is used up — ask for a new one.".into(),
        ));
    };
    db::invitations::set_used_by(&state.pool, &inv.id, &user.id).await?;
    sign_in(&session, &user).await?;
    db::users::set_last_login(&state.pool, &user.id).await?;
    tracing::info!(user = %user.username, role = %role, r#match = "invitation", "local account created from an invitation");
    let detail = format!("password match=invitation role={role}");
    sign_in_event(
        &state,
        "login",
        &user.username,
        Some(&user.id),
        &peer,
        "ok",
        detail,
    )
    .await;
    Ok(Redirect::to("/").into_response())
}
