//! Signing in and out with a local account, and the first-run setup page that
//! the one-time link opens. A login starts a new session (a new id, so a
//! session fixed before login is worth nothing) holding the user, their
//! session epoch and a fresh CSRF token.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_sessions::Session;

use super::audit_trail::sign_in_event;
use super::identity::{SESSION_KEY, SessionUser};
use super::page_query::PageQuery as Query;
use super::sign_in_checks::{
    address_mismatch, check_username, new_account_hash, password_work, safe_next, too_many,
};
use super::{AppError, AppState, csrf};
use crate::auth::{Role, password, setup_link};
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/setup", get(setup_page).post(setup))
        .route("/logout", post(logout))
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "pages/login.html")]
struct LoginPage {
    setup: bool,
    /// `(path segment, button text)` of each configured provider.
    providers: Vec<(String, String)>,
    local_login: bool,
    setup_token: String,
    next: String,
    username: String,
    notice: String,
    /// This page was opened at another address than `BASE_URL`: why sign-in
    /// will not stick, and where to go instead.
    wrong_address: String,
    /// No admin yet: point at the setup link in the server's output.
    first_start: bool,
}

/// The sign-in page as this install offers it.
fn login_form(state: &AppState, next: String) -> LoginPage {
    LoginPage {
        providers: state
            .config
            .auth
            .providers
            .iter()
            .map(|p| (p.id.as_str().to_string(), p.label.clone()))
            .collect(),
        local_login: state.config.auth.local_login,
        next,
        ..LoginPage::default()
    }
}

async fn login_page(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> LoginPage {
    let mut page = login_form(&state, safe_next(q.get("next")));
    page.wrong_address = address_mismatch(&state.config.base_url, &headers);
    page.first_start = state.config.auth.local_login
        && db::users::count_admins(&state.pool).await.unwrap_or(1) == 0;
    page
}

/// Starts the user's session under a new id.
pub async fn sign_in(session: &Session, user: &db::users::User) -> Result<(), AppError> {
    session
        .cycle_id()
        .await
        .map_err(|e| AppError::internal("starting a session", e))?;
    // A flow begun before (a half-done link for another account) is not this user's.
    session
        .remove_value(super::oauth_pages::FLOW_KEY)
        .await
        .map_err(|e| AppError::internal("starting a session", e))?;
    let held = SessionUser {
        id: user.id.clone(),
        epoch: user.session_epoch,
        csrf: csrf::fresh(),
        login_at: chrono::Utc::now().timestamp(),
        seen_at: chrono::Utc::now().timestamp(),
    };
    session
        .insert(SESSION_KEY, held)
        .await
        .map_err(|e| AppError::internal("starting a session", e))
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    let username = form.get("username").map(|u| u.trim()).unwrap_or_default();
    let given = form.get("password").map(String::as_str).unwrap_or_default();
    let next = safe_next(form.get("next"));
    if !state.config.auth.local_login {
        return Err(AppError::Forbidden(
            "sign-in with a username and password is off here (LOCAL_LOGIN_ENABLED=false); use a provider".into(),
        ));
    }
    let user = db::users::by_username(&state.pool, username).await?;
    // Checked even for an unknown name, so both answers take as long.
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password_work({
        let given = given.to_string();
        move || password::verify(&given, hash.as_deref())
    })
    .await
    .unwrap_or(false);
    let refused = |notice: &str| {
        let page = LoginPage {
            username: username.chars().take(200).collect(),
            notice: notice.into(),
            ..login_form(&state, next.clone())
        };
        (axum::http::StatusCode::UNAUTHORIZED, page).into_response()
    };
    // A name that cannot be a username (a password typed in the wrong field,
    // a pasted token) is not kept.
    let attempted = if check_username(username).is_ok() {
        username
    } else {
        "(not a valid username)"
    };
    let failed = |why: &str| {
        sign_in_event(
            &state,
            "login.failed",
            attempted,
            None,
            &peer,
            "failed",
            format!("password: {why}"),
        )
    };
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(username = %crate::pipelines::fields::shown(username), "login refused: wrong username or password");
        failed("wrong username or password").await;
        return Ok(refused("Wrong username or password."));
    };
    if user.blocked {
        failed("blocked").await;
        return Ok(refused("This account is blocked. Ask an administrator."));
    }
    if user.status != "active" {
        failed("not active").await;
        return Ok(refused(
            "This account is not active yet. Ask an administrator.",
        ));
    }
    sign_in(&session, &user).await?;
    db::users::set_last_login(&state.pool, &user.id).await?;
    tracing::info!(user = %user.username, method = "password", "signed in");
    let detail = "password".to_string();
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
    Ok(Redirect::to(&next).into_response())
}

async fn logout(session: Session) -> Result<Response, AppError> {
    session
        .flush()
        .await
        .map_err(|e| AppError::internal("ending the session", e))?;
    Ok(Redirect::to("/login").into_response())
}

async fn setup_page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    if !state.config.auth.local_login {
        return Err(local_off());
    }
    let token = q.get("token").cloned().unwrap_or_default();
    if !setup_link::is_valid(&state.pool, &token).await? {
        return Err(link_refused(&state, &peer).await);
    }
    Ok(LoginPage {
        setup: true,
        setup_token: token,
        ..LoginPage::default()
    }
    .into_response())
}

/// Why a setup link opens nothing, written to the audit log (rate limited).
async fn link_refused(state: &AppState, peer: &SocketAddr) -> AppError {
    let set_up = db::users::count_admins(&state.pool).await.unwrap_or(0) > 0;
    let why = if set_up {
        AppError::Forbidden(
            "this install is already set up: sign in at /login (an admin invites further users)"
                .into(),
        )
    } else {
        AppError::Forbidden(
            "this setup link is not valid: it was used, it expired (24 hours), or a newer one was printed when the server last started".into(),
        )
    };
    sign_in_event(
        state,
        "setup.refused",
        "anonymous",
        None,
        peer,
        "denied",
        why.message(),
    )
    .await;
    why
}

fn local_off() -> AppError {
    AppError::Forbidden(
        "the setup link makes a local admin, and local sign-in is off (LOCAL_LOGIN_ENABLED=false): sign in with a provider as INITIAL_ADMIN_EMAIL instead".into(),
    )
}

async fn setup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    if !state.config.auth.local_login {
        return Err(local_off());
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (token, username) = (field("token"), field("username").trim().to_string());
    if !setup_link::is_valid(&state.pool, &token).await? {
        return Err(link_refused(&state, &peer).await);
    }
    let again = |notice: String| {
        LoginPage {
            setup: true,
            setup_token: token.clone(),
            username: username.chars().take(200).collect(),
            notice,
            ..LoginPage::default()
        }
        .into_response()
    };
    let hash = match new_account_hash(&username, &field("password"), &field("password2")).await? {
        Ok(hash) => hash,
        Err(notice) => return Ok(again(notice)),
    };
    // The link is used up first: two tabs cannot both create an admin.
    if !setup_link::redeem(&state.pool, &token).await? {
        return Err(link_refused(&state, &peer).await);
    }
    let new = db::users::NewUser {
        username: &username,
        email: None,
        role: Role::Admin.as_str(),
        password_hash: Some(&hash),
        status: "active",
    };
    let Some(user) = db::users::insert(&state.pool, &new).await? else {
        return Ok(again("That username is taken.".into()));
    };
    sign_in(&session, &user).await?;
    db::users::set_last_login(&state.pool, &user.id).await?;
    tracing::info!(user = %user.username, "first admin created with the setup link");
    let detail = "first admin, with the setup link".to_string();
    sign_in_event(
        &state,
        "user.setup",
        &user.username,
        Some(&user.id),
        &peer,
        "ok",
        detail,
    )
    .await;
    Ok(Redirect::to("/").into_response())
}
