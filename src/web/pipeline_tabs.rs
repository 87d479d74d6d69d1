//! What each tab of the pipeline page adds to it beyond the common detail:
//! the overview's outcomes and duration history, the source tab's highlighted
//! files, and "Run with changes…" pre-filling the Run form from an earlier run.

use super::pipeline_pages::DetailPage;
use super::{AppError, AppState};
use crate::db::runs::Run;
use crate::db::{self, RunFilter};
use crate::pipelines::Pipeline;

/// Runs the overview lists under its chart.
const OVERVIEW_RUNS: usize = 10;
/// Finished runs the duration history draws.
const HISTORY_RUNS: i64 = 50;

/// Fills what `page.tab` shows, and the Run form from `from_run` when given.
/// `may_start`: the viewer may start runs, and so may see webhook keys.
pub(super) async fn fill(
    state: &AppState,
    p: &Pipeline,
    page: &mut DetailPage,
    from_run: Option<&str>,
    may_start: bool,
) -> Result<(), AppError> {
    match page.tab {
        "overview" => overview(state, &p.name, page).await?,
        "source" => source(p, page, may_start).await?,
        _ => {}
    }
    if let Some(from) = from_run.filter(|r| !r.is_empty()) {
        prefill(state, &p.name, from, page).await?;
    }
    Ok(())
}

async fn overview(state: &AppState, name: &str, page: &mut DetailPage) -> Result<(), AppError> {
    let history = RunFilter {
        pipeline_name: Some(name.to_string()),
        limit: HISTORY_RUNS,
        finished_only: true,
        ..Default::default()
    };
    let runs = db::run_list::page(&state.pool, &history).await?.runs;
    let bars: Vec<_> = runs
        .iter()
        .filter(|r| r.status.is_terminal())
        .map(|r| (r.id.clone(), r.status, r.duration_seconds()))
        .collect();
    page.durations = super::history_chart::duration_bars(&bars);
    page.runs.truncate(OVERVIEW_RUNS);
    let outcomes = db::dashboard::last_outcomes(&state.pool, name, 10).await?;
    if !outcomes.is_empty() {
        page.row.strip = super::dashboard_charts::outcome_strip(&outcomes);
    }
    Ok(())
}

/// Reads the files off the async threads: a slow disk must not stall the server.
/// A webhook key starts runs, so readers who may not start them see it hidden.
async fn source(p: &Pipeline, page: &mut DetailPage, may_start: bool) -> Result<(), AppError> {
    let (dir, meta) = (p.dir.clone(), p.metadata_file.clone());
    let known = webhook_keys(p);
    page.source = super::log_stream::blocking(move || {
        let mut files = crate::pipelines::source::files(&dir, meta.as_deref());
        if !may_start {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            for f in &mut files {
                if let Ok(text) = &mut f.text {
                    let metadata = meta.as_deref() == Some(f.name.as_str());
                    *text = crate::pipelines::source::without_webhook_keys(text, &known, metadata);
                }
            }
        }
        Ok(super::source_view::views(files))
    })
    .await
    .map_err(|e| AppError::internal("reading the pipeline's files", e))?;
    Ok(())
}

/// A run of another pipeline or an unknown id is a 404, not a silently empty form.
/// The pipeline's webhook keys (its own and its run configurations') and its
/// notification webhook URL.
pub(super) fn webhook_keys(p: &Pipeline) -> Vec<String> {
    p.metadata
        .webhook_key
        .iter()
        .chain(
            p.metadata
                .schedules
                .iter()
                .filter_map(|s| s.webhook_key.as_ref()),
        )
        // The `notify.webhook` URL is a credential too (Slack's and Teams' are).
        .chain(p.metadata.notify.iter().filter_map(|n| n.webhook.as_ref()))
        .cloned()
        .collect()
}

/// The run `id` of pipeline `name`, or a 404 naming both.
pub(super) async fn run_of(state: &AppState, name: &str, id: &str) -> Result<Run, AppError> {
    db::runs::get(&state.pool, id)
        .await?
        .filter(|r| r.pipeline_name == name)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "run `{}` of pipeline `{name}` not found",
                crate::pipelines::fields::shown(id)
            ))
        })
}

/// What the Run form shows for a previous run's value: environment values are
/// masked (as the API shows them), and so is any value with a line break (it
/// would turn into lines of its own).
pub(super) const MASKED: &str = "***";

/// Values the form sent back as `***` get the previous run's value again.
pub(super) fn keep_masked(
    sent: &mut std::collections::BTreeMap<String, String>,
    previous: &std::collections::BTreeMap<String, String>,
) {
    for (key, value) in sent.iter_mut() {
        if value == MASKED
            && let Some(old) = previous.get(key)
        {
            value.clone_from(old);
        }
    }
}

/// Fills the Run form from a previous run: its overrides without Fast-Flow's
/// own `_fastflow_*` markers, environment values masked, and its run configuration.
async fn prefill(
    state: &AppState,
    name: &str,
    from: &str,
    page: &mut DetailPage,
) -> Result<(), AppError> {
    let run = run_of(state, name, from).await?;
    let lines = |m: &std::collections::BTreeMap<String, String>, mask_all: bool| {
        m.iter()
            .filter(|(k, _)| !k.starts_with("_fastflow_"))
            .map(|(k, v)| {
                let shown = if mask_all || v.contains(['\n', '\r']) {
                    MASKED
                } else {
                    v.as_str()
                };
                format!("{k}={shown}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    page.prefill_env = lines(&run.env_vars.0, true);
    page.prefill_parameters = lines(&run.parameters.0, false);
    page.prefill_run_config = run.run_config_id.clone().unwrap_or_default();
    page.prefill_from = run.id;
    Ok(())
}
