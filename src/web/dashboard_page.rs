//! The dashboard (`/`): what a team checks first — runs of the last 24 hours and
//! 7 days with their success rate, what runs and waits now, the latest failures
//! with their error line, the next scheduled runs, the engine, disk and queue,
//! a year of runs as a heat map, and each pipeline's last ten outcomes. The
//! body is a fragment (`/fragments/dashboard`) that htmx refreshes in place.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{Duration, Utc};

use super::dashboard_charts::{heat_map, outcome_strip};
use super::views::{fmt_ago, fmt_bytes, fmt_time, short_id};
use super::{AppError, AppState};
use crate::db;
use crate::run_status::RunStatus;

/// Pipelines shown with their outcome strip (the rest are a click away).
const STRIP_PIPELINES: usize = 30;
const FAILURES_SHOWN: i64 = 8;
const NEXT_RUNS_SHOWN: usize = 8;
/// An error line is cut to this many characters (the run page has it whole).
const ERROR_LINE_CHARS: usize = 160;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route("/fragments/dashboard", get(fragment))
}

/// Runs of a time window.
struct Window {
    total: i64,
    failed: i64,
    /// "93 %" of the finished ones, or "—" when none finished.
    success_rate: String,
}

fn window(counts: &[(RunStatus, i64)]) -> Window {
    let of = |s: RunStatus| {
        counts
            .iter()
            .filter(|(st, _)| *st == s)
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    let finished = of(RunStatus::Success) + of(RunStatus::Failed) + of(RunStatus::Interrupted);
    let success_rate = if finished == 0 {
        "—".to_string()
    } else {
        format!(
            "{:.0} %",
            of(RunStatus::Success) as f64 * 100.0 / finished as f64
        )
    };
    Window {
        total: counts.iter().map(|(_, n)| n).sum(),
        failed: of(RunStatus::Failed),
        success_rate,
    }
}

/// A failed run as listed: (id, short id, pipeline, when, error line).
struct Failure {
    id: String,
    short_id: String,
    pipeline: String,
    ago: String,
    at: String,
    error: String,
}

/// A pipeline with its strip: (name, SVG, "8 of 10 succeeded").
struct Strip {
    name: String,
    svg: String,
    summary: String,
}

struct Dashboard {
    day: Window,
    week: Window,
    running: i64,
    queued: i64,
    max_concurrent: usize,
    failures: Vec<Failure>,
    /// (pipeline, job id, "in 5 min", absolute time).
    next_runs: Vec<(String, String, String, String)>,
    engine: String,
    engine_ok: bool,
    image: String,
    disk: String,
    disk_ok: bool,
    heat: String,
    strips: Vec<Strip>,
    more_pipelines: usize,
    /// Pipelines whose files are invalid (they cannot run).
    invalid_pipelines: usize,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/dashboard.html")]
struct Page {
    d: Dashboard,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/dashboard.html")]
struct Fragment {
    d: Dashboard,
}

async fn page(State(state): State<AppState>) -> Result<Page, AppError> {
    Ok(Page {
        d: dashboard(&state).await?,
    })
}

async fn fragment(State(state): State<AppState>) -> Result<Fragment, AppError> {
    Ok(Fragment {
        d: dashboard(&state).await?,
    })
}

async fn dashboard(state: &AppState) -> Result<Dashboard, AppError> {
    let now = Utc::now();
    let pool = &state.pool;
    let day = window(&db::dashboard::statuses_since(pool, now - Duration::hours(24)).await?);
    let week = window(&db::dashboard::statuses_since(pool, now - Duration::days(7)).await?);
    let (queued, running) = db::dashboard::active_now(pool).await?;
    let failures = db::dashboard::recent_failures(pool, FAILURES_SHOWN)
        .await?
        .into_iter()
        .map(|r| Failure {
            short_id: short_id(&r.id),
            ago: fmt_ago(&r.started_at, now),
            at: fmt_time(&r.started_at),
            error: error_line(&r),
            pipeline: r.pipeline_name,
            id: r.id,
        })
        .collect();
    let mut next: Vec<_> = state
        .scheduler
        .job_views()
        .await?
        .into_iter()
        .filter(|j| j.enabled)
        .filter_map(|j| j.next_run_time.map(|t| (t, j.pipeline_name, j.id)))
        .collect();
    next.sort();
    let next_runs = next
        .into_iter()
        .take(NEXT_RUNS_SHOWN)
        .map(|(t, pipeline, job)| (pipeline, job, fmt_in(t - now), fmt_time(&t)))
        .collect();
    let engine_state = &state.runner.deps().engine;
    let (engine, engine_ok) = match (engine_state.down_reason(), engine_state.image_problem()) {
        (Some(reason), _) => (format!("unreachable: {reason}"), false),
        (None, Some(problem)) => (problem, false),
        (None, None) => ("reachable".to_string(), true),
    };
    let (disk, disk_ok) = match crate::readiness::free_bytes(&state.config.logs_dir) {
        Ok(free) => (
            format!("{} free for logs", fmt_bytes(free)),
            free >= state.config.min_free_disk_bytes,
        ),
        Err(e) => (format!("cannot be read: {e}"), false),
    };
    let heat = heat_map(&db::dashboard::days(pool, 371).await?, now.date_naive());
    let snapshot = state.registry.snapshot();
    let mut strips = Vec::new();
    let shown: Vec<&str> = snapshot
        .pipelines
        .keys()
        .take(STRIP_PIPELINES)
        .map(String::as_str)
        .collect();
    let mut latest = std::collections::HashMap::<String, Vec<(String, RunStatus)>>::new();
    for (pipeline, id, status) in db::dashboard::last_outcomes_of(pool, &shown, 10).await? {
        latest.entry(pipeline).or_default().push((id, status));
    }
    for name in shown {
        let outcomes = latest.remove(name).unwrap_or_default();
        let succeeded = outcomes
            .iter()
            .filter(|(_, s)| *s == RunStatus::Success)
            .count();
        let summary = if outcomes.is_empty() {
            "no runs yet".to_string()
        } else {
            format!("{succeeded} of {} succeeded", outcomes.len())
        };
        strips.push(Strip {
            name: name.to_string(),
            svg: outcome_strip(&outcomes),
            summary,
        });
    }
    Ok(Dashboard {
        day,
        week,
        running,
        queued,
        max_concurrent: state.config.max_concurrent_runs,
        failures,
        next_runs,
        engine,
        engine_ok,
        image: super::system_page::image_in_use(state).await,
        disk,
        disk_ok,
        heat,
        more_pipelines: snapshot.pipelines.len().saturating_sub(STRIP_PIPELINES),
        invalid_pipelines: snapshot
            .pipelines
            .values()
            .filter(|p| !p.is_valid())
            .count(),
        strips,
    })
}

/// The first line of a run's error, cut short: what the list can show.
fn error_line(run: &db::Run) -> String {
    let text = run.error_message.as_deref().unwrap_or_default();
    let first = text.lines().next().unwrap_or_default();
    let mut line: String = first.chars().take(ERROR_LINE_CHARS).collect();
    if first.chars().count() > ERROR_LINE_CHARS {
        line.push('…');
    }
    match run.error_type {
        Some(t) if line.is_empty() => t.to_string(),
        Some(t) => format!("{t}: {line}"),
        None => line,
    }
}

/// "in 5 min", "in 3 h", "in 2 days"; a time already due says "due now".
fn fmt_in(d: Duration) -> String {
    let secs = d.num_seconds();
    match secs {
        i64::MIN..=29 => "due now".to_string(),
        30..=3_599 => format!("in {} min", (secs + 30) / 60),
        3_600..=86_399 => format!("in {} h", secs / 3_600),
        _ => format!("in {} days", secs / 86_400),
    }
}
