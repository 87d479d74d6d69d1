//! `/api/secrets`, on Fast-Flow's paths: secrets (encrypted, write-only once
//! saved) and parameters (plain, visible), which pipelines list each key, and
//! encrypting a value for a pipeline's `encrypted_env`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::JsonBody;
use super::sync::body_as;
use crate::db;
use crate::web::{ApiError, AppState, secret_store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route("/secrets/from-pipelines", get(from_pipelines))
        .route("/secrets/encrypt-for-pipeline", post(encrypt_for_pipeline))
        .route("/secrets/{key}", put(update).delete(remove))
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let used = secret_store::listed_by(&state);
    let rows = db::secrets::list(&state.pool).await?;
    let body: Vec<_> = rows
        .iter()
        .map(|s| {
            json!({
                "key": s.key,
                "is_parameter": s.is_parameter,
                // A secret's value is never sent back; a parameter's is plain configuration.
                "value": if s.is_parameter { Some(&s.value) } else { None },
                "created_at": s.created_at,
                "updated_at": s.updated_at,
                "pipelines": used.get(&s.key).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    key: String,
    value: String,
    #[serde(default)]
    is_parameter: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangedSecret {
    value: String,
    is_parameter: Option<bool>,
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new: NewSecret = body_as(
        body,
        r#"{"key": "NAME", "value": "…", "is_parameter": false}"#,
    )?;
    secret_store::create(&state, &new.key, &new.value, new.is_parameter).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"key": new.key, "is_parameter": new.is_parameter, "message": "saved"})),
    )
        .into_response())
}

async fn update(
    State(state): State<AppState>,
    Path(key): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let change: ChangedSecret = body_as(body, r#"{"value": "…", "is_parameter": false}"#)?;
    let is_parameter =
        secret_store::change(&state, &key, Some(&change.value), change.is_parameter).await?;
    Ok(Json(json!({"key": key, "is_parameter": is_parameter, "message": "saved"})).into_response())
}

/// Deletes the key; names the pipelines that still list it (their runs will
/// fail until it is defined again).
async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let still = secret_store::delete(&state, &key).await?;
    let mut body = json!({"key": key, "deleted": true, "message": "deleted"});
    if !still.is_empty() {
        body["warning"] = json!(secret_store::still_listed_warning(&key, &still));
        body["pipelines"] = json!(still);
    }
    Ok(Json(body).into_response())
}

/// Every key some pipeline lists, whether it is defined, and by whom it is listed.
async fn from_pipelines(State(state): State<AppState>) -> Result<Response, ApiError> {
    let defined: BTreeMap<String, bool> = db::secrets::list(&state.pool)
        .await?
        .into_iter()
        .map(|s| (s.key, s.is_parameter))
        .collect();
    let body: Vec<_> = secret_store::listed_by(&state)
        .into_iter()
        .map(|(key, pipelines)| {
            json!({
                "key": key,
                "defined": defined.contains_key(&key),
                "is_parameter": defined.get(&key),
                "pipelines": pipelines,
            })
        })
        .collect();
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToEncrypt {
    value: String,
}

/// A Fernet token of `value` to paste into a pipeline's `encrypted_env`.
async fn encrypt_for_pipeline(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let v: ToEncrypt = body_as(body, r#"{"value": "…"}"#)?;
    secret_store::check("VALUE", &v.value)?;
    Ok(Json(json!({"encrypted": state.cipher.encrypt(&v.value)})).into_response())
}
