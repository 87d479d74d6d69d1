//! What `/api/secrets` and the Secrets page both do to stored secrets: check a
//! key and value as a run's environment would, encrypt a secret (a parameter
//! stays plain), and say which pipelines list a key. Messages name keys, never
//! values.

use std::collections::{BTreeMap, BTreeSet};

use crate::db;
use crate::web::{AppError, AppState};

/// Which pipelines list each key in their `secrets`.
pub fn listed_by(state: &AppState) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, p) in &state.registry.snapshot().pipelines {
        for key in &p.metadata.secrets {
            out.entry(key.clone()).or_default().insert(name.clone());
        }
    }
    out
}

/// Checks a key and value as a run's environment would (name, size, reserved
/// names), naming the key but never the value.
pub fn check(key: &str, value: &str) -> Result<(), AppError> {
    let one = BTreeMap::from([(key.to_string(), value.to_string())]);
    crate::runner::overrides::check("", &one)
        .map_err(|e| AppError::BadRequest(e.0.replace("starting a run", "storing a secret")))
}

/// What is stored: a Fernet token for a secret, the value for a parameter.
fn stored_value(state: &AppState, value: &str, is_parameter: bool) -> String {
    if is_parameter {
        value.to_string()
    } else {
        state.cipher.encrypt(value)
    }
}

pub async fn create(
    state: &AppState,
    key: &str,
    value: &str,
    is_parameter: bool,
) -> Result<(), AppError> {
    check(key, value)?;
    let stored = stored_value(state, value, is_parameter);
    if !db::secrets::insert(&state.pool, key, &stored, is_parameter).await? {
        return Err(AppError::Conflict(format!(
            "`{key}` exists; change its value instead"
        )));
    }
    tracing::info!(key = %key, is_parameter, "secret created");
    Ok(())
}

/// Replaces `key`'s value; `is_parameter` `None` keeps the kind. Returns the kind.
pub async fn change(
    state: &AppState,
    key: &str,
    value: &str,
    is_parameter: Option<bool>,
) -> Result<bool, AppError> {
    check(key, value)?;
    let Some(current) = db::secrets::get(&state.pool, key).await? else {
        return Err(not_found(key));
    };
    let is_parameter = is_parameter.unwrap_or(current.is_parameter);
    let stored = stored_value(state, value, is_parameter);
    if !db::secrets::update(&state.pool, key, &stored, is_parameter).await? {
        return Err(not_found(key));
    }
    tracing::info!(key = %key, is_parameter, "secret changed");
    Ok(is_parameter)
}

/// Deletes `key`; returns the pipelines that still list it (their runs fail
/// until it is defined again).
pub async fn delete(state: &AppState, key: &str) -> Result<BTreeSet<String>, AppError> {
    if !db::secrets::delete(&state.pool, key).await? {
        return Err(not_found(key));
    }
    tracing::info!(key = %key, "secret deleted");
    Ok(listed_by(state).remove(key).unwrap_or_default())
}

/// The warning for a deleted key that pipelines still list.
pub fn still_listed_warning(key: &str, pipelines: &BTreeSet<String>) -> String {
    format!(
        "still listed in the `secrets` of {}: their runs fail until `{key}` is defined again",
        pipelines.iter().cloned().collect::<Vec<_>>().join(", ")
    )
}

fn not_found(key: &str) -> AppError {
    AppError::NotFound(format!(
        "no secret `{}`",
        crate::pipelines::fields::shown(key)
    ))
}
