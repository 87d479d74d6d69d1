//! `/api/system` and `/api/stats`: retention cleanup on demand, the version and
//! release check, and daily counters.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::ApiQuery;
use crate::db;
use crate::web::{ApiError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/system/cleanup", post(run_cleanup))
        .route("/stats/daily", get(daily_stats))
        .route("/system/version", get(version))
}

#[derive(Deserialize)]
struct VersionQuery {
    #[serde(default)]
    force_check: bool,
}

/// This build's version and the latest release (Fast-Flow 1.x's answer);
/// `force_check=true` checks the release feed now (at most once a minute).
async fn version(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Json<crate::release_check::VersionInfo> {
    Json(if q.force_check {
        state.release_check.check_now().await
    } else {
        state.release_check.current()
    })
}

/// Runs the retention cleanup now and reports what it removed.
/// A cleanup that takes longer than [`crate::retention::CLEANUP_WAIT`] goes on in
/// the background: `202 {"running": true}`.
async fn run_cleanup(State(state): State<AppState>) -> Result<Response, ApiError> {
    let wait = crate::retention::CLEANUP_WAIT;
    match crate::retention::cleanup_detached(state.pool.clone(), state.config.clone(), wait).await? {
        Some(report) => Ok(Json(report).into_response()),
        None => Ok((
            axum::http::StatusCode::ACCEPTED,
            Json(serde_json::json!({
                "running": true,
                "message": "the cleanup continues in the background; the server log reports what it removed",
            })),
        )
            .into_response()),
    }
}

#[derive(Deserialize)]
struct DaysQuery {
    days: Option<i64>,
}

/// Runs per day and pipeline (kept when retention deletes the runs themselves).
async fn daily_stats(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> Result<Response, ApiError> {
    let days = q.days.unwrap_or(30).clamp(1, 3650);
    Ok(Json(db::run_stats::daily_counters(&state.pool, days).await?).into_response())
}
