//! `/api/pipelines`: list, detail, refresh, trigger a run, a pipeline's runs.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiQuery, JsonBody, RunJson, check_limit, run_json, run_list_response};
use crate::db::run_stats::PipelineRunStats;
use crate::db::{self, RunFilter};
use crate::pipelines::{FieldIssue, Pipeline, PipelineMetadata};
use crate::runner::TriggerRequest;
use crate::web::pipeline_list::{self, MAX_SEARCH_CHARS, Search};
use crate::web::{ApiError, AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list_pipelines))
        .route("/pipelines/refresh", post(refresh_pipelines))
        .route("/pipelines/{name}", get(get_pipeline))
        .route("/pipelines/{name}/run", post(run_pipeline))
        .route("/pipelines/{name}/runs", get(pipeline_runs))
}

#[derive(Serialize)]
pub(in crate::web) struct PipelineJson<'a> {
    name: &'a str,
    valid: bool,
    enabled: bool,
    description: Option<&'a str>,
    tags: &'a [String],
    has_requirements: bool,
    last_cache_warmup: Option<String>,
    metadata_file: Option<&'a str>,
    metadata: &'a PipelineMetadata,
    errors: &'a [FieldIssue],
    warnings: &'a [FieldIssue],
    // The run statistics, written out rather than flattened: serde's `flatten`
    // buffers the whole struct, which a list of thousands of pipelines feels.
    total_runs: i64,
    successful_runs: i64,
    failed_runs: i64,
    last_run_id: Option<&'a str>,
    last_run_status: Option<crate::run_status::RunStatus>,
    last_run_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The header that carries how many pipelines match, whatever page is shown.
static TOTAL_COUNT: axum::http::HeaderName = axum::http::HeaderName::from_static("x-total-count");

/// Pipelines written per chunk of the streamed list (a chunk is about 1 KiB each).
const LIST_CHUNK: usize = 64;

pub(in crate::web) fn pipeline_json<'a>(
    p: &'a Pipeline,
    stats: Option<&'a PipelineRunStats>,
) -> PipelineJson<'a> {
    PipelineJson {
        name: &p.name,
        valid: p.is_valid(),
        enabled: p.metadata.enabled,
        description: p.metadata.description.as_deref(),
        tags: &p.metadata.tags,
        has_requirements: p.has_requirements,
        last_cache_warmup: None,
        metadata_file: p.metadata_file.as_deref(),
        metadata: &p.metadata,
        errors: &p.errors,
        warnings: &p.warnings,
        total_runs: stats.map_or(0, |s| s.total_runs),
        successful_runs: stats.map_or(0, |s| s.successful_runs),
        failed_runs: stats.map_or(0, |s| s.failed_runs),
        last_run_id: stats.and_then(|s| s.last_run_id.as_deref()),
        last_run_status: stats.and_then(|s| s.last_run_status),
        last_run_at: stats.and_then(|s| s.last_run_at),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    /// Search in names, tags and descriptions (case-insensitive substring).
    q: Option<String>,
    /// With `limit` (1..=1000) and `offset`, one page; without, every match (Fast-Flow 1.x).
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_pipelines(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let search = Search::new(q.q.as_deref().unwrap_or_default()).ok_or_else(|| {
        ApiError(AppError::BadRequest(format!(
            "q is longer than {MAX_SEARCH_CHARS} characters"
        )))
    })?;
    let offset = match q.offset.unwrap_or(0) {
        o if o >= 0 => usize::try_from(o).unwrap_or(usize::MAX),
        o => {
            return Err(ApiError(AppError::BadRequest(format!(
                "offset must be 0 or more, got {o}"
            ))));
        }
    };
    let limit = match q.limit {
        Some(l) => usize::try_from(check_limit(Some(l), l)?).unwrap_or(usize::MAX),
        None => usize::MAX,
    };
    let snapshot = state.registry.snapshot();
    let found = pipeline_list::select(&snapshot, &search, offset, limit);
    let matching = found.matching;
    // Written in chunks as the client reads, each with the statistics of its own
    // pipelines: with thousands of pipelines the list is megabytes, and a client
    // that reads slowly holds one chunk, not the whole list and all its statistics.
    let pipelines = found.pipelines;
    let chunks = pipelines.len().div_ceil(LIST_CHUNK).max(1);
    let pool = state.pool.clone();
    let body = futures_util::stream::iter(0..chunks).then(move |chunk| {
        let start = chunk * LIST_CHUNK;
        let part: Vec<std::sync::Arc<Pipeline>> = pipelines
            .get(start..(start + LIST_CHUNK).min(pipelines.len()))
            .unwrap_or_default()
            .to_vec();
        let pool = pool.clone();
        async move {
            let names: Vec<&str> = part.iter().map(|p| p.name.as_str()).collect();
            let stats = db::run_stats::pipeline_stats_for(&pool, &names)
                .await
                .map_err(std::io::Error::other)?;
            let mut out = Vec::with_capacity(part.len() * 1024 + 2);
            out.push(if chunk == 0 { b'[' } else { b',' });
            for (i, p) in part.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, &pipeline_json(p, stats.get(&p.name)))
                    .map_err(std::io::Error::other)?;
            }
            if chunk + 1 == chunks {
                out.push(b']');
            }
            Ok::<_, std::io::Error>(axum::body::Bytes::from(out))
        }
    });
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json".to_string(),
            ),
            // How many match in all, for clients that page.
            (TOTAL_COUNT.clone(), matching.to_string()),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

async fn refresh_pipelines(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.registry.refresh().await;
    let invalid: Vec<&str> = snapshot
        .pipelines
        .values()
        .filter(|p| !p.is_valid())
        .map(|p| p.name.as_str())
        .collect();
    Ok(Json(json!({ "pipelines": snapshot.pipelines.len(), "invalid": invalid, "dir_error": snapshot.dir_error })).into_response())
}

fn find(state: &AppState, name: &str) -> Result<std::sync::Arc<Pipeline>, ApiError> {
    state
        .registry
        .get(name)
        .ok_or_else(|| ApiError(AppError::NotFound(format!("pipeline `{name}` not found"))))
}

async fn get_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let p = find(&state, &name)?;
    let stats = db::run_stats::pipeline_stats_of(&state.pool, &p.name).await?;
    Ok(Json(pipeline_json(&p, Some(&stats))).into_response())
}

#[derive(Debug, Default)]
pub(super) struct TriggerBody {
    pub env_vars: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub run_config_id: Option<String>,
}

/// `{"env_vars": {...}, "parameters": {...}, "run_config_id": "..."}`; limits and
/// names are checked by the runner. A webhook's key selects its run configuration,
/// so its body may not name one (`allow_run_config`).
pub(super) fn parse_trigger_body(
    value: Option<Value>,
    allow_run_config: bool,
) -> Result<TriggerBody, AppError> {
    let Some(value) = value else {
        return Ok(TriggerBody::default());
    };
    let Value::Object(mut obj) = value else {
        return Err(AppError::BadRequest(
            "request body must be a JSON object like {\"env_vars\": {}, \"parameters\": {}}".into(),
        ));
    };
    let mut take = |key: &str| -> Result<BTreeMap<String, String>, AppError> {
        let map = match obj.remove(key) {
            None | Some(Value::Null) => return Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m,
            Some(_) => {
                return Err(AppError::BadRequest(format!(
                    "`{key}` must be an object of NAME: \"value\" pairs"
                )));
            }
        };
        let mut out = BTreeMap::new();
        for (name, v) in map {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(AppError::BadRequest(format!(
                        "`{key}.{}` must be a string",
                        crate::pipelines::fields::shown(&name)
                    )));
                }
            };
            out.insert(name, text);
        }
        Ok(out)
    };
    let env_vars = take("env_vars")?;
    let parameters = take("parameters")?;
    let run_config_id = match obj.remove("run_config_id") {
        Some(Value::String(id)) if allow_run_config && !id.trim().is_empty() => Some(id),
        None | Some(Value::Null) => None,
        Some(_) if allow_run_config => {
            return Err(AppError::BadRequest(
                "`run_config_id` must be the id of one of the pipeline's `schedules`".into(),
            ));
        }
        Some(_) => {
            return Err(AppError::BadRequest(
                "unknown field `run_config_id`: a webhook's key selects the run configuration"
                    .into(),
            ));
        }
    };
    let expected = if allow_run_config {
        "env_vars, parameters, run_config_id"
    } else {
        "env_vars, parameters"
    };
    if let Some(unknown) = obj.keys().next() {
        return Err(AppError::BadRequest(format!(
            "unknown field `{}` (expected {expected})",
            crate::pipelines::fields::shown(unknown)
        )));
    }
    Ok(TriggerBody {
        env_vars,
        parameters,
        run_config_id,
    })
}

async fn run_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let p = find(&state, &name)?;
    let body = parse_trigger_body(body, true)?;
    let request = TriggerRequest {
        env_vars: body.env_vars,
        parameters: body.parameters,
        run_config_id: body.run_config_id,
        ..TriggerRequest::new("api")
    };
    let run = state.runner.trigger(&p, request).await?;
    Ok(Json(run_json(&run, false)).into_response())
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

async fn pipeline_runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> Result<Response, ApiError> {
    let limit = check_limit(q.limit, 100)?;
    let filter = RunFilter {
        pipeline_name: Some(name),
        status: None,
        limit,
        ..Default::default()
    };
    let runs = db::run_list::page(&state.pool, &filter).await?.runs;
    let shown: Vec<RunJson> = runs.iter().map(RunJson::list).collect();
    run_list_response(&shown, shown.len())
}

#[cfg(test)]
mod tests {
    use super::parse_trigger_body;

    #[test]
    fn trigger_bodies() {
        assert!(parse_trigger_body(None, true).unwrap().env_vars.is_empty());
        let b = parse_trigger_body(
            Some(serde_json::json!({"env_vars": {"A": "1", "N": 2}, "parameters": null})),
            true,
        )
        .unwrap();
        assert_eq!(b.env_vars["N"], "2");
        for bad in [
            serde_json::json!([1]),
            serde_json::json!({"env_vars": 3}),
            serde_json::json!({"x": {}}),
            serde_json::json!({"env_vars": {"A": [1]}}),
        ] {
            assert!(
                parse_trigger_body(Some(bad.clone()), true).is_err(),
                "{bad}"
            );
        }
        let with_config = serde_json::json!({"run_config_id": "prod"});
        assert_eq!(
            parse_trigger_body(Some(with_config.clone()), true)
                .unwrap()
                .run_config_id
                .as_deref(),
            Some("prod")
        );
        assert!(parse_trigger_body(Some(with_config), false).is_err());
    }
}
