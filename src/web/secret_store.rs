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

/// Longest value stored (as a run-time override may be).
pub const MAX_VALUE_BYTES: usize = crate::runner::overrides::MAX_VALUE_BYTES;

/// Checks a key and value, naming the key but never the value. Stored secrets
/// are configuration like a pipeline's `default_env` (only pipelines that list
/// them receive them), so they may set what a run-time override may not
/// (`UV_INDEX_URL` with a token, `GIT_TOKEN`, proxies); only Fast-Flow's own
/// names are refused, since a run would never see them.
pub fn check(key: &str, value: &str) -> Result<(), AppError> {
    use crate::pipelines::fields::{is_env_name, shown};
    if !is_env_name(key) {
        return Err(AppError::BadRequest(format!(
            "`{}` is not a valid environment variable name (letters, digits, `_`; not starting with a digit)",
            shown(key)
        )));
    }
    let upper = key.to_ascii_uppercase();
    if upper.starts_with("FASTFLOW_") || upper.starts_with("_FASTFLOW_") {
        return Err(AppError::BadRequest(format!(
            "`{key}` is reserved: FASTFLOW_* and _fastflow_* are Fast-Flow's own variables and always win"
        )));
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(AppError::BadRequest(format!(
            "the value of `{key}` is {} bytes long; at most {MAX_VALUE_BYTES} are allowed",
            value.len()
        )));
    }
    if value.contains('\0') {
        return Err(AppError::BadRequest(format!(
            "the value of `{key}` contains a NUL character, which an environment variable cannot hold"
        )));
    }
    Ok(())
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

/// Replaces `key`'s value; `is_parameter` `None` keeps the kind. Without a
/// value only a parameter can change kind (it becomes a secret): a secret's
/// value is never shown, so it cannot turn visible unless typed again.
/// Returns the kind.
pub async fn change(
    state: &AppState,
    key: &str,
    value: Option<&str>,
    is_parameter: Option<bool>,
) -> Result<bool, AppError> {
    let Some(current) = db::secrets::get(&state.pool, key).await? else {
        check(key, value.unwrap_or_default())?;
        return Err(not_found(key));
    };
    let is_parameter = is_parameter.unwrap_or(current.is_parameter);
    let value = match value {
        Some(v) => v.to_string(),
        None if current.is_parameter && !is_parameter => current.value.clone(),
        None if !current.is_parameter && is_parameter => {
            return Err(AppError::BadRequest(format!(
                "`{key}` is a secret and its value is never shown: type the value again to make it a visible parameter"
            )));
        }
        None => {
            return Err(AppError::BadRequest(
                "the value is empty: type a new value (or pick the other kind)".into(),
            ));
        }
    };
    check(key, &value)?;
    let stored = stored_value(state, &value, is_parameter);
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
