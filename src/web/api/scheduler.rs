//! `/api/scheduler/jobs…` with Fast-Flow's paths and fields: the jobs that
//! pipeline.json declares, enable/disable overrides, next fire times, the runs
//! a job started and its slot ledger.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiQuery, JsonBody, RunJson, check_limit, run_list_response};
use crate::db;
use crate::scheduler::jobs::JobSpec;
use crate::scheduler::view::JobView;
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scheduler/jobs", get(list_jobs))
        .route("/scheduler/jobs/{id}", get(get_job).put(put_job))
        .route("/scheduler/jobs/{id}/next-runs", get(next_runs))
        .route("/scheduler/jobs/{id}/runs", get(job_runs))
        .route("/scheduler/jobs/{id}/slots", get(job_slots))
}

async fn list_jobs(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.scheduler.job_views().await?).into_response())
}

async fn find(state: &AppState, id: &str) -> Result<(JobView, JobSpec), ApiError> {
    state.scheduler.job_view(id).await?.ok_or_else(|| {
        ApiError(AppError::NotFound(format!(
            "scheduler job `{}` not found (jobs come from the pipelines' schedules; see GET /api/scheduler/jobs)",
            crate::pipelines::fields::shown(id)
        )))
    })
}

async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(find(&state, &id).await?.0).into_response())
}

/// `{"enabled": true|false}` stores an override; `{"enabled": null}` returns the
/// job to what pipeline.json says.
async fn put_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    find(&state, &id).await?;
    let enabled = parse_enabled(body)?;
    if !state.scheduler.set_enabled(&id, enabled).await? {
        return Err(AppError::NotFound(format!(
            "scheduler job `{}` not found",
            crate::pipelines::fields::shown(&id)
        ))
        .into());
    }
    tracing::info!(job = %id, override_ = ?enabled, "scheduler job override set");
    Ok(Json(find(&state, &id).await?.0).into_response())
}

fn parse_enabled(body: Option<Value>) -> Result<Option<bool>, AppError> {
    let bad = || {
        AppError::BadRequest(
            "body must be {\"enabled\": true}, {\"enabled\": false} or {\"enabled\": null} (follow pipeline.json)"
                .into(),
        )
    };
    let Some(Value::Object(mut obj)) = body else {
        return Err(bad());
    };
    let enabled = match obj.remove("enabled") {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Null) => None,
        _ => return Err(bad()),
    };
    if let Some(unknown) = obj.keys().next() {
        return Err(AppError::BadRequest(format!(
            "unknown field `{}` (only `enabled` can be changed; the schedule itself lives in pipeline.json)",
            crate::pipelines::fields::shown(unknown)
        )));
    }
    Ok(enabled)
}

#[derive(Deserialize)]
struct CountQuery {
    count: Option<i64>,
}

async fn next_runs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CountQuery>,
) -> Result<Response, ApiError> {
    let (view, spec) = find(&state, &id).await?;
    let count = match q.count.unwrap_or(5) {
        c @ 1..=100 => c as usize,
        c => {
            return Err(
                AppError::BadRequest(format!("count must be between 1 and 100, got {c}")).into(),
            );
        }
    };
    let times = spec.timing.upcoming(Utc::now(), count);
    Ok(Json(json!({
        "job_id": view.id,
        "enabled": view.enabled,
        "timezone": view.timezone,
        "next_runs": times,
    }))
    .into_response())
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

/// A job's history stays readable after its schedule left pipeline.json.
async fn known(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.scheduler.jobs().contains_key(id)
        || db::schedule::job(&state.pool, id).await?.is_some()
    {
        return Ok(());
    }
    find(state, id).await.map(|_| ())
}

async fn job_runs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Response, ApiError> {
    known(&state, &id).await?;
    let limit = check_limit(q.limit, 50)?;
    let runs = db::schedule::job_runs(&state.pool, &id, limit).await?;
    let shown: Vec<RunJson> = runs.iter().map(RunJson::list).collect();
    run_list_response(&shown, shown.len())
}

async fn job_slots(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Response, ApiError> {
    known(&state, &id).await?;
    let limit = check_limit(q.limit, 100)?;
    Ok(Json(db::schedule::slots(&state.pool, &id, limit).await?).into_response())
}
