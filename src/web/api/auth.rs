//! `/api/auth` on Fast-Flow's paths: who is signed in, which login methods
//! exist, unlinking a provider, and signing out. (The OAuth redirects are
//! pages: `web::oauth_pages`.)

use axum::extract::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_sessions::Session;

use crate::config::auth::ProviderId;
use crate::db;
use crate::web::identity::Identity;
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/me", get(me))
        .route("/auth/providers", get(providers))
        .route("/auth/logout", post(logout))
        .route("/auth/link/{provider}", delete(unlink))
}

async fn me(Extension(who): Extension<Identity>) -> Json<serde_json::Value> {
    Json(json!({
        "id": who.user_id,
        "username": who.name,
        "role": who.role,
        "via": if who.csrf.is_some() { "session" } else { "token" },
    }))
}

/// The login methods of this install: Fast-Flow's flags per provider, plus
/// the list the login page shows and whether local accounts may sign in.
async fn providers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let auth = &state.config.auth;
    let mut out = serde_json::Map::new();
    for id in ProviderId::ALL {
        out.insert(id.as_str().into(), json!(auth.provider(id).is_some()));
    }
    if let Some(custom) = auth.provider(ProviderId::Custom) {
        out.insert("custom_display_name".into(), json!(custom.label));
    }
    let list: Vec<_> = auth
        .providers
        .iter()
        .map(|p| {
            json!({
                "id": p.id.as_str(),
                "name": p.label,
                "authorize_url": format!("/api/auth/{}/authorize", p.id.as_str()),
            })
        })
        .collect();
    out.insert("providers".into(), json!(list));
    out.insert("local_login".into(), json!(auth.local_login));
    Json(out.into())
}

/// Removes a linked provider from the caller's account, unless it is their
/// only way to sign in.
async fn unlink(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Path(provider): Path<String>,
) -> Result<Response, ApiError> {
    let message = unlink_provider(&state, &who, &provider).await?;
    Ok(Json(json!({"message": message})).into_response())
}

/// Shared with the Settings page.
pub async fn unlink_provider(
    state: &AppState,
    who: &Identity,
    provider: &str,
) -> Result<String, AppError> {
    let Some(id) = ProviderId::parse(provider) else {
        return Err(AppError::NotFound("no such provider".into()));
    };
    let Some(user_id) = &who.user_id else {
        return Err(AppError::BadRequest(
            "a token without owner has no linked accounts".into(),
        ));
    };
    let label = state
        .config
        .auth
        .provider(id)
        .map_or(id.as_str(), |p| p.label.as_str());
    match db::identities::unlink_unless_last(&state.pool, user_id, id.as_str()).await? {
        None => Err(AppError::NotFound(format!("no {label} account is linked"))),
        Some(false) => Err(AppError::Conflict(format!(
            "{label} is your only way to sign in: link another provider or set a password first"
        ))),
        Some(true) => Ok(format!("{label} unlinked")),
    }
}

async fn logout(session: Session) -> Result<Response, ApiError> {
    session
        .flush()
        .await
        .map_err(|e| ApiError(AppError::internal("ending the session", e)))?;
    Ok(Json(json!({"message": "signed out"})).into_response())
}
