//! The JSON API under `/api`, with Fast-Flow 1.x paths and field names.

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::log_stream::{Follow, follow, resume_after, sse_response};
use super::{ApiError, AppError, AppState};
use crate::db::runs::PipelineRunStats;
use crate::db::{self, Run, RunFilter};
use crate::pipelines::{FieldIssue, Pipeline, PipelineMetadata};
use crate::run_status::RunStatus;
use crate::runner::logs::{log_path, read_lines, tail_lines};

/// Limits on a trigger body, as in Fast-Flow 1.x.
const MAX_ENV_KEYS: usize = 50;
const MAX_ENV_VALUE_CHARS: usize = 16_384;
const MAX_TAIL: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list_pipelines))
        .route("/pipelines/refresh", post(refresh_pipelines))
        .route("/pipelines/{name}", get(get_pipeline))
        .route("/pipelines/{name}/run", post(run_pipeline))
        .route("/pipelines/{name}/runs", get(pipeline_runs))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/logs", get(run_logs))
        .route("/runs/{id}/logs/stream", get(run_log_stream))
        .route("/runs/{id}/metrics", get(run_metrics))
        .route("/runs/{id}/metrics/stream", get(run_metrics_stream))
        .route("/runs/{id}/cancel", post(cancel_run))
        .route("/system/cleanup", post(run_cleanup))
        .route("/stats/daily", get(daily_stats))
        .route("/runs/{id}/retry", post(retry_run))
}

#[derive(Serialize)]
struct PipelineJson<'a> {
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
    #[serde(flatten)]
    stats: PipelineRunStats,
}

fn pipeline_json<'a>(p: &'a Pipeline, stats: Option<&PipelineRunStats>) -> PipelineJson<'a> {
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
        stats: stats.cloned().unwrap_or_default(),
    }
}

async fn list_pipelines(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.registry.snapshot();
    let stats = db::runs::pipeline_stats(&state.pool).await?;
    let list: Vec<_> = snapshot
        .pipelines
        .values()
        .map(|p| pipeline_json(p, stats.get(&p.name)))
        .collect();
    Ok(Json(list).into_response())
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
    let stats = db::runs::pipeline_stats(&state.pool).await?;
    Ok(Json(pipeline_json(&p, stats.get(&p.name))).into_response())
}

/// A run as the API shows it; `env_vars` values are masked like Fast-Flow 1.x.
fn run_json(run: &Run, detail: bool) -> Value {
    let mut v = json!({
        "id": run.id,
        "pipeline_name": run.pipeline_name,
        "status": run.status,
        "started_at": run.started_at,
        "claimed_at": run.claimed_at,
        "container_started_at": run.container_started_at,
        "finished_at": run.finished_at,
        "duration_seconds": run.duration_seconds(),
        "exit_code": run.exit_code,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "triggered_by": run.triggered_by,
        "image": run.image,
        "log_file": run.log_file,
        "log_lines": run.log_lines,
        "log_bytes": run.log_bytes,
        "log_truncated": run.log_truncated,
        "metrics_file": run.log_file.strip_suffix(".log").map(|base| format!("{base}_metrics.jsonl")),
        "uv_version": Value::Null,
        "setup_duration": run.setup_duration,
        "peak_cpu_percent": run.peak_cpu_percent,
        "peak_memory_bytes": run.peak_memory_bytes,
        "soft_limit_warning": run.soft_limit_warning,
        "attempt": run.attempt,
        "previous_run_id": run.previous_run_id,
        "not_before": run.not_before,
    });
    if detail {
        let masked: BTreeMap<&str, &str> = run
            .env_vars
            .0
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if k.starts_with("_fastflow_") {
                        v.as_str()
                    } else {
                        "***"
                    },
                )
            })
            .collect();
        v["env_vars"] = json!(masked);
        v["parameters"] = json!(run.parameters.0);
    }
    v
}

#[derive(Debug, Default)]
struct TriggerBody {
    env_vars: BTreeMap<String, String>,
    parameters: BTreeMap<String, String>,
}

fn parse_trigger_body(body: &[u8]) -> Result<TriggerBody, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TriggerBody::default());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("request body is not valid JSON: {e}")))?;
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
        if map.len() > MAX_ENV_KEYS {
            return Err(AppError::BadRequest(format!(
                "`{key}` has {} entries; at most {MAX_ENV_KEYS} are allowed",
                map.len()
            )));
        }
        let mut out = BTreeMap::new();
        for (name, v) in map {
            if !crate::pipelines::fields::is_env_name(&name) {
                return Err(AppError::BadRequest(format!(
                    "`{key}.{name}` is not a valid environment variable name"
                )));
            }
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(AppError::BadRequest(format!(
                        "`{key}.{name}` must be a string"
                    )));
                }
            };
            if text.chars().count() > MAX_ENV_VALUE_CHARS {
                return Err(AppError::BadRequest(format!(
                    "`{key}.{name}` is longer than {MAX_ENV_VALUE_CHARS} characters"
                )));
            }
            out.insert(name, text);
        }
        Ok(out)
    };
    let body = TriggerBody {
        env_vars: take("env_vars")?,
        parameters: take("parameters")?,
    };
    if let Some(unknown) = obj.keys().next() {
        return Err(AppError::BadRequest(format!(
            "unknown field `{unknown}` (expected env_vars, parameters)"
        )));
    }
    Ok(body)
}

async fn run_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = find(&state, &name)?;
    let body = parse_trigger_body(&body)?;
    let run = state
        .runner
        .trigger(&p, body.env_vars, body.parameters, "api")
        .await?;
    Ok(Json(run_json(&run, false)).into_response())
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

fn check_limit(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match limit.unwrap_or(default) {
        l @ 1..=1000 => Ok(l),
        l => Err(ApiError(AppError::BadRequest(format!(
            "limit must be between 1 and 1000, got {l}"
        )))),
    }
}

async fn pipeline_runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    let limit = check_limit(q.limit, 100)?;
    let filter = RunFilter {
        pipeline_name: Some(name),
        status: None,
        limit,
        offset: 0,
    };
    let (runs, _) = db::runs::list(&state.pool, &filter).await?;
    Ok(Json(runs.iter().map(|r| run_json(r, false)).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
struct RunsQuery {
    pipeline_name: Option<String>,
    status_filter: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Response, ApiError> {
    let limit = check_limit(q.limit, 50)?;
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError(AppError::BadRequest("offset must be >= 0".into())));
    }
    let status = match q.status_filter.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError(AppError::BadRequest(format!(
                "unknown status_filter `{s}` (PENDING, RUNNING, SUCCESS, FAILED, INTERRUPTED)"
            )))
        })?),
    };
    let filter = RunFilter {
        pipeline_name: q.pipeline_name.filter(|p| !p.is_empty()),
        status,
        limit,
        offset,
    };
    let (runs, total) = db::runs::list(&state.pool, &filter).await?;
    Ok(Json(json!({
        "runs": runs.iter().map(|r| run_json(r, false)).collect::<Vec<_>>(),
        "total": total,
        "page": offset / limit + 1,
        "page_size": limit,
    }))
    .into_response())
}

async fn load(state: &AppState, id: &str) -> Result<Run, ApiError> {
    db::runs::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError(AppError::NotFound(format!("run `{id}` not found"))))
}

async fn get_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = load(&state, &id).await?;
    let mut json = run_json(&run, true);
    if let Some(info) = state.runner.queue_info(&run).await? {
        json["queue_position"] = json!(info.queue_position);
        json["waiting_reason"] = json!(info.waiting_reason);
    }
    Ok(Json(json).into_response())
}

/// The run's samples and peaks, with the limits that applied.
async fn run_metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = load(&state, &id).await?;
    let samples = crate::runner::metrics::read_samples(&crate::runner::metrics::metrics_path(
        &state.config.logs_dir,
        &run.id,
    ))
    .map_err(|e| AppError::internal("reading run metrics", e))?;
    let meta = state
        .registry
        .get(&run.pipeline_name)
        .map(|p| p.metadata.clone())
        .unwrap_or_default();
    Ok(Json(json!({
        "run_id": run.id,
        "samples": samples,
        "peak_cpu_percent": run.peak_cpu_percent,
        "peak_memory_bytes": run.peak_memory_bytes,
        "soft_limit_warning": run.soft_limit_warning,
        "cpu_hard_limit": meta.limits.cpu_hard_limit,
        "cpu_soft_limit": meta.limits.cpu_soft_limit,
        "mem_hard_limit": meta.limits.mem_hard_limit,
        "mem_soft_limit": meta.limits.mem_soft_limit,
    }))
    .into_response())
}

/// SSE: `event: metric` with one sample as JSON per event, then `event: end`.
async fn run_metrics_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    use super::metrics_stream::{MetricFollow, follow_metrics};
    load(&state, &id).await?;
    let events = follow_metrics(state, id).flat_map(|item| {
        let events: Vec<Event> = match item {
            MetricFollow::Samples(samples) => samples
                .iter()
                .map(|s| {
                    Event::default()
                        .event("metric")
                        .data(serde_json::to_string(s).unwrap_or_default())
                })
                .collect(),
            MetricFollow::End(status) => vec![
                Event::default()
                    .event("end")
                    .data(json!({"status": status}).to_string()),
            ],
        };
        futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    Ok(sse_response(events).into_response())
}

/// Runs the retention cleanup now and reports what it removed.
async fn run_cleanup(State(state): State<AppState>) -> Result<Response, ApiError> {
    let report = crate::retention::cleanup(&state.pool, &state.config).await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
struct DaysQuery {
    days: Option<i64>,
}

/// Runs per day and pipeline (kept when retention deletes the runs themselves).
async fn daily_stats(
    State(state): State<AppState>,
    Query(q): Query<DaysQuery>,
) -> Result<Response, ApiError> {
    let days = q.days.unwrap_or(30).clamp(1, 3650);
    Ok(Json(db::runs::daily_counters(&state.pool, days).await?).into_response())
}

async fn cancel_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let before = state.runner.cancel(&id).await?;
    let run = load(&state, &id).await?;
    let mut json = run_json(&run, false);
    json["previous_status"] = json!(before);
    Ok(Json(json).into_response())
}

async fn retry_run(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let run = state.runner.rerun(&id).await?;
    Ok(Json(run_json(&run, false)).into_response())
}

#[derive(Deserialize)]
struct LogsQuery {
    tail: Option<usize>,
    #[serde(default)]
    download: bool,
}

/// The log as plain text, one `[YYYY-MM-DD HH:MM:SS.mmm] text` line per output line.
async fn run_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let run = load(&state, &id).await?;
    let path = log_path(&state.config.logs_dir, &run.id);
    let lines = match q.tail {
        Some(n @ 1..=MAX_TAIL) => tail_lines(&path, n),
        Some(n) => {
            return Err(ApiError(AppError::BadRequest(format!(
                "tail must be between 1 and {MAX_TAIL}, got {n}"
            ))));
        }
        None => read_lines(&path, 1, usize::MAX),
    }
    .map_err(|e| AppError::internal("reading a run log", e))?;
    let mut text = String::with_capacity(lines.len() * 48);
    for line in &lines {
        text.push_str(&line.to_plain());
        text.push('\n');
    }
    let disposition = if q.download {
        format!(
            "attachment; filename=\"{}-{}.log\"",
            run.pipeline_name, run.id
        )
    } else {
        "inline".into()
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
struct StreamQuery {
    after: Option<u64>,
}

/// SSE: `data: {"seq", "ts", "stream", "text", "line"}` with `id: seq`, then `event: end`.
async fn run_log_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    load(&state, &id).await?;
    let after = resume_after(&headers, q.after);
    let events = follow(state, id, after).flat_map(|item| {
        let events: Vec<Event> = match item {
            Follow::Lines(lines) => lines
                .iter()
                .map(|l| {
                    let data = json!({"seq": l.seq, "ts": l.ts, "stream": l.stream, "text": l.text, "line": l.to_plain()});
                    Event::default().id(l.seq.to_string()).data(data.to_string())
                })
                .collect(),
            Follow::End(status) => vec![Event::default().event("end").data(json!({"status": status}).to_string())],
            Follow::Error(e) => vec![Event::default().event("error").data(json!({"error": e}).to_string())],
        };
        futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
    });
    Ok(sse_response(events).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_trigger_body;

    #[test]
    fn trigger_bodies() {
        assert!(parse_trigger_body(b"").unwrap().env_vars.is_empty());
        let b =
            parse_trigger_body(br#"{"env_vars": {"A": "1", "N": 2}, "parameters": null}"#).unwrap();
        assert_eq!(b.env_vars["N"], "2");
        for bad in [
            &b"[1]"[..],
            b"{\"env_vars\": 3}",
            b"{\"x\": {}}",
            b"{nope",
            b"{\"env_vars\": {\"1A\": \"x\"}}",
        ] {
            assert!(
                parse_trigger_body(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
