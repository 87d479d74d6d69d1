//! The Scheduler pages: every job (pipeline, run configuration, schedule in
//! plain words, next fire time, override state), and one job's next fire times,
//! recent runs and slot ledger, with enable / disable / follow-the-file buttons.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;

use super::views::{RunRow, fmt_time, short_id};
use super::{AppError, AppState};
use crate::db;
use crate::scheduler::view::JobView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/scheduler", get(list_page))
        .route("/scheduler/{id}", get(job_page))
        .route("/scheduler/{id}/enabled", post(set_enabled))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/scheduler.html")]
struct ListPage {
    /// Each job with its next five fire times.
    jobs: Vec<(JobView, Vec<String>)>,
    running: bool,
}

async fn list_page(State(state): State<AppState>) -> Result<ListPage, AppError> {
    let specs = state.scheduler.jobs();
    let now = Utc::now();
    let jobs = state
        .scheduler
        .job_views()
        .await?
        .into_iter()
        .map(|view| {
            let next = match (view.enabled, specs.get(&view.id)) {
                (true, Some(spec)) => spec
                    .timing
                    .upcoming(now, 5)
                    .iter()
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .collect(),
                _ => Vec::new(),
            };
            (view, next)
        })
        .collect();
    Ok(ListPage {
        jobs,
        running: state.config.scheduler_enabled,
    })
}

/// One ledger row as shown.
struct SlotLine {
    time: String,
    outcome: String,
    reason: String,
    run_id: String,
    run_short: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/scheduler_job.html")]
struct JobPage {
    job: JobView,
    next: Vec<String>,
    runs: Vec<RunRow>,
    slots: Vec<SlotLine>,
}

async fn job_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<JobPage, AppError> {
    let Some((job, spec)) = state.scheduler.job_view(&id).await? else {
        return Err(AppError::NotFound(format!(
            "scheduler job `{}` not found; jobs come from the pipelines' schedules",
            crate::pipelines::fields::shown(&id)
        )));
    };
    let next = spec
        .timing
        .upcoming(Utc::now(), 5)
        .iter()
        .map(|t| {
            if spec.timing.tz == chrono_tz::UTC {
                fmt_time(t)
            } else {
                let local = t.with_timezone(&spec.timing.tz);
                format!("{} ({})", fmt_time(t), local.format("%Y-%m-%d %H:%M:%S %Z"))
            }
        })
        .collect();
    let runs = db::schedule::job_runs(&state.pool, &id, 20)
        .await?
        .iter()
        .map(RunRow::new)
        .collect();
    let slots = db::schedule::slots(&state.pool, &id, 100)
        .await?
        .into_iter()
        .map(|s| {
            let run_id = s.run_id.unwrap_or_default();
            SlotLine {
                time: fmt_time(&s.scheduled_time),
                outcome: s.outcome,
                reason: s.reason,
                run_short: short_id(&run_id),
                run_id,
            }
        })
        .collect();
    Ok(JobPage {
        job,
        next,
        runs,
        slots,
    })
}

#[derive(Deserialize)]
struct EnabledForm {
    /// `true`, `false`, or `file` (drop the override).
    enabled: String,
}

async fn set_enabled(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<EnabledForm>,
) -> Result<Response, AppError> {
    let enabled = match form.enabled.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        "file" => None,
        other => {
            return Err(AppError::BadRequest(format!(
                "enabled must be true, false or file, got `{}`",
                crate::pipelines::fields::shown(other)
            )));
        }
    };
    if !state.scheduler.set_enabled(&id, enabled).await? {
        return Err(AppError::NotFound(format!(
            "scheduler job `{}` not found",
            crate::pipelines::fields::shown(&id)
        )));
    }
    let target = format!("/scheduler/{id}");
    if super::is_htmx(&headers) {
        return Ok(([("HX-Redirect", target)], "").into_response());
    }
    Ok(axum::response::Redirect::to(&target).into_response())
}
