//! The HTTP surface: server-rendered pages and their fragments, live log
//! streams (SSE), the JSON API under `/api`, static assets and `/health`.

mod api;
mod assets;
mod error;
mod log_stream;
mod pipeline_pages;
mod run_pages;
mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::Pool;
use crate::pipelines::PipelineRegistry;
use crate::runner::Runner;

pub use error::{ApiError, AppError};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: Pool,
    pub registry: Arc<PipelineRegistry>,
    pub runner: Runner,
    /// Ends live streams when the server shuts down.
    pub shutdown: CancellationToken,
    pub started: Instant,
}

/// All routes, behind the access layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pipeline_pages::router())
        .merge(run_pages::router())
        .nest("/api", api::router())
        .merge(assets::router())
        .route("/health", get(health))
        .layer(axum::middleware::from_fn(crate::auth::access_guard))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}

/// True when the request came from htmx (it then wants a fragment, not a page).
pub fn is_htmx(headers: &axum::http::HeaderMap) -> bool {
    headers.get("HX-Request").is_some_and(|v| v == "true")
}
