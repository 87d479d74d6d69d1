//! `/api/auth` on Fast-Flow's paths: who is signed in, which login methods
//! exist, and signing out.

use axum::extract::Extension;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_sessions::Session;

use crate::web::identity::Identity;
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/me", get(me))
        .route("/auth/providers", get(providers))
        .route("/auth/logout", post(logout))
}

async fn me(Extension(who): Extension<Identity>) -> Json<serde_json::Value> {
    Json(json!({
        "id": who.user_id,
        "username": who.name,
        "role": who.role,
        "via": if who.csrf.is_some() { "session" } else { "token" },
    }))
}

/// The login methods of this install (local accounts for now).
async fn providers() -> Json<serde_json::Value> {
    Json(json!({"providers": [], "local_login": true}))
}

async fn logout(session: Session) -> Result<Response, ApiError> {
    session
        .flush()
        .await
        .map_err(|e| ApiError(AppError::internal("ending the session", e)))?;
    Ok(Json(json!({"message": "signed out"})).into_response())
}
