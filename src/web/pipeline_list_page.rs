//! The pipelines list page: 100 pipelines a page with a search, its fragment
//! (refreshed every 5 s with the same search and page), and the Refresh action.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::page_query::PageQuery as Query;
use super::pipeline_list::{self, MAX_SEARCH_CHARS, PAGE_SIZE, Search, StateFilter, page_count};
use super::views::PipelineRow;
use super::{AppError, AppState, is_htmx};
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list_page))
        .route("/fragments/pipelines", get(list_fragment))
        .route("/pipelines/refresh", post(refresh))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    /// Search in names, tags and descriptions.
    q: Option<String>,
    /// Read by hand, so a bad value gets the error page rather than plain text.
    page: Option<String>,
    tag: Option<String>,
    /// `ready`, `invalid` or `disabled`.
    state: Option<String>,
}

/// `page`: digits (a number past the end shows the last page); empty is page 1.
fn parse_page(raw: Option<&str>) -> Result<usize, AppError> {
    match raw.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(1),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Ok(p.parse().unwrap_or(usize::MAX)),
        Some(p) => Err(AppError::BadRequest(format!(
            "page must be a whole number from 1, not `{}`",
            crate::pipelines::fields::shown(p)
        ))),
    }
}

/// One page of the pipeline list, as the page and its fragment show it.
pub(super) struct ListView {
    rows: Vec<PipelineRow>,
    search: String,
    tag: String,
    state: String,
    /// Every tag in use, for the filter.
    tags: Vec<String>,
    page: usize,
    pages: usize,
    matching: usize,
    all: usize,
}

impl ListView {
    /// All of `rows` on one page, unsearched.
    #[cfg(test)]
    pub(super) fn single_page(rows: Vec<PipelineRow>) -> Self {
        let n = rows.len();
        Self {
            rows,
            search: String::new(),
            tag: String::new(),
            state: String::new(),
            tags: Vec::new(),
            page: 1,
            pages: 1,
            matching: n,
            all: n,
        }
    }

    /// The query of page `page` of this search.
    fn link(&self, page: usize) -> String {
        let page = page.to_string();
        let mut query = vec![
            ("q", self.search.as_str()),
            ("tag", self.tag.as_str()),
            ("state", self.state.as_str()),
        ];
        if page != "1" {
            query.push(("page", &page));
        }
        query.retain(|(_, v)| !v.is_empty());
        serde_urlencoded::to_string(query).unwrap_or_default()
    }

    fn current_link(&self) -> String {
        self.link(self.page)
    }

    /// "1–100 of 5 000 pipelines · page 1 of 50", or "3 of 300 pipelines match “etl”".
    fn count_text(&self) -> String {
        let range = if self.matching == 0 {
            "None".to_string()
        } else {
            format!("{}–{}", self.first_shown(), self.last_shown())
        };
        let what = if self.search.is_empty() && self.tag.is_empty() && self.state.is_empty() {
            format!("{range} of {} pipelines", self.matching)
        } else {
            format!(
                "{range} of {} pipelines matching {} ({} in all)",
                self.matching,
                self.filter_text(),
                self.all
            )
        };
        format!("{what} · page {} of {}", self.page, self.pages)
    }

    /// “etl”, tag nightly, invalid — what the list is narrowed by.
    fn filter_text(&self) -> String {
        let mut parts = Vec::new();
        if !self.search.is_empty() {
            parts.push(format!("“{}”", self.search));
        }
        if !self.tag.is_empty() {
            parts.push(format!("tag {}", self.tag));
        }
        if !self.state.is_empty() {
            parts.push(self.state.clone());
        }
        parts.join(", ")
    }

    fn first_shown(&self) -> usize {
        if self.rows.is_empty() {
            0
        } else {
            (self.page - 1) * PAGE_SIZE + 1
        }
    }

    fn last_shown(&self) -> usize {
        (self.page - 1) * PAGE_SIZE + self.rows.len()
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/pipelines.html")]
struct ListPage {
    view: ListView,
    dir: String,
    dir_error: String,
    watch_problem: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/pipelines_table.html")]
pub(super) struct ListFragment {
    pub(super) view: ListView,
}

/// The page of the list that `q` asks for; a page past the end shows the last one.
async fn list_view(state: &AppState, q: &ListQuery) -> Result<(ListView, String), AppError> {
    let text = q.q.as_deref().unwrap_or_default();
    let tag = q.tag.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let wanted = match q.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(StateFilter::parse(s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown state `{}` (use ready, invalid or disabled)",
                crate::pipelines::fields::shown(s)
            ))
        })?),
    };
    let search = Search::new(text)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "the search is longer than {MAX_SEARCH_CHARS} characters"
            ))
        })?
        .with_tag(tag.map(str::to_string))
        .with_state(wanted);
    let snapshot = state.registry.snapshot();
    let all_matching = pipeline_list::select(&snapshot, &search, 0, usize::MAX);
    let pages = page_count(all_matching.matching);
    let page = parse_page(q.page.as_deref())?.clamp(1, pages);
    let start = (page - 1) * PAGE_SIZE;
    let found = pipeline_list::Selection {
        matching: all_matching.matching,
        pipelines: all_matching
            .pipelines
            .into_iter()
            .skip(start)
            .take(PAGE_SIZE)
            .collect(),
    };
    let names: Vec<&str> = found.pipelines.iter().map(|p| p.name.as_str()).collect();
    let stats = db::run_stats::pipeline_stats_for(&state.pool, &names).await?;
    let mut rows = Vec::with_capacity(found.pipelines.len());
    // One statement: an index read per pipeline shown (at most a page of them).
    let mut latest = std::collections::HashMap::<String, Vec<_>>::new();
    for (pipeline, id, status) in db::dashboard::last_outcomes_of(&state.pool, &names, 10).await? {
        latest.entry(pipeline).or_default().push((id, status));
    }
    for p in &found.pipelines {
        let mut row = PipelineRow::new(p, stats.get(&p.name));
        let outcomes = latest.remove(&p.name).unwrap_or_default();
        if !outcomes.is_empty() {
            row.strip = super::dashboard_charts::outcome_strip(&outcomes);
        }
        rows.push(row);
    }
    let view = ListView {
        rows,
        search: text.trim().to_string(),
        tag: tag.unwrap_or_default().to_string(),
        state: wanted.map(|w| w.as_str().to_string()).unwrap_or_default(),
        tags: pipeline_list::all_tags(&snapshot),
        page,
        pages,
        matching: found.matching,
        all: snapshot.pipelines.len(),
    };
    Ok((view, snapshot.dir_error.clone().unwrap_or_default()))
}

async fn list_page(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<ListPage, AppError> {
    let (view, dir_error) = list_view(&state, &q).await?;
    Ok(ListPage {
        view,
        dir: state.registry.root().display().to_string(),
        dir_error,
        watch_problem: state.registry.watch_problem().unwrap_or_default(),
    })
}

async fn list_fragment(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, AppError> {
    let view = list_view(&state, &q).await?.0;
    // A search or page change shows in the address bar (replaced, so the 5 s
    // refresh adds no history entries): reload and Back keep it.
    let url = match view.current_link() {
        link if link.is_empty() => "/pipelines".to_string(),
        link => format!("/pipelines?{link}"),
    };
    let mut response = ListFragment { view }.into_response();
    if is_htmx(&headers)
        && let Ok(value) = axum::http::HeaderValue::from_str(&url)
    {
        response.headers_mut().insert("HX-Replace-Url", value);
    }
    Ok(response)
}

async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    state.registry.refresh().await;
    if is_htmx(&headers) {
        let q = Query(ListQuery::default());
        return list_fragment(State(state), headers, q).await;
    }
    Ok(Redirect::to("/pipelines").into_response())
}
