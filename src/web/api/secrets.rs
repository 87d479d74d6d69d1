//! `/api/secrets`, on Fast-Flow's paths: secrets (encrypted, write-only once
//! saved) and parameters (plain, visible), which pipelines list each key, and
//! encrypting a value for a pipeline's `encrypted_env`.

use std::collections::{BTreeMap, BTreeSet};

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
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route("/secrets/from-pipelines", get(from_pipelines))
        .route("/secrets/encrypt-for-pipeline", post(encrypt_for_pipeline))
        .route("/secrets/{key}", put(update).delete(remove))
}

/// Which pipelines list each key in their `secrets`.
fn listed_by(state: &AppState) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, p) in &state.registry.snapshot().pipelines {
        for key in &p.metadata.secrets {
            out.entry(key.clone()).or_default().insert(name.clone());
        }
    }
    out
}

async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let used = listed_by(&state);
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

/// Checks a key and value as a run's environment would (name, size, reserved
/// names), naming the key but never the value.
fn check(key: &str, value: &str) -> Result<(), ApiError> {
    let one = BTreeMap::from([(key.to_string(), value.to_string())]);
    crate::runner::overrides::check("", &one).map_err(|e| {
        ApiError(AppError::BadRequest(
            e.0.replace("starting a run", "storing a secret"),
        ))
    })
}

/// What is stored: a Fernet token for a secret, the value for a parameter.
fn stored_value(state: &AppState, value: &str, is_parameter: bool) -> String {
    if is_parameter {
        value.to_string()
    } else {
        state.cipher.encrypt(value)
    }
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new: NewSecret = body_as(
        body,
        r#"{"key": "NAME", "value": "…", "is_parameter": false}"#,
    )?;
    check(&new.key, &new.value)?;
    let value = stored_value(&state, &new.value, new.is_parameter);
    if !db::secrets::insert(&state.pool, &new.key, &value, new.is_parameter).await? {
        return Err(ApiError(AppError::Conflict(format!(
            "`{}` exists; change it with PUT /api/secrets/{}",
            new.key, new.key
        ))));
    }
    tracing::info!(key = %new.key, is_parameter = new.is_parameter, "secret created");
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
    check(&key, &change.value)?;
    let Some(current) = db::secrets::get(&state.pool, &key).await? else {
        return Err(not_found(&key));
    };
    let is_parameter = change.is_parameter.unwrap_or(current.is_parameter);
    let value = stored_value(&state, &change.value, is_parameter);
    if !db::secrets::update(&state.pool, &key, &value, is_parameter).await? {
        return Err(not_found(&key));
    }
    tracing::info!(key = %key, is_parameter, "secret changed");
    Ok(Json(json!({"key": key, "is_parameter": is_parameter, "message": "saved"})).into_response())
}

fn not_found(key: &str) -> ApiError {
    ApiError(AppError::NotFound(format!(
        "no secret `{}`",
        crate::pipelines::fields::shown(key)
    )))
}

/// Deletes the key; names the pipelines that still list it (their runs will
/// fail until it is defined again).
async fn remove(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    if !db::secrets::delete(&state.pool, &key).await? {
        return Err(not_found(&key));
    }
    tracing::info!(key = %key, "secret deleted");
    let still = listed_by(&state).remove(&key).unwrap_or_default();
    let mut body = json!({"key": key, "deleted": true, "message": "deleted"});
    if !still.is_empty() {
        body["pipelines"] = json!(still);
        body["warning"] = json!(format!(
            "still listed in the `secrets` of {}: their runs fail until `{key}` is defined again",
            still.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
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
    let body: Vec<_> = listed_by(&state)
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
    check("VALUE", &v.value)?;
    Ok(Json(json!({"encrypted": state.cipher.encrypt(&v.value)})).into_response())
}
