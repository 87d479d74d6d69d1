//! `/api/runs`: the filtered list, one run (with its queue position), its
//! metrics (stored and live), cancel and re-run.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiQuery, RunJson, check_limit, load_run, run_json, run_list_response};
use crate::db::{self, RunFilter};
use crate::run_status::RunStatus;
use crate::web::log_stream::{blocking, sse_response, with_permit};
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/metrics", get(run_metrics))
        .route("/runs/{id}/metrics/stream", get(run_metrics_stream))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/runs/{id}/retry", post(retry_run))
}

#[derive(Deserialize)]
struct RunsQuery {
    pipeline_name: Option<String>,
    status_filter: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
    /// Keyset paging: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

async fn list_runs(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Response, ApiError> {
    let limit = check_limit(q.limit, 50)?;
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError(AppError::BadRequest("offset must be >= 0".into())));
    }
    let status = match q.status_filter.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError(AppError::BadRequest(format!(
                "unknown status_filter `{}` (PENDING, RUNNING, SUCCESS, FAILED, INTERRUPTED)",
                crate::pipelines::fields::shown(s)
            )))
        })?),
    };
    let filter = RunFilter {
        pipeline_name: q.pipeline_name.filter(|p| !p.is_empty()),
        status,
        limit,
        offset,
        after: parse_cursor(q.cursor.as_deref(), offset)?,
        ..Default::default()
    };
    let keyset = filter.after.is_some();
    let (page, total) = db::run_list::list(&state.pool, &filter).await?;
    let body = RunListJson {
        runs: page.runs.iter().map(RunJson::list).collect(),
        total,
        // A keyset page has no page number.
        page: (!keyset).then(|| offset / limit + 1),
        page_size: limit,
        next_cursor: page.next.map(|c| c.encode()),
    };
    run_list_response(&body, body.runs.len())
}

/// The body of `GET /api/runs` (Fast-Flow 1.x fields plus `next_cursor`).
#[derive(Serialize)]
struct RunListJson<'a> {
    runs: Vec<RunJson<'a>>,
    total: i64,
    page: Option<i64>,
    page_size: i64,
    next_cursor: Option<String>,
}

/// The `cursor` parameter: absent or empty is the first page; it excludes `offset`.
fn parse_cursor(cursor: Option<&str>, offset: i64) -> Result<Option<db::RunCursor>, ApiError> {
    let Some(text) = cursor.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    if offset > 0 {
        return Err(ApiError(AppError::BadRequest(
            "use either cursor or offset, not both".into(),
        )));
    }
    db::RunCursor::decode(text).map(Some).ok_or_else(|| {
        ApiError(AppError::BadRequest(
            "cursor is not one this server gave out (use the next_cursor of a previous page)"
                .into(),
        ))
    })
}

async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = load_run(&state, &id).await?;
    let mut json = run_json(&run, true);
    if let Some(info) = state.runner.queue_info(&run).await? {
        json["queue_position"] = json!(info.queue_position);
        json["waiting_reason"] = json!(info.waiting_reason);
    }
    Ok(Json(json).into_response())
}

/// The run's samples and peaks, with the limits that apply.
async fn run_metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use crate::runner::metrics::{MAX_POINTS, metrics_path, read_samples};
    let run = load_run(&state, &id).await?;
    let path = metrics_path(&state.config.logs_dir, &run.id);
    let series = blocking(move || read_samples(&path, MAX_POINTS))
        .await
        .map_err(|e| AppError::internal("reading run metrics", e))?;
    let limits = state
        .registry
        .get(&run.pipeline_name)
        .map(|p| crate::runner::limits::effective(&p.metadata.limits, &state.config).limits)
        .unwrap_or_default();
    Ok(Json(json!({
        "run_id": run.id,
        "samples": series.samples,
        "samples_total": series.total,
        "samples_every": series.every,
        "peak_cpu_percent": run.peak_cpu_percent,
        "peak_memory_bytes": run.peak_memory_bytes,
        "soft_limit_warning": run.soft_limit_warning,
        "metrics_error": run.metrics_error,
        "cpu_hard_limit": limits.cpu_hard_limit,
        "cpu_soft_limit": limits.cpu_soft_limit,
        "mem_hard_limit": limits.mem_hard_limit,
        "mem_soft_limit": limits.mem_soft_limit,
    }))
    .into_response())
}

/// SSE: `event: metric` with one sample as JSON per event, then `event: end`.
async fn run_metrics_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use crate::web::metrics_stream::{MetricFollow, follow_metrics};
    load_run(&state, &id).await?;
    let permit = state.sse_permit()?;
    let events = follow_metrics(state, id).flat_map(|item| {
        let events: Vec<Event> = match item {
            MetricFollow::Samples(samples) => samples
                .iter()
                .map(|s| {
                    Event::default()
                        .event("metric")
                        .data(serde_json::to_string(s).unwrap_or_default())
                })
                .collect(),
            MetricFollow::End(status) => vec![
                Event::default()
                    .event("end")
                    .data(json!({"status": status}).to_string()),
            ],
        };
        futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    Ok(sse_response(with_permit(events, permit)).into_response())
}

async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let before = state.runner.cancel(&id).await?;
    let mut json = match db::runs::get(&state.pool, &id).await {
        Ok(Some(run)) => run_json(&run, false),
        // The cancel went through to the container; the row is written when the database allows.
        _ => json!({"id": id, "status": RunStatus::Interrupted}),
    };
    json["previous_status"] = json!(before);
    Ok(Json(json).into_response())
}

async fn retry_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.runner.rerun(&id).await?;
    Ok(Json(run_json(&run, false)).into_response())
}
