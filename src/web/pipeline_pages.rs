//! Pipeline pages: the list, one pipeline's detail, their fragments, and the
//! Run / Refresh form actions.

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::pipeline_facts::{cores, retry_delays, run_config_summary, webhook_urls};
use super::pipeline_list::{self, MAX_SEARCH_CHARS, PAGE_SIZE, Search, page_count};
use super::views::{PipelineRow, RunRow};
use super::{AppError, AppState, is_htmx};
use crate::db::{self, RunFilter};
use crate::pipelines::Pipeline;
use crate::runner::TriggerRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_page))
        .route("/pipelines", get(list_page))
        .route("/fragments/pipelines", get(list_fragment))
        .route("/pipelines/refresh", post(refresh))
        .route("/pipelines/{name}", get(detail_page))
        .route(
            "/fragments/pipelines/{name}/runs",
            get(recent_runs_fragment),
        )
        .route("/pipelines/{name}/run", post(run_from_form))
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

#[derive(Template, WebTemplate)]
#[template(path = "pages/pipeline.html")]
pub(super) struct DetailPage {
    row: PipelineRow,
    metadata_file: String,
    limits: Vec<(&'static str, String)>,
    settings: Vec<(&'static str, String)>,
    env_keys: Vec<String>,
    requirements: String,
    has_requirements: bool,
    runs: Vec<RunRow>,
    name: String,
    jobs: Vec<crate::scheduler::view::JobView>,
    /// (run configuration or "pipeline", webhook URL)
    webhooks: Vec<(String, String)>,
    /// (pipeline, when, run configuration)
    downstream: Vec<(String, String, String)>,
    /// (id, what it changes)
    run_configs: Vec<(String, String)>,
    /// (file, URL on the hosting site) when the pipeline comes from GitHub or GitLab.
    source_links: Vec<(String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/runs_table.html")]
struct RunsFragment {
    runs: Vec<RunRow>,
}

fn find(state: &AppState, name: &str) -> Result<std::sync::Arc<Pipeline>, AppError> {
    state
        .registry
        .get(name)
        .ok_or_else(|| AppError::NotFound(format!("pipeline `{name}` not found")))
}

async fn recent_runs(state: &AppState, name: &str) -> Result<Vec<RunRow>, AppError> {
    let filter = RunFilter {
        pipeline_name: Some(name.to_string()),
        status: None,
        limit: 20,
        ..Default::default()
    };
    let runs = db::run_list::page(&state.pool, &filter).await?.runs;
    Ok(runs.iter().map(RunRow::new).collect())
}

async fn detail_page(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<DetailPage, AppError> {
    let p = find(&state, &name)?;
    let stats = db::run_stats::pipeline_stats_of(&state.pool, &p.name).await?;
    let runs = recent_runs(&state, &name).await?;
    let jobs = state.scheduler.jobs_of(&name).await?;
    let mut page = detail_view(&p, &state.config, Some(&stats), runs, jobs);
    if let Some(sync) = &state.gitsync {
        let files = [
            p.metadata_file.as_deref().unwrap_or("pipeline.json"),
            "main.py",
        ];
        page.source_links = files
            .iter()
            .filter_map(|f| {
                let url = sync.spec().web_url(&format!("{}/{f}", p.name))?;
                Some((f.to_string(), url))
            })
            .collect();
    }
    Ok(page)
}

/// The detail page of a pipeline, from what is known about it (no I/O).
pub(super) fn detail_view(
    p: &Pipeline,
    config: &crate::config::Config,
    stats: Option<&crate::db::run_stats::PipelineRunStats>,
    runs: Vec<RunRow>,
    jobs: Vec<crate::scheduler::view::JobView>,
) -> DetailPage {
    let m = &p.metadata;
    let show = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let effective = crate::runner::limits::effective(&m.limits, config);
    let from_default = |yes: bool, var: &str| {
        if yes {
            format!(" ({var})")
        } else {
            String::new()
        }
    };
    let e = &effective.limits;
    let limits = vec![
        (
            "CPU hard limit",
            show(e.cpu_hard_limit.map(|c| {
                format!(
                    "{}{}",
                    cores(c),
                    from_default(effective.cpu_from_default, "DEFAULT_CPU_LIMIT")
                )
            })),
        ),
        ("CPU soft limit", show(e.cpu_soft_limit.map(cores))),
        (
            "Memory hard limit",
            show(e.mem_hard_limit.as_ref().map(|x| {
                format!(
                    "{}{}",
                    x.text,
                    from_default(effective.mem_from_default, "DEFAULT_MEM_LIMIT")
                )
            })),
        ),
        (
            "Memory soft limit",
            show(e.mem_soft_limit.as_ref().map(|x| x.text.clone())),
        ),
    ];
    let timeout = match m.timeout {
        Some(0) => "none".to_string(),
        Some(t) => format!("{t}s"),
        None => match config.container_timeout {
            Some(t) => format!("{t}s (CONTAINER_TIMEOUT)"),
            None => "none (CONTAINER_TIMEOUT unset)".into(),
        },
    };
    let retries = m.retry_attempts.unwrap_or(config.retry_attempts);
    let settings = vec![
        ("Timeout", timeout),
        ("Retry attempts", retries.to_string()),
        (
            "Retry delays",
            retry_delays(m.retry_strategy.as_ref(), retries),
        ),
        (
            "Max instances",
            show(m.max_instances.map(|v| v.to_string())),
        ),
        ("Python", show(m.python_version.clone())),
        (
            "Restart",
            match (m.restart_on_crash, &m.restart_interval) {
                (false, None) => "—".into(),
                (crash, interval) => {
                    let cooldown = m
                        .restart_cooldown
                        .unwrap_or(crate::runner::DEFAULT_RESTART_COOLDOWN);
                    let mut parts = Vec::new();
                    if crash {
                        parts.push(format!("after a crash (FAILED), {cooldown}s later"));
                    }
                    if let Some(i) = interval {
                        parts.push(format!(
                            "on schedule `{i}` (stop, {cooldown}s cooldown, start)"
                        ));
                    }
                    parts.join("; ")
                }
            },
        ),
    ];
    let downstream = m
        .downstream_triggers
        .iter()
        .map(|t| {
            let when = match (t.on_success, t.on_failure) {
                (true, true) => "after any final outcome",
                (true, false) => "after success",
                (false, true) => "after failure",
                (false, false) => "never (on_success and on_failure are false)",
            };
            (
                t.pipeline.clone(),
                when.to_string(),
                t.run_config_id.clone().unwrap_or_default(),
            )
        })
        .collect();
    let mut env_keys: Vec<String> = m.default_env.keys().cloned().collect();
    env_keys.extend(m.encrypted_env.keys().map(|k| format!("{k} (encrypted)")));
    DetailPage {
        row: PipelineRow::new(p, stats),
        metadata_file: p
            .metadata_file
            .clone()
            .unwrap_or_else(|| "none (defaults)".into()),
        limits,
        settings,
        env_keys,
        requirements: p.requirements.clone().unwrap_or_default(),
        has_requirements: p.has_requirements,
        runs,
        name: p.name.clone(),
        jobs,
        webhooks: webhook_urls(p, &config.base_url),
        downstream,
        run_configs: m
            .schedules
            .iter()
            .map(|s| (s.id.clone(), run_config_summary(s)))
            .collect(),
        source_links: Vec::new(),
    }
}

async fn recent_runs_fragment(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<RunsFragment, AppError> {
    find(&state, &name)?;
    Ok(RunsFragment {
        runs: recent_runs(&state, &name).await?,
    })
}

#[derive(Deserialize)]
struct RunForm {
    #[serde(default)]
    env: String,
    #[serde(default)]
    parameters: String,
    /// A `schedules[].id`; empty means the pipeline's own settings.
    #[serde(default)]
    run_config_id: String,
}

/// `KEY=value` per line; blank lines and `#` comments are skipped. `what` names
/// the form field in messages.
fn parse_env_lines(text: &str, what: &str) -> Result<BTreeMap<String, String>, AppError> {
    let mut env = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(AppError::BadRequest(format!(
                "{what} line {}: expected KEY=value",
                i + 1
            )));
        };
        let key = key.trim();
        if !crate::pipelines::fields::is_env_name(key) {
            return Err(AppError::BadRequest(format!(
                "{what} line {}: `{}` is not a valid variable name",
                i + 1,
                crate::pipelines::fields::shown(key)
            )));
        }
        env.insert(key.to_string(), value.to_string());
        // Stop early: the runner refuses more anyway, and a huge form should cost nothing.
        if env.len() > crate::runner::overrides::MAX_KEYS {
            return Err(AppError::BadRequest(format!(
                "at most {} {what} values can be given",
                crate::runner::overrides::MAX_KEYS
            )));
        }
    }
    Ok(env)
}

async fn run_from_form(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<RunForm>,
) -> Result<Response, AppError> {
    let p = find(&state, &name)?;
    let env = parse_env_lines(&form.env, "environment")?;
    let parameters = parse_env_lines(&form.parameters, "parameters")?;
    // Checked here too, so the message names the variable as the form shows it.
    crate::runner::overrides::check("", &env).map_err(|e| AppError::BadRequest(e.to_string()))?;
    crate::runner::overrides::check("", &parameters)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let run_config_id = Some(form.run_config_id.trim().to_string()).filter(|s| !s.is_empty());
    let request = TriggerRequest {
        env_vars: env,
        parameters,
        run_config_id,
        ..TriggerRequest::new("manual")
    };
    let run = state.runner.trigger(&p, request).await?;
    let target = format!("/runs/{}", run.id);
    if is_htmx(&headers) {
        return Ok(([("HX-Redirect", target)], "").into_response());
    }
    Ok(Redirect::to(&target).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_env_lines;

    #[test]
    fn env_lines() {
        let env = parse_env_lines("A=1\n# comment\n\nB = two=2\n", "environment").unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], " two=2");
        assert!(parse_env_lines("novalue", "environment").is_err());
        let err = parse_env_lines("1X=2", "parameters")
            .unwrap_err()
            .to_string();
        assert!(err.contains("parameters line 1"), "{err}");
    }
}
