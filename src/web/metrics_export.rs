//! `GET /metrics`: the Prometheus text format for a scraper, with the values
//! only the database and the runner know read at scrape time.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> Result<Response, AppError> {
    let (queued, running) = crate::db::dashboard::active_now(&state.pool).await?;
    let database_bytes = crate::db::size_bytes(&state.pool).await?;
    let active_containers = state.runner.active_count();
    let now = crate::prometheus::ScrapeValues {
        queued,
        running,
        active_containers: i64::try_from(active_containers).unwrap_or(i64::MAX),
        database_bytes,
    };
    let text = crate::prometheus::metrics()
        .render(&now)
        .map_err(|e| AppError::Internal(format!("encoding the metrics failed: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
