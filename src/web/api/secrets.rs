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

use super::sync::body_as;
use super::{ApiQuery, JsonBody};
use crate::db;
use crate::web::{ApiError, AppError, AppState, secret_store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(list).post(create))
        .route("/secrets/from-pipelines", get(from_pipelines))
        .route("/secrets/encrypt-for-pipeline", post(encrypt_for_pipeline))
        .route("/secrets/{key}", put(update).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

/// Most entries one page may ask for, as in Fast-Flow.
const MAX_LIMIT: usize = 500;

/// Fast-Flow's shape, `{"secrets": [...], "total": N}`, all of them unless
/// `limit` (1–500) is given; `offset` skips that many.
async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    if q.limit.is_some_and(|l| l == 0 || l > MAX_LIMIT) {
        return Err(ApiError(AppError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))));
    }
    let used = secret_store::listed_by(&state);
    let rows = db::secrets::list(&state.pool).await?;
    let total = rows.len();
    let body: Vec<_> = rows
        .iter()
        .skip(q.offset)
        .take(q.limit.unwrap_or(usize::MAX))
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
    Ok(Json(json!({"secrets": body, "total": total})).into_response())
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
    let kind = if new.is_parameter {
        "parameter"
    } else {
        "secret"
    };
    let mut r = (
        StatusCode::CREATED,
        Json(json!({"key": new.key, "is_parameter": new.is_parameter, "message": "saved"})),
    )
        .into_response();
    // The name only, never the value.
    r.extensions_mut()
        .insert(crate::web::audit_trail::AuditNote(format!(
            "{kind} {}",
            new.key
        )));
    Ok(r)
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
/// Every environment key the pipelines name, as Fast-Flow lists them — one
/// entry per pipeline, `source` (`default_env`, `encrypted_env`) and
/// `run_config_id` — plus each key listed in `secrets` (`source: "secrets"`)
/// with whether it is `defined` and `is_parameter`. No values.
async fn from_pipelines(State(state): State<AppState>) -> Result<Response, ApiError> {
    let defined: BTreeMap<String, bool> = db::secrets::list(&state.pool)
        .await?
        .into_iter()
        .map(|s| (s.key, s.is_parameter))
        .collect();
    let mut body = Vec::new();
    for (name, p) in &state.registry.snapshot().pipelines {
        let m = &p.metadata;
        let mut layers = vec![(None, &m.default_env, &m.encrypted_env)];
        layers.extend(
            m.schedules
                .iter()
                .map(|s| (Some(s.id.as_str()), &s.default_env, &s.encrypted_env)),
        );
        for (run_config_id, default_env, encrypted_env) in layers {
            for (source, keys) in [
                ("default_env", default_env),
                ("encrypted_env", encrypted_env),
            ] {
                body.extend(keys.keys().map(|key| {
                    json!({"key": key, "pipeline": name, "source": source, "run_config_id": run_config_id})
                }));
            }
        }
        body.extend(m.secrets.iter().map(|key| {
            json!({
                "key": key, "pipeline": name, "source": "secrets", "run_config_id": null,
                "defined": defined.contains_key(key), "is_parameter": defined.get(key),
            })
        }));
    }
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
