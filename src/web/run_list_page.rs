//! The runs list page and its fragment: filters, and paging by cursor ("older" /
//! "newer" links), so every page costs the same however long the history.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::page_query::PageQuery as Query;
use super::views::RunRow;
use super::{AppError, AppState};
use crate::db::{self, RunFilter};
use crate::run_status::{ErrorType, RunStatus};

const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs", get(list_page))
        .route("/fragments/runs", get(list_fragment))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    pipeline: Option<String>,
    status: Option<String>,
    /// The page number shown; without a cursor it is also the position (slow at depth).
    /// Read by hand, so a bad value gets the error page rather than plain text.
    page: Option<String>,
    /// Keyset paging: runs older than this cursor...
    after: Option<String>,
    /// ...or newer than this one.
    before: Option<String>,
    trigger: Option<String>,
    error_type: Option<String>,
    /// Dates (`YYYY-MM-DD`, UTC), both days included.
    from: Option<String>,
    to: Option<String>,
}

/// The most runs a narrowed list counts (trigger, error type, dates): beyond it
/// the page says "10000+", so a broad filter over years of history stays cheap.
const TOTAL_CAP: i64 = 10_000;

/// The triggers a run list can be narrowed to (each includes its `_retry` runs).
const TRIGGERS: [&str; 6] = [
    "manual",
    "api",
    "webhook",
    "scheduler",
    "downstream",
    "daemon_restart",
];
const ERROR_TYPES: [ErrorType; 6] = [
    ErrorType::PipelineError,
    ErrorType::DependencyError,
    ErrorType::Timeout,
    ErrorType::Oom,
    ErrorType::InfrastructureError,
    ErrorType::Cancelled,
];

/// A `YYYY-MM-DD` filter field: `None` when blank, a clear error when not a date.
fn date_field(name: &str, value: &Option<String>) -> Result<Option<NaiveDate>, AppError> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                AppError::BadRequest(format!(
                    "{name} must be a date like 2026-12-31, not `{}`",
                    crate::pipelines::fields::shown(v)
                ))
            }),
    }
}

fn day_start(d: NaiveDate) -> Option<DateTime<Utc>> {
    d.and_hms_opt(0, 0, 0).map(|t| t.and_utc())
}

struct ListView {
    runs: Vec<RunRow>,
    pipeline: String,
    status: String,
    trigger: String,
    error_type: String,
    from: String,
    to: String,
    page: i64,
    pages: i64,
    total: i64,
    /// The count stopped at [`TOTAL_CAP`]: there are more (shown as "10000+").
    total_capped: bool,
    /// Automatic retries shown under their first runs (not in `total`).
    retries: i64,
    /// The cursor this page was read with, as `("after" | "before", cursor)`.
    read_with: Option<(&'static str, String)>,
    older: Option<String>,
    newer: Option<String>,
    pipelines: Vec<String>,
    statuses: Vec<&'static str>,
    triggers: &'static [&'static str],
    error_types: Vec<&'static str>,
}

impl ListView {
    /// Whether any filter is set (an empty list then says so, with a way out).
    fn filtered(&self) -> bool {
        [
            &self.pipeline,
            &self.status,
            &self.trigger,
            &self.error_type,
            &self.from,
            &self.to,
        ]
        .iter()
        .any(|v| !v.is_empty())
    }

    /// The query of the page shown (the list refreshes itself with it).
    fn current_link(&self) -> String {
        let (key, cursor) = self.read_with.clone().unwrap_or(("after", String::new()));
        self.link(self.page, key, &cursor)
    }

    fn older_link(&self) -> String {
        self.link(
            self.page.saturating_add(1),
            "after",
            self.older.as_deref().unwrap_or_default(),
        )
    }

    fn newer_link(&self) -> String {
        let page = (self.page - 1).max(1);
        self.link(page, "before", self.newer.as_deref().unwrap_or_default())
    }

    fn link(&self, page: i64, key: &str, cursor: &str) -> String {
        let page = page.to_string();
        let mut query = vec![
            ("pipeline", self.pipeline.as_str()),
            ("status", self.status.as_str()),
            ("trigger", self.trigger.as_str()),
            ("error_type", self.error_type.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ];
        if !cursor.is_empty() {
            query.push((key, cursor));
        }
        if page != "1" {
            query.push(("page", &page));
        }
        query.retain(|(_, v)| !v.is_empty());
        serde_urlencoded::to_string(query).unwrap_or_default()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/runs.html")]
struct ListPage {
    view: ListView,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/runs_list.html")]
struct ListFragment {
    view: ListView,
}

async fn list_view(state: &AppState, q: ListQuery) -> Result<ListView, AppError> {
    let pipeline = q.pipeline.filter(|p| !p.is_empty());
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown status `{s}` (use PENDING, RUNNING, SUCCESS, FAILED or INTERRUPTED)"
            ))
        })?),
    };
    let page = match q.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => 1,
        // Digits past i64 are a page past the end (shown as the last page).
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<i64>().unwrap_or(i64::MAX)
        }
        Some(p) => p.parse::<i64>().map_err(|_| {
            AppError::BadRequest(format!(
                "page must be a whole number from 1, not `{}`",
                crate::pipelines::fields::shown(p)
            ))
        })?,
    }
    .max(1);
    let cursor = |text: &Option<String>| match text.as_deref().filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => db::RunCursor::decode(t).map(Some).ok_or_else(|| {
            AppError::BadRequest("this page link is damaged (its cursor is not valid)".into())
        }),
    };
    let (after, before) = (cursor(&q.after)?, cursor(&q.before)?);
    let trigger = q
        .trigger
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(t) = trigger
        && !TRIGGERS.contains(&t)
    {
        return Err(AppError::BadRequest(format!(
            "unknown trigger `{}` (use {})",
            crate::pipelines::fields::shown(t),
            TRIGGERS.join(", ")
        )));
    }
    let error_type = match q
        .error_type
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        None => None,
        Some(e) => Some(
            ERROR_TYPES
                .into_iter()
                .find(|t| t.as_str() == e)
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "unknown error type `{}` (use {})",
                        crate::pipelines::fields::shown(e),
                        ERROR_TYPES.map(|t| t.as_str()).join(", ")
                    ))
                })?,
        ),
    };
    let (from, to) = (date_field("from", &q.from)?, date_field("to", &q.to)?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(AppError::BadRequest(format!(
            "the date range is reversed: from {f} is after to {t}"
        )));
    }
    let read_with = match (&before, &after) {
        (Some(c), _) => Some(("before", c.encode())),
        (None, Some(c)) => Some(("after", c.encode())),
        (None, None) => None,
    };
    let mut filter = RunFilter {
        pipeline_name: pipeline.clone(),
        status,
        limit: PAGE_SIZE,
        offset: 0,
        after,
        before,
        trigger: trigger.map(str::to_string),
        error_type,
        since: from.and_then(day_start),
        // `to` includes its whole day.
        until: to.and_then(|d| d.succ_opt()).and_then(day_start),
        // Retries sit under their first run, unless a filter picks attempts by what they are.
        first_attempts: status.is_none()
            && trigger.is_none()
            && error_type.is_none()
            && from.is_none()
            && to.is_none(),
        finished_only: false,
    };
    let (mut total, total_capped) =
        db::run_list::total_up_to(&state.pool, &filter, TOTAL_CAP).await?;
    let retries = if filter.first_attempts {
        db::run_attempts::later_attempts_count(&state.pool, pipeline.as_deref()).await?
    } else {
        0
    };
    total = total.saturating_sub(retries).max(0);
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    // A page number alone (an old link) is an offset: correct, and slow at depth.
    // One past the end shows the last page, as the pipelines list does.
    let page = if read_with.is_none() {
        page.min(pages)
    } else {
        page
    };
    if read_with.is_none() {
        filter.offset = (page - 1).saturating_mul(PAGE_SIZE);
    }
    let found = db::run_list::page(&state.pool, &filter).await?;
    let runs = if filter.first_attempts {
        super::run_groups::with_later_attempts(&state.pool, &found.runs).await?
    } else {
        found.runs.iter().map(RunRow::new).collect()
    };
    Ok(ListView {
        runs,
        retries,
        pipeline: pipeline.unwrap_or_default(),
        status: status.map(|s| s.to_string()).unwrap_or_default(),
        trigger: trigger.unwrap_or_default().to_string(),
        error_type: error_type.map(|e| e.to_string()).unwrap_or_default(),
        from: from.map(|d| d.to_string()).unwrap_or_default(),
        to: to.map(|d| d.to_string()).unwrap_or_default(),
        page,
        pages,
        total,
        total_capped,
        read_with,
        older: found.next.map(|c| c.encode()),
        newer: found.previous.map(|c| c.encode()),
        pipelines: state
            .registry
            .snapshot()
            .pipelines
            .keys()
            .cloned()
            .collect(),
        statuses: RunStatus::ALL.iter().map(|s| s.as_str()).collect(),
        triggers: &TRIGGERS,
        error_types: ERROR_TYPES.iter().map(|e| e.as_str()).collect(),
    })
}

async fn list_page(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<ListPage, AppError> {
    Ok(ListPage {
        view: list_view(&state, q).await?,
    })
}

/// The list alone. When the filters or a pager link asked for it, the answer
/// tells htmx to put the page's own address in the history (`HX-Push-Url`), so
/// reload, back and a shared link keep the filters; the list's own refresh does not.
async fn list_fragment(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<axum::response::Response, AppError> {
    let view = list_view(&state, q).await?;
    let asked_by = headers.get("hx-trigger").and_then(|v| v.to_str().ok());
    let push = matches!(asked_by, Some("run-filters" | "runs-newer" | "runs-older"))
        .then(|| format!("/runs?{}", view.current_link()));
    let mut response = ListFragment { view }.into_response();
    if let Some(url) = push
        && let Ok(value) = axum::http::HeaderValue::from_str(&url)
    {
        response.headers_mut().insert("HX-Push-Url", value);
    }
    Ok(response)
}
