//! The pipelines list page: 100 pipelines a page with a search, its fragment
//! (refreshed every 5 s with the same search and page), and the Refresh action.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::pipeline_list::{self, MAX_SEARCH_CHARS, PAGE_SIZE, Search, page_count};
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
            page: 1,
            pages: 1,
            matching: n,
            all: n,
        }
    }

    /// The query of page `page` of this search.
    fn link(&self, page: usize) -> String {
        let page = page.to_string();
        let mut query = vec![("q", self.search.as_str())];
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
        let what = if self.search.is_empty() {
            format!("{range} of {} pipelines", self.matching)
        } else {
            format!(
                "{range} of {} pipelines matching “{}” ({} in all)",
                self.matching, self.search, self.all
            )
        };
        format!("{what} · page {} of {}", self.page, self.pages)
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
    let search = Search::new(text).ok_or_else(|| {
        AppError::BadRequest(format!(
            "the search is longer than {MAX_SEARCH_CHARS} characters"
        ))
    })?;
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
    let view = ListView {
        rows: found
            .pipelines
            .iter()
            .map(|p| PipelineRow::new(p, stats.get(&p.name)))
            .collect(),
        search: text.trim().to_string(),
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
