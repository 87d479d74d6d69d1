//! The probes a load balancer, Docker's HEALTHCHECK and a monitor call: `/health`
//! (the process answers) and `/ready` (runs can start and be stored), each check
//! of `/ready` named in its answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;

pub async fn health(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}

/// One named check: `{"ok": true, …facts}` or `{"ok": false, "error": "…", …facts}`.
fn check(problem: Option<String>, facts: Value) -> (Option<String>, Value) {
    let mut answer = match &problem {
        None => json!({"ok": true}),
        Some(error) => json!({"ok": false, "error": error}),
    };
    if let (Some(answer), Value::Object(facts)) = (answer.as_object_mut(), facts) {
        answer.extend(facts);
    }
    (problem, answer)
}

/// 200 when runs can start and be stored: the database answers, the pipelines are
/// discovered from a readable `PIPELINES_DIR`, the Docker engine is reachable and
/// has the runner image, `DATA_DIR` / `LOGS_DIR` are writable with space left;
/// else 503. A missing runner image is a warning (the first run pulls it). Every check is named under `checks`; `problems` lists each failure
/// as a sentence and `reason` repeats the first.
pub async fn ready(State(state): State<AppState>) -> Response {
    let database = check(
        crate::db::ping(&state.pool)
            .await
            .err()
            .map(|e| format!("database unavailable: {e}")),
        json!({}),
    );
    let config = state.config.clone();
    let (pipelines_dir, storage) = tokio::task::spawn_blocking(move || {
        (
            crate::readiness::pipelines_dir_problem(&config),
            crate::readiness::storage_problems(&config),
        )
    })
    .await
    .unwrap_or_else(|e| {
        (
            Some(format!("checking the directories failed: {e}")),
            vec![],
        )
    });
    let snapshot = state.registry.snapshot();
    let valid = snapshot.pipelines.values().filter(|p| p.is_valid()).count();
    let pipelines = check(
        pipelines_dir.or_else(|| {
            (!state.registry.is_loaded())
                .then(|| "pipelines are still being discovered".to_string())
        }),
        json!({
            "path": state.config.pipelines_dir.display().to_string(),
            "valid": valid,
            "invalid": snapshot.pipelines.len() - valid,
        }),
    );
    let engine_state = &state.runner.deps().engine;
    let engine = check(
        engine_state.down_reason(),
        json!({"host": crate::runner::engine::describe_host(state.config.docker_host.as_deref())}),
    );
    let image = check(
        engine_state.image_problem(),
        json!({"image": state.config.worker_base_image.as_deref().unwrap_or("automatic")}),
    );
    let free = |dir: &std::path::Path| crate::readiness::free_bytes(dir).ok();
    let disk = check(
        (!storage.is_empty()).then(|| storage.join("; ")),
        json!({
            "data_dir_free_bytes": free(&state.config.data_dir),
            "logs_dir_free_bytes": free(&state.config.logs_dir),
            "min_free_bytes": state.config.min_free_disk_bytes,
        }),
    );
    // A missing runner image is pulled by the first run, so it does not make the
    // server unready (a load balancer would otherwise never send that run).
    let named = [
        ("database", database, true),
        ("pipelines", pipelines, true),
        ("engine", engine, true),
        ("runner_image", image, false),
        ("disk", disk, true),
    ];
    let problems: Vec<String> = named
        .iter()
        .filter(|(_, _, required)| *required)
        .filter_map(|(_, (p, _), _)| p.clone())
        .collect();
    let warnings: Vec<String> = named
        .iter()
        .filter(|(_, _, required)| !*required)
        .filter_map(|(_, (p, _), _)| p.clone())
        .collect();
    let checks: serde_json::Map<String, Value> = named
        .into_iter()
        .map(|(name, (_, answer), _)| (name.to_string(), answer))
        .collect();
    let ready = problems.is_empty();
    let body = json!({
        "ready": ready,
        "status": if ready { "ready" } else { "not_ready" },
        "version": env!("CARGO_PKG_VERSION"),
        "checks": checks,
        "reason": problems.first(),
        "problems": problems,
        "warnings": warnings,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}
