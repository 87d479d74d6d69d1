//! The HTTP surface: server-rendered pages and their fragments, live log
//! streams (SSE), the JSON API under `/api`, static assets and `/health`.

pub mod access_layer;
pub mod access_table;
mod account_status;
pub mod api;
pub mod assets;
mod audit_page;
mod audit_query;
pub mod audit_trail;
mod charts;
mod client_addr;
pub mod csrf;
mod dashboard_charts;
mod dashboard_page;
mod error;
mod history_chart;
mod identity;
mod invite_page;
mod log_render;
mod log_stream;
pub(crate) mod login_pages;
mod metrics_export;
mod metrics_stream;
mod notify_form;
mod notify_page;
mod oauth_pages;
mod page_query;
mod pipeline_facts;
mod pipeline_list;
mod pipeline_list_page;
mod pipeline_pages;
mod pipeline_secrets;
mod pipeline_tabs;
mod probes;
#[cfg(test)]
mod render_properties;
mod replay_cache;
mod run_groups;
mod run_list_page;
mod run_pages;
mod scheduler_pages;
mod secret_store;
mod secrets_page;
pub mod server;
pub mod sessions;
mod settings_page;
pub(crate) mod sign_in_checks;
mod source_view;
mod sse_bytes;
mod stream_guard;
mod sync_page;
mod sync_repo_page;
mod system_page;
mod user_admin;
mod users_page;
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
/// The pipeline page's tabs, as `?tab=` names them.
pub use pipeline_pages::TABS as PIPELINE_TABS;

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
    /// One permit per open live stream (`MAX_SSE_STREAMS`).
    pub sse_slots: Arc<tokio::sync::Semaphore>,
    pub scheduler: crate::scheduler::Scheduler,
    /// `WEBHOOK_RATE_LIMIT` per client address.
    pub webhook_limiter: Arc<api::webhooks::Limiter>,
    /// The git sync, when `GIT_REPO_URL` is set.
    /// Where the pipelines come from (a git sync or PIPELINES_DIR).
    pub deployment: Arc<crate::gitsync::Deployment>,
    /// Encrypts and decrypts stored secrets (`ENCRYPTION_KEY(S)`).
    pub cipher: Arc<crate::secrets::Cipher>,
    /// Sign-in and setup attempts per client address (`sign_in_checks::ATTEMPTS_PER_MINUTE`).
    pub login_limiter: Arc<api::webhooks::Limiter>,
    /// OAuth authorize and callback requests per client address (`OAUTH_RATE_LIMIT`).
    pub oauth_limiter: Arc<api::webhooks::Limiter>,
    /// Refused bearer tokens and token changes per client address
    /// (`access_layer::TOKEN_ATTEMPTS_PER_MINUTE`).
    pub token_limiter: Arc<api::webhooks::Limiter>,
    /// `GET /api/system/version` and the System page.
    pub release_check: Arc<crate::release_check::ReleaseCheck>,
}

impl AppState {
    /// The git sync in force (`None`: the pipelines come from `PIPELINES_DIR`).
    pub fn gitsync(&self) -> Option<Arc<crate::gitsync::GitSync>> {
        self.deployment.current()
    }

    /// A live-stream slot, or 503 when `MAX_SSE_STREAMS` are open.
    pub fn sse_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        self.sse_slots.clone().try_acquire_owned().map_err(|_| {
            AppError::Unavailable(format!(
                "too many live streams are open (MAX_SSE_STREAMS = {}); try again shortly",
                self.config.http.max_sse_streams
            ))
        })
    }
}

/// All routes, behind the access layer.
pub fn router(state: AppState) -> Router {
    let [x_frame, csp, nosniff, referrer] = crate::auth::security_headers();
    Router::new()
        .merge(dashboard_page::router())
        .merge(pipeline_list_page::router())
        .merge(pipeline_pages::router())
        .merge(run_pages::router())
        .merge(scheduler_pages::router())
        .merge(sync_page::router())
        .merge(sync_repo_page::router())
        .merge(secrets_page::router())
        .merge(login_pages::router())
        .merge(oauth_pages::router())
        .merge(invite_page::router())
        .merge(users_page::router())
        .merge(settings_page::router())
        .merge(notify_page::router())
        .merge(system_page::router())
        .merge(audit_page::router())
        .merge(metrics_export::router())
        .nest("/api", api::router())
        .merge(assets::router())
        .route("/health", get(probes::health))
        .route("/ready", get(probes::ready))
        .route("/fragments/engine-status", get(engine_status))
        // Pages and JSON compressed when the client asks (live streams are not:
        // tower-http's default predicate leaves text/event-stream alone). Around
        // the handlers only, so the middleware below sees plain responses.
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            after_discovery,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access_layer::enforce,
        ))
        .layer(sessions::layer(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.config.clone(),
            crate::auth::access_guard,
        ))
        // A slow body (one byte a second) keeps a connection busy, never past this.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            state.config.http.request_timeout,
        ))
        .layer(x_frame)
        .layer(csp)
        .layer(nosniff)
        .layer(referrer)
        // Spans name the path only: a query can carry an OAuth code or a setup token.
        // Each request has an id (the client's `X-Request-ID`, else a new UUID) on
        // its span, so every line it logs carries it, and in its answer.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    let id = req
                        .extensions()
                        .get::<tower_http::request_id::RequestId>()
                        .and_then(|r| r.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %logged_path(req.uri().path()))
                })
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(access_log_level(state.config.ops.log_format)),
                ),
        )
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            tower_http::request_id::MakeRequestUuid,
        ))
        .with_state(state)
}

/// The server answers before the first scan of `PIPELINES_DIR` is in (it can take
/// a while with thousands of folders); a request other than `/health`, `/ready`
/// and static files waits for it, so no page or trigger sees an empty list.
async fn after_discovery(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    let needs_pipelines = !(path == "/health" || path == "/ready" || path.starts_with("/static/"));
    if needs_pipelines && !state.registry.is_loaded() {
        state.registry.wait_loaded().await;
    }
    next.run(request).await
}

/// The banner every page loads: empty while the engine is reachable and has the
/// runner image.
async fn engine_status(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Html<String> {
    let escape = |text: &str| {
        askama::filters::escape(text, askama::filters::Html)
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let engine = &state.runner.deps().engine;
    let html = match (engine.down_reason(), engine.image_problem()) {
        (Some(reason), _) => format!(
            r#"<p class="banner error">⚠ Runs cannot start: {}. Queued runs will start by themselves when the engine is back.</p>"#,
            escape(&reason)
        ),
        (None, Some(problem)) => format!(r#"<p class="banner warn">⚠ {}</p>"#, escape(&problem)),
        (None, None) => String::new(),
    };
    axum::response::Html(html)
}

/// Every request is a log line in JSON logs (for a log pipeline); text logs,
/// read by a person, keep them at debug.
fn access_log_level(format: crate::config::operations::LogFormat) -> tracing::Level {
    match format {
        crate::config::operations::LogFormat::Json => tracing::Level::INFO,
        crate::config::operations::LogFormat::Text => tracing::Level::DEBUG,
    }
}

/// The path as logs show it: a webhook URL's last segment is its key.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/api/webhooks/") {
        Some(rest) if rest.contains('/') => {
            let pipeline = rest.split('/').next().unwrap_or_default();
            format!("/api/webhooks/{pipeline}/•••").into()
        }
        _ => path.into(),
    }
}

/// Sign-in and setup attempts a client address may make per minute.
pub fn login_attempts_per_minute() -> u32 {
    sign_in_checks::ATTEMPTS_PER_MINUTE
}

/// True when the request came from htmx (it then wants a fragment, not a page).
pub fn is_htmx(headers: &axum::http::HeaderMap) -> bool {
    headers.get("HX-Request").is_some_and(|v| v == "true")
}
