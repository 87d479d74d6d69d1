//! One pipeline's page: its detail, recent runs fragment, and the Run form action
//! (the list is in `pipeline_list_page`).

use std::collections::BTreeMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::pipeline_facts::{cores, retry_delays, run_config_summary, webhook_urls};
use super::views::{PipelineRow, RunRow};
use super::{AppError, AppState, is_htmx};
use crate::db::{self, RunFilter};
use crate::pipelines::Pipeline;
use crate::runner::TriggerRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pipelines/{name}", get(detail_page))
        .route(
            "/fragments/pipelines/{name}/runs",
            get(recent_runs_fragment),
        )
        .route("/pipelines/{name}/run", post(run_from_form))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/pipeline.html")]
pub(super) struct DetailPage {
    pub(super) row: PipelineRow,
    metadata_file: String,
    limits: Vec<(&'static str, String)>,
    settings: Vec<(&'static str, String)>,
    env_keys: Vec<String>,
    requirements: String,
    has_requirements: bool,
    pub(super) runs: Vec<RunRow>,
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
    /// The keys it lists and what each is; `encrypted_env` entries no key opens.
    secrets: Option<super::pipeline_secrets::SecretFacts>,
    /// Webhook URLs exist but the caller may not start runs, so they are not shown.
    webhooks_hidden: bool,
    /// The pipeline's own `notify` settings (empty: the server's).
    notify: Vec<(&'static str, String)>,
    /// The tab shown: one of [`TABS`].
    pub(super) tab: &'static str,
    /// The source files (source tab only).
    pub(super) source: Vec<super::source_view::SourceView>,
    /// The duration history chart (overview tab only).
    pub(super) durations: String,
    /// "Run with changes…": the run whose overrides pre-fill the form, and them.
    pub(super) prefill_from: String,
    pub(super) prefill_env: String,
    pub(super) prefill_parameters: String,
    pub(super) prefill_run_config: String,
}

/// The pipeline page's tabs, as `?tab=` names them (the first is the default).
pub const TABS: [&str; 4] = ["overview", "runs", "configuration", "source"];

#[derive(Deserialize, Default)]
struct DetailQuery {
    tab: Option<String>,
    /// Pre-fill the Run form from this run's overrides.
    from_run: Option<String>,
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

/// Runs the runs tab lists (the overview lists fewer).
const RECENT_RUNS: i64 = 20;

async fn recent_runs(state: &AppState, name: &str, limit: i64) -> Result<Vec<RunRow>, AppError> {
    let filter = RunFilter {
        pipeline_name: Some(name.to_string()),
        status: None,
        limit,
        ..Default::default()
    };
    let runs = db::run_list::page(&state.pool, &filter).await?.runs;
    Ok(runs.iter().map(RunRow::new).collect())
}

async fn detail_page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    super::page_query::PageQuery(q): super::page_query::PageQuery<DetailQuery>,
    who: Option<axum::extract::Extension<super::identity::Identity>>,
) -> Result<DetailPage, AppError> {
    let p = find(&state, &name)?;
    let tab = match q.tab.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => TABS[0],
        Some(t) => TABS.into_iter().find(|x| *x == t).ok_or_else(|| {
            AppError::NotFound(format!(
                "the pipeline page has no tab `{}` (use {})",
                crate::pipelines::fields::shown(t),
                TABS.join(", ")
            ))
        })?,
    };
    let stats = db::run_stats::pipeline_stats_of(&state.pool, &p.name).await?;
    let runs = recent_runs(&state, &name, RECENT_RUNS).await?;
    let jobs = state.scheduler.jobs_of(&name).await?;
    let mut page = detail_view(&p, &state.config, Some(&stats), runs, jobs);
    page.tab = tab;
    // A webhook URL holds its key and starts runs: only for those who may start them.
    let may_start = who.is_some_and(|w| w.role >= crate::auth::Role::Write);
    let from_run = q.from_run.as_deref().filter(|_| may_start);
    super::pipeline_tabs::fill(&state, &p, &mut page, from_run, may_start).await?;
    page.secrets = Some(super::pipeline_secrets::of(&state, &p).await?);
    if !may_start {
        let known = super::pipeline_tabs::webhook_keys(&p);
        let known: Vec<&str> = known.iter().map(String::as_str).collect();
        page.requirements =
            crate::pipelines::source::without_webhook_keys(&page.requirements, &known, false);
    }
    if !may_start && !page.webhooks.is_empty() {
        page.webhooks.clear();
        page.webhooks_hidden = true;
    }
    if let Some(sync) = state.gitsync() {
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
        secrets: None,
        webhooks_hidden: false,
        notify: super::pipeline_facts::notify_facts(p),
        tab: TABS[0],
        source: Vec::new(),
        durations: String::new(),
        prefill_from: String::new(),
        prefill_run_config: String::new(),
        prefill_env: String::new(),
        prefill_parameters: String::new(),
    }
}

#[derive(Deserialize, Default)]
struct RecentQuery {
    /// How many runs, 1 to [`RECENT_RUNS`] (the overview tab asks for its 10).
    limit: Option<String>,
}

async fn recent_runs_fragment(
    State(state): State<AppState>,
    Path(name): Path<String>,
    super::page_query::PageQuery(q): super::page_query::PageQuery<RecentQuery>,
) -> Result<RunsFragment, AppError> {
    find(&state, &name)?;
    let limit = match q.limit.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => RECENT_RUNS,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=RECENT_RUNS).contains(n))
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "`limit` must be a whole number from 1 to {RECENT_RUNS}, not `{}`",
                    crate::pipelines::fields::shown(l)
                ))
            })?,
    };
    Ok(RunsFragment {
        runs: recent_runs(&state, &name, limit).await?,
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
    /// "Run with changes…": a value shown as `***` keeps this run's value.
    #[serde(default)]
    from_run: String,
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
    let mut env = parse_env_lines(&form.env, "environment")?;
    let mut parameters = parse_env_lines(&form.parameters, "parameters")?;
    if !form.from_run.trim().is_empty() {
        let from = super::pipeline_tabs::run_of(&state, &p.name, form.from_run.trim()).await?;
        super::pipeline_tabs::keep_masked(&mut env, &from.env_vars.0);
        super::pipeline_tabs::keep_masked(&mut parameters, &from.parameters.0);
    }
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
