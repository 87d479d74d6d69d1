//! Signing in with an OAuth provider, and linking one to an account: the
//! browser is sent to the provider with a fresh `state` and PKCE challenge
//! kept in its session (so the answer is only accepted by the browser that
//! asked, once, within 10 minutes); the callback exchanges the code, reads the
//! profile and lets `login_decision` say who it is.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Extension, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::account_status::{back_from, capitalised, held_page, status_page, status_page_to};
use super::audit_trail::sign_in_event;
use super::identity::Identity;
use super::login_pages::sign_in;
use super::page_query::PageQuery as Query;
use super::sign_in_checks::{over_limit, safe_next};
use super::{AppError, AppState};
use crate::auth::login_decision::{self, Decision, Held, Purpose};
use crate::auth::oauth_flow;
use crate::config::auth::{OAuthProvider, ProviderId};
use crate::db;

/// Where a started flow waits in the session.
pub(crate) const FLOW_KEY: &str = "oauth_flow";
/// A flow not finished within this time must start again.
const FLOW_SECONDS: i64 = 10 * 60;

#[derive(Serialize, Deserialize)]
struct PendingFlow {
    provider: String,
    state: String,
    pkce_verifier: String,
    purpose: Purpose,
    next: String,
    started_at: i64,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/auth/{provider}/authorize", get(authorize))
        .route("/api/auth/{provider}/callback", get(callback))
        .route("/api/auth/link/{provider}", get(link))
}

/// A 429 when `peer` started or answered too many sign-ins this minute.
fn too_many(state: &AppState, peer: &SocketAddr) -> Option<Response> {
    let per_minute = state.config.auth.oauth_rate_limit;
    over_limit(
        &state.oauth_limiter,
        per_minute,
        "OAuth sign-in steps",
        peer,
    )
}

fn configured<'a>(state: &'a AppState, name: &str) -> Result<&'a OAuthProvider, AppError> {
    ProviderId::parse(name)
        .and_then(|id| state.config.auth.provider(id))
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "no sign-in provider {:?} is configured here",
                crate::pipelines::fields::shown(name)
            ))
        })
}

async fn begin(
    state: &AppState,
    session: &Session,
    provider: &OAuthProvider,
    purpose: Purpose,
    next: String,
) -> Result<Response, AppError> {
    let callback = oauth_flow::callback_url(&state.config.base_url, provider.id);
    let started =
        oauth_flow::start(provider, &callback).map_err(|e| AppError::BadRequest(e.to_string()))?;
    let flow = PendingFlow {
        provider: provider.id.as_str().into(),
        state: started.state,
        pkce_verifier: started.pkce_verifier,
        purpose,
        next,
        started_at: chrono::Utc::now().timestamp(),
    };
    session
        .insert(FLOW_KEY, flow)
        .await
        .map_err(|e| AppError::internal("starting a sign-in", e))?;
    Ok(Redirect::to(&started.url).into_response())
}

async fn authorize(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    let provider = configured(&state, &name)?;
    let invitation = q.get("invitation").filter(|t| !t.is_empty()).cloned();
    let purpose = Purpose::Login { invitation };
    begin(
        &state,
        &session,
        provider,
        purpose,
        safe_next(q.get("next")),
    )
    .await
}

async fn link(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    session: Session,
    Path(name): Path<String>,
) -> Result<Response, AppError> {
    let provider = configured(&state, &name)?;
    let Some(user_id) = who.user_id else {
        return Err(AppError::BadRequest(
            "a token made with `fastflow token create` has no account to link".into(),
        ));
    };
    let purpose = Purpose::Link { user_id };
    begin(&state, &session, provider, purpose, "/settings".into()).await
}

async fn callback(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if let Some(refused) = too_many(&state, &peer) {
        return Ok(refused);
    }
    let provider = configured(&state, &name)?;
    let label = provider.label.clone();
    // Who is signed in here already (a link flow), else nobody yet.
    let (actor, actor_id) = signed_in_here(&state, &session).await;
    let via = provider.id.as_str();
    let failed = |detail: String| {
        let (state, actor, actor_id) = (state.clone(), actor.clone(), actor_id.clone());
        async move {
            let detail = format!("provider={via}: {detail}");
            sign_in_event(
                &state,
                "login.failed",
                &actor,
                actor_id.as_deref(),
                &peer,
                "failed",
                detail,
            )
            .await;
        }
    };
    // Taken out first: a flow is answered once, whatever the answer.
    let flow: Option<PendingFlow> = session
        .remove(FLOW_KEY)
        .await
        .map_err(|e| AppError::internal("reading the session", e))?;
    let Some(flow) = flow else {
        failed("no sign-in was started in this browser".into()).await;
        return Ok(status_page(
            400,
            "Sign-in not started here",
            format!(
                "This answer from {label} does not belong to a sign-in started in this browser (or it was already used). Start again from the sign-in page."
            ),
            true,
        ));
    };
    let sent_state = q.get("state").map(String::as_str).unwrap_or_default();
    if flow.provider != provider.id.as_str() || !same(sent_state, &flow.state) {
        failed("the state does not match the one this browser was given".into()).await;
        return Ok(status_page(
            403,
            "Sign-in refused",
            format!(
                "The answer from {label} does not match the sign-in this browser started (wrong state). Start again from the sign-in page."
            ),
            true,
        ));
    }
    if chrono::Utc::now().timestamp() - flow.started_at > FLOW_SECONDS {
        failed("the sign-in took over 10 minutes".into()).await;
        return Ok(status_page(
            400,
            "Sign-in expired",
            "The sign-in took over 10 minutes. Start again.".into(),
            true,
        ));
    }
    // A link is for the account that asked for it, and only while it is signed in here.
    if let Purpose::Link { user_id } = &flow.purpose {
        let held: Option<super::identity::SessionUser> = session
            .get(super::identity::SESSION_KEY)
            .await
            .map_err(|e| AppError::internal("reading the session", e))?;
        if held.map(|h| h.id).as_deref() != Some(user_id.as_str()) {
            failed("a link flow answered in a session of another user".into()).await;
            return Ok(status_page(
                403,
                "Not linked",
                "The account that asked to link is no longer the one signed in here. Sign in and start linking again from Settings.".into(),
                true,
            ));
        }
    }
    if let Some(error) = q.get("error") {
        let why: String = q
            .get("error_description")
            .unwrap_or(error)
            .chars()
            .take(300)
            .collect();
        failed(format!(
            "the provider answered {}",
            crate::audit::clip(error)
        ))
        .await;
        return Ok(status_page(
            401,
            "Not signed in",
            format!("{label} did not sign you in: {why}"),
            true,
        ));
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty() && c.len() <= 4096) else {
        failed("no code in the answer".into()).await;
        return Ok(status_page(
            400,
            "Not signed in",
            format!("{label} sent no sign-in code."),
            true,
        ));
    };
    let callback = oauth_flow::callback_url(&state.config.base_url, provider.id);
    let profile = match oauth_flow::finish(provider, &callback, code, &flow.pkce_verifier).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(provider = provider.id.as_str(), error = %e, "OAuth sign-in failed");
            failed(e.to_string()).await;
            return Ok(status_page(502, "Not signed in", e.to_string(), true));
        }
    };
    let decision = login_decision::decide(
        &state.pool,
        &state.config.auth,
        &label,
        &profile,
        &flow.purpose,
    )
    .await?;
    Ok(match decision {
        Decision::SignIn { user, matched } => {
            sign_in(&session, &user).await?;
            db::users::set_last_login(&state.pool, &user.id).await?;
            tracing::info!(provider = via, user = %user.username, r#match = matched.as_str(), "signed in");
            let detail = format!("provider={via} match={}", matched.as_str());
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
            Redirect::to(&flow.next).into_response()
        }
        Decision::Linked { user } => {
            tracing::info!(provider = via, user = %user.username, r#match = "link", "account linked");
            let detail = format!("provider={via} match=link");
            sign_in_event(
                &state,
                "identity.link",
                &user.username,
                Some(&user.id),
                &peer,
                "ok",
                detail,
            )
            .await;
            Redirect::to(&format!("/settings?linked={via}")).into_response()
        }
        Decision::Held { user, why, matched } => {
            tracing::info!(provider = via, user = %user.username, r#match = matched.as_str(), held = ?why, "signed in without a session");
            let detail = format!("provider={via} match={} held={why:?}", matched.as_str());
            let action = if why == Held::Requested {
                "join_request"
            } else {
                "login.held"
            };
            sign_in_event(
                &state,
                action,
                &user.username,
                Some(&user.id),
                &peer,
                "denied",
                detail,
            )
            .await;
            held_page(why, &user.username)
        }
        Decision::Refused(why) => {
            tracing::info!(provider = via, reason = %why, "OAuth sign-in refused");
            failed(why.clone()).await;
            let title = if matches!(flow.purpose, Purpose::Link { .. }) {
                "Not linked"
            } else {
                "Not signed in"
            };
            status_page_to(
                403,
                title,
                capitalised(&why),
                true,
                back_from(&flow.purpose),
            )
        }
    })
}

/// The username and id of the session's user, or `anonymous`.
async fn signed_in_here(state: &AppState, session: &Session) -> (String, Option<String>) {
    let held = session
        .get::<super::identity::SessionUser>(super::identity::SESSION_KEY)
        .await
        .ok()
        .flatten();
    if let Some(held) = held
        && let Ok(Some(user)) = db::users::by_id(&state.pool, &held.id).await
    {
        return (user.username, Some(user.id));
    }
    ("anonymous".into(), None)
}

fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
