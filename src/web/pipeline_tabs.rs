//! What each tab of the pipeline page adds to it beyond the common detail:
//! the overview's outcomes and duration history, the source tab's highlighted
//! files, and "Run with changes…" pre-filling the Run form from an earlier run.

use super::pipeline_pages::DetailPage;
use super::{AppError, AppState};
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
    let known: Vec<String> = p
        .metadata
        .webhook_key
        .iter()
        .chain(
            p.metadata
                .schedules
                .iter()
                .filter_map(|s| s.webhook_key.as_ref()),
        )
        .cloned()
        .collect();
    page.source = super::log_stream::blocking(move || {
        let mut files = crate::pipelines::source::files(&dir, meta.as_deref());
        if !may_start {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            for f in &mut files {
                if let Ok(text) = &mut f.text {
                    *text = crate::pipelines::source::without_webhook_keys(text, &known);
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
async fn prefill(
    state: &AppState,
    name: &str,
    from: &str,
    page: &mut DetailPage,
) -> Result<(), AppError> {
    let run = db::runs::get(&state.pool, from)
        .await?
        .filter(|r| r.pipeline_name == name)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "run `{}` of pipeline `{name}` not found",
                crate::pipelines::fields::shown(from)
            ))
        })?;
    let lines = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    page.prefill_env = lines(&run.env_vars.0);
    page.prefill_parameters = lines(&run.parameters.0);
    page.prefill_from = run.id;
    Ok(())
}
