//! Run pages: one run's detail with its log following live over SSE, its
//! fragments, and the run actions (cancel, retry, clean up). The list is in
//! `run_list_page`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::StreamExt;
use serde::Deserialize;

use super::charts;
use super::log_render::LineView;
use super::log_stream::{Follow, Framer, blocking, follow, resume_after, with_permit};
use super::page_query::PageQuery as Query;
use super::sse_bytes;
use super::views::RunDetail;
use super::{AppError, AppState};
use crate::db::{self, Run};
use crate::runner::logs::{LogLine, log_path, tail_lines};
use crate::runner::metrics::{metrics_path, read_samples};

/// The run page shows this many of the last lines (and at most about this many
/// bytes of them); the rest is a download away.
const PAGE_LOG_LINES: usize = 5000;
const PAGE_LOG_BYTES: u64 = 2 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(super::run_list_page::router())
        .route("/runs/{id}", get(detail_page))
        .route("/fragments/runs/{id}/summary", get(summary_fragment))
        .route("/fragments/runs/{id}/log", get(log_fragment))
        .route("/fragments/runs/{id}/metrics", get(metrics_fragment))
        .route("/runs/{id}/log/stream", get(log_stream))
        .route("/runs/cleanup", axum::routing::post(cleanup))
        .route("/runs/{id}/cancel", axum::routing::post(cancel))
        .route("/runs/{id}/retry", axum::routing::post(retry))
}

async fn load(state: &AppState, id: &str) -> Result<Run, AppError> {
    db::runs::get(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("run `{id}` not found")))
}

/// Log lines ready for the template.
struct LogView {
    lines: Vec<LineView>,
    omitted: u64,
    last_seq: u64,
}

async fn log_view(state: &AppState, run: &Run) -> Result<LogView, AppError> {
    let path = log_path(&state.config.logs_dir, &run.id);
    let lines = blocking(move || tail_lines(&path, PAGE_LOG_LINES, PAGE_LOG_BYTES))
        .await
        .map_err(|e| AppError::internal("reading a run log", e))?;
    let first = lines.first().map(|l| l.seq).unwrap_or(1);
    let last_seq = lines.last().map(|l| l.seq).unwrap_or(0);
    Ok(LogView {
        lines: lines.iter().map(LineView::new).collect(),
        omitted: first.saturating_sub(1),
        last_seq,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/run.html")]
struct DetailPage {
    run: RunDetail,
    /// Server-rendered SVG (numbers only, built in `charts`).
    charts: String,
    /// The page follows the run over SSE: it is not finished, or its executor
    /// has not let go of it yet (a cancel is recorded before the container stops).
    live: bool,
    lines: Vec<LineView>,
    /// Lines before the first one shown.
    omitted: u64,
    /// Where the live stream continues.
    last_seq: u64,
    /// The notifications this run's outcome sent, with their results.
    notices: Vec<crate::db::notifications::Delivery>,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/run_summary.html")]
struct SummaryFragment {
    run: RunDetail,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/log_lines.html")]
struct LogLinesFragment {
    lines: Vec<LineView>,
}

/// The detail view, with the queue position of a waiting run.
async fn detail(state: &AppState, run: &Run) -> Result<RunDetail, AppError> {
    let mut view = RunDetail::new(run);
    view.stopping = run.status.is_terminal() && state.runner.is_executing(&run.id);
    view.children = crate::db::runs::children(&state.pool, &run.id)
        .await?
        .iter()
        .map(|c| (c.id.clone(), c.pipeline_name.clone(), c.status.to_string()))
        .collect();
    view.next_attempts = crate::db::run_list::next_attempts(&state.pool, &run.id)
        .await?
        .iter()
        .map(|n| {
            let when = match (n.status, n.not_before) {
                (crate::run_status::RunStatus::Pending, Some(t)) => {
                    format!("scheduled at {}", super::views::fmt_time(&t))
                }
                _ => String::new(),
            };
            (
                n.id.clone(),
                format!("attempt {} {}", n.attempt, n.status),
                when,
            )
        })
        .collect();
    if let Some(parent) = &run.parent_run_id
        && let Some(p) = crate::db::runs::get(&state.pool, parent).await?
    {
        view.parent_label = format!("{} ({})", p.pipeline_name, p.status);
    }
    if run.triggered_by == "scheduler" || run.triggered_by == "daemon_restart" {
        view.slot = crate::db::schedule::slot_of_run(&state.pool, &run.id)
            .await?
            .map(|s| (s.job_id, super::views::fmt_time(&s.scheduled_time)));
    }
    if let Some(info) = state.runner.queue_info(run).await? {
        view.waiting = format!(
            "#{} in the queue — {}",
            info.queue_position, info.waiting_reason
        );
    }
    Ok(view)
}

fn go_to(headers: &HeaderMap, target: String) -> axum::response::Response {
    if super::is_htmx(headers) {
        return ([("HX-Redirect", target)], "").into_response();
    }
    axum::response::Redirect::to(&target).into_response()
}

/// "Clean up now": applies the retention settings and says what was removed.
async fn cleanup(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::response::Response, AppError> {
    let wait = crate::retention::CLEANUP_WAIT;
    let done =
        crate::retention::cleanup_detached(state.pool.clone(), state.config.clone(), wait).await?;
    if !super::is_htmx(&headers) {
        return Ok(go_to(&headers, "/runs".into()));
    }
    let Some(r) = done else {
        return Ok(axum::response::Html(
            r#"<p class="banner info">The cleanup takes a while: it continues in the background, and the server log reports what it removed.</p>"#,
        )
        .into_response());
    };
    let text = if r.retention_days.is_none() && r.retention_runs.is_none() {
        "Retention is off: set LOG_RETENTION_DAYS and/or LOG_RETENTION_RUNS.".to_string()
    } else {
        format!(
            "Removed {} runs and {} files ({}).{}",
            r.runs_deleted,
            r.files_deleted,
            super::views::fmt_bytes(r.bytes_freed),
            if r.errors.is_empty() {
                String::new()
            } else {
                format!(" {} runs kept: files could not be removed.", r.errors.len())
            }
        )
    };
    Ok(axum::response::Html(format!(r#"<p class="banner info">{text}</p>"#)).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, AppError> {
    state.runner.cancel(&id).await?;
    Ok(go_to(&headers, format!("/runs/{id}")))
}

async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, AppError> {
    let run = state.runner.rerun(&id).await?;
    Ok(go_to(&headers, format!("/runs/{}", run.id)))
}

async fn detail_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<DetailPage, AppError> {
    let run = load(&state, &id).await?;
    let log = log_view(&state, &run).await?;
    Ok(DetailPage {
        run: detail(&state, &run).await?,
        charts: charts_for(&state, &run).await,
        live: !run.status.is_terminal() || state.runner.is_executing(&run.id),
        lines: log.lines,
        omitted: log.omitted,
        last_seq: log.last_seq,
        notices: crate::db::notifications::for_run(&state.pool, &run.id).await?,
    })
}

/// The charts of a run: at most a few hundred points (the file is read off the
/// async workers), with the limits in force drawn in.
async fn charts_for(state: &AppState, run: &Run) -> String {
    const CHART_POINTS: usize = 600;
    let path = metrics_path(&state.config.logs_dir, &run.id);
    let series = blocking(move || read_samples(&path, CHART_POINTS))
        .await
        .unwrap_or_default();
    // Empty axes would suggest a run that used nothing; say why there is no chart instead.
    if series.samples.is_empty() {
        let why = if run.container_started_at.is_none() {
            if run.status.is_terminal() {
                "No CPU or memory chart: the run ended before its container started."
            } else {
                "CPU and memory appear here once the container has started."
            }
        } else if run.status.is_terminal() {
            "No CPU or memory chart: the run ended before its first sample (taken about a second after the container starts)."
        } else {
            "Waiting for the first CPU and memory sample…"
        };
        return format!(r#"<p class="muted charts-empty">{why}</p>"#);
    }
    let limits = state
        .registry
        .get(&run.pipeline_name)
        .map(|p| crate::runner::limits::effective(&p.metadata.limits, &state.config).limits)
        .unwrap_or_default();
    let mb = |m: &Option<crate::pipelines::fields::MemorySize>| {
        m.as_ref().map(|x| x.bytes as f64 / 1_048_576.0)
    };
    charts::run_charts(
        &series.samples,
        limits.cpu_hard_limit,
        limits.cpu_soft_limit,
        mb(&limits.mem_hard_limit),
        mb(&limits.mem_soft_limit),
    )
}

/// The CPU and memory charts alone (the run page refreshes them while the run goes on).
async fn metrics_fragment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, AppError> {
    let run = load(&state, &id).await?;
    let mut response = axum::response::Html(charts_for(&state, &run).await).into_response();
    if run.status.is_terminal() && super::is_htmx(&headers) {
        // htmx stops polling on 286 (a plain client gets a plain 200).
        *response.status_mut() =
            axum::http::StatusCode::from_u16(286).unwrap_or(axum::http::StatusCode::OK);
    }
    Ok(response)
}

async fn summary_fragment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<SummaryFragment, AppError> {
    let run = load(&state, &id).await?;
    Ok(SummaryFragment {
        run: detail(&state, &run).await?,
    })
}

async fn log_fragment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<LogLinesFragment, AppError> {
    let run = load(&state, &id).await?;
    Ok(LogLinesFragment {
        lines: log_view(&state, &run).await?.lines,
    })
}

#[derive(Deserialize)]
struct StreamQuery {
    after: Option<u64>,
}

/// The UI's live log: each event carries rendered `<div>` lines for htmx to append.
async fn log_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, AppError> {
    load(&state, &id).await?;
    let permit = state.sse_permit()?;
    let after = resume_after(&headers, q.after);
    let framer = Framer {
        format: FRAME_HTML,
        frame: html_event,
    };
    // A status event first: the run may have moved between the page and the stream.
    let summary_state = state.clone();
    let summary_id = id.clone();
    // The summary's forms need the caller's CSRF token and role, as on the page.
    let caller = super::csrf::current();
    let items = futures_util::stream::once(async { Follow::Changed })
        .chain(follow(state, id, after, framer));
    let frames = items.then(move |item| {
        let state = summary_state.clone();
        let id = summary_id.clone();
        let caller = caller.clone();
        super::csrf::scope(caller, async move {
            match item {
                Follow::Framed(bytes) => bytes,
                Follow::Changed => status_event(&state, &id).await,
                Follow::End(status) => {
                    let mut out = status_event(&state, &id).await.to_vec();
                    out.extend_from_slice(&sse_bytes::event(Some("end"), None, status.as_str()));
                    axum::body::Bytes::from(out)
                }
                Follow::Error(e) => sse_bytes::event(Some("end"), None, &format!("error: {e}")),
            }
        })
    });
    Ok(sse_bytes::response(with_permit(frames, permit)))
}

/// One `status` event: the run's summary as it is now, for htmx to swap in.
/// Nothing if the run cannot be read (the next change or the end tries again).
async fn status_event(state: &AppState, id: &str) -> axum::body::Bytes {
    let Ok(run) = load(state, id).await else {
        return axum::body::Bytes::new();
    };
    let Ok(run) = detail(state, &run).await else {
        return axum::body::Bytes::new();
    };
    let html = SummaryFragment { run }.render().unwrap_or_default();
    sse_bytes::event(Some("status"), None, &html)
}

/// Where the UI's framing of a live batch is kept (see `LogBatch::framed`).
const FRAME_HTML: usize = 0;

/// One `line` event of rendered `<div>` lines, `id:` the last line's number.
fn html_event(lines: &[LogLine]) -> axum::body::Bytes {
    let last = lines.last().map(|l| l.seq);
    let lines = lines.iter().map(LineView::new).collect();
    let html = LogLinesFragment { lines }.render().unwrap_or_default();
    sse_bytes::event(Some("line"), last, &html)
}
