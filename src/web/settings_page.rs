//! The Settings page of the signed-in user: their account, a new password (local
//! accounts), linked sign-in providers (link, unlink — never the last way
//! in), and personal API tokens: made here with a role no higher than their
//! own and an optional expiry, shown once, listed with their last use, revoked.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Extension, Form, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Duration, Utc};

use super::audit_trail::AuditNote;
use super::identity::Identity;
use super::page_query::PageQuery as Query;
use super::sign_in_checks::{over_limit, password_work};
use super::views::fmt_time;
use super::{AppError, AppState};
use crate::auth::token_command::{MAX_EXPIRY_DAYS, check_name};
use crate::auth::{Role, api_token, password};
use crate::db;

/// How recent a sign-in must be to set a first password without one to confirm.
const FRESH_SIGN_IN_SECONDS: i64 = 15 * 60;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(page))
        .route("/settings/password", post(change_password))
        .route("/settings/tokens", post(create_token))
        .route("/settings/tokens/{id}/revoke", post(revoke_token))
        .route("/settings/linked/{provider}/unlink", post(unlink))
}

pub struct ProviderRow {
    pub id: String,
    pub label: String,
    /// What the provider said at the last sign-in; empty when not linked.
    pub linked_as: String,
    pub linked: bool,
    /// Not the last way to sign in (a password, or another provider).
    pub can_unlink: bool,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "pages/settings.html")]
pub struct SettingsPage {
    pub username: String,
    pub email: String,
    pub role: String,
    pub has_password: bool,
    pub providers: Vec<ProviderRow>,
    pub tokens: Vec<TokenRow>,
    /// Roles a new token may have (up to the user's own).
    pub token_roles: Vec<&'static str>,
    pub notice: String,
    pub notice_ok: bool,
    /// A token just made, shown this once.
    pub new_token: String,
    pub max_days: i64,
}

fn user_id(who: &Identity) -> Result<&str, AppError> {
    who.user_id.as_deref().ok_or_else(|| {
        AppError::BadRequest(
            "a token made with `fastflow token create` belongs to no account: sign in to see Settings"
                .into(),
        )
    })
}

async fn load(state: &AppState, who: &Identity) -> Result<SettingsPage, AppError> {
    let id = user_id(who)?;
    let user = db::users::by_id(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such user".into()))?;
    let linked = db::identities::of_user(&state.pool, id).await?;
    let providers = state
        .config
        .auth
        .providers
        .iter()
        .map(|p| {
            let found = linked.iter().find(|i| i.provider == p.id.as_str());
            ProviderRow {
                id: p.id.as_str().into(),
                label: p.label.clone(),
                can_unlink: user.password_hash.is_some() || linked.len() > 1,
                linked: found.is_some(),
                linked_as: found
                    .map(|i| {
                        let name = i.login.clone().unwrap_or_default();
                        let email = i
                            .email
                            .as_deref()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default();
                        format!("{name}{email} · linked {}", fmt_time(&i.linked_at))
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    let tokens = db::api_tokens::live_of(&state.pool, id)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            role: t.role,
            created: fmt_time(&t.created_at),
            expires: t
                .expires_at
                .as_ref()
                .map(fmt_time)
                .unwrap_or_else(|| "never".into()),
            last_used: t
                .last_used_at
                .as_ref()
                .map(fmt_time)
                .unwrap_or_else(|| "never".into()),
        })
        .collect();
    let token_roles = [Role::Readonly, Role::Write, Role::Admin]
        .into_iter()
        .filter(|r| *r <= who.role)
        .map(Role::as_str)
        .collect();
    Ok(SettingsPage {
        username: user.username,
        email: user.email.unwrap_or_default(),
        role: user.role,
        has_password: user.password_hash.is_some(),
        providers,
        tokens,
        token_roles,
        max_days: MAX_EXPIRY_DAYS,
        ..SettingsPage::default()
    })
}

async fn page(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<SettingsPage, AppError> {
    let mut page = load(&state, &who).await?;
    if let Some(p) = q
        .get("linked")
        .and_then(|p| page.providers.iter().find(|r| &r.id == p))
    {
        page.notice = format!("{} is linked: you can sign in with it.", p.label);
        page.notice_ok = true;
    }
    Ok(page)
}

/// The page after a form, with its notice (a refusal keeps its status).
async fn answered(
    state: &AppState,
    who: &Identity,
    done: Result<(String, String, String), AppError>,
) -> Result<Response, AppError> {
    let mut page = load(state, who).await?;
    Ok(match done {
        Ok((notice, new_token, note)) => {
            page.notice = notice;
            page.notice_ok = true;
            page.new_token = new_token;
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

async fn create_token(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): FormMap,
) -> Result<Response, AppError> {
    if let Some(limited) = over_limit(
        &state.token_limiter,
        super::access_layer::TOKEN_ATTEMPTS_PER_MINUTE,
        "refused API tokens or token changes",
        &peer,
    ) {
        return Ok(limited);
    }
    let done = async {
        let id = user_id(&who)?;
        let name = check_name(form.get("name").map(String::as_str).unwrap_or_default())
            .map_err(AppError::BadRequest)?
            .to_string();
        let role: Role = form
            .get("role")
            .map(String::as_str)
            .unwrap_or("READONLY")
            .parse()
            .map_err(|e: crate::auth::role::UnknownRole| AppError::BadRequest(e.to_string()))?;
        if role > who.role {
            return Err(AppError::Forbidden(format!(
                "a token cannot do more than you: your role is {}",
                who.role
            )));
        }
        let expires_at = match form.get("days").map(|d| d.trim()).unwrap_or_default() {
            "" => None,
            d => match d.parse::<i64>() {
                Ok(n @ 1..=MAX_EXPIRY_DAYS) => Some(Utc::now() + Duration::days(n)),
                _ => {
                    return Err(AppError::BadRequest(format!(
                        "`days`: a whole number from 1 to {MAX_EXPIRY_DAYS}, or empty for no expiry"
                    )));
                }
            },
        };
        let made = api_token::generate().map_err(|e| AppError::internal("making a token", e))?;
        let stored = db::api_tokens::insert(
            &state.pool,
            &db::api_tokens::NewApiToken {
                name: &name,
                user_id: Some(id),
                role: role.as_str(),
                token_hash: &made.hash,
                expires_at,
            },
        )
        .await?;
        if !stored {
            return Err(AppError::Conflict(format!(
                "you have a token named {name}; revoke it or pick another name"
            )));
        }
        Ok((
            format!("Token {name} made. Copy it now: it is shown only this once."),
            made.token.expose().to_string(),
            format!("token {name} role {role}"),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(token_id): Path<String>,
) -> Result<Response, AppError> {
    let done = async {
        let id = user_id(&who)?;
        let name = db::api_tokens::revoke_by_id(&state.pool, id, &token_id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such live token of yours".into()))?;
        Ok((
            format!("Token {name} revoked."),
            String::new(),
            format!("token {name}"),
        ))
    }
    .await;
    answered(&state, &who, done).await
}

async fn unlink(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(provider): Path<String>,
) -> Result<Response, AppError> {
    let done = super::api::unlink_provider(&state, &who, &provider)
        .await
        .map(|m| (capital(&m), String::new(), m));
    answered(&state, &who, done).await
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect::<String>() + ".")
        .unwrap_or_default()
}

async fn change_password(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    session: tower_sessions::Session,
    Form(form): FormMap,
) -> Result<Response, AppError> {
    let done = async {
        let id = user_id(&who)?.to_string();
        let user = db::users::by_id(&state.pool, &id)
            .await?
            .ok_or_else(|| AppError::NotFound("no such user".into()))?;
        let field = |k: &str| form.get(k).cloned().unwrap_or_default();
        let (current, new) = (field("current"), field("password"));
        if new != field("password2") {
            return Err(AppError::BadRequest("the two new passwords differ".into()));
        }
        // An account without a password (provider only) has no current one to ask
        // for: a sign-in within the last minutes stands for it instead.
        if user.password_hash.is_none() {
            let held: Option<super::identity::SessionUser> = session
                .get(super::identity::SESSION_KEY)
                .await
                .map_err(|e| AppError::internal("reading the session", e))?;
            let recent = held.is_some_and(|h| {
                Utc::now().timestamp() - h.login_at <= FRESH_SIGN_IN_SECONDS
            });
            if !recent {
                return Err(AppError::Forbidden(
                    "to set a first password, sign out and sign in again with your provider, then set it within 15 minutes".into(),
                ));
            }
        }
        if let Some(hash) = user.password_hash.clone() {
            let ok = password_work(move || password::verify(&current, Some(&hash)))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(AppError::Forbidden("the current password is wrong".into()));
            }
        }
        let hash = password_work(move || password::hash(&new))
            .await
            .ok_or_else(|| AppError::internal("hashing a password", "the worker stopped"))?
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        db::users::set_password(&state.pool, &id, &hash).await?;
        // Every session ended with the change; this one starts again at once.
        if let Some(user) = db::users::by_id(&state.pool, &id).await? {
            super::login_pages::sign_in(&session, &user).await?;
        }
        Ok((
            "Password changed. Your other sessions ended; sign in again there.".to_string(),
            String::new(),
            "password changed".to_string(),
        ))
    }
    .await;
    answered(&state, &who, done).await
}
