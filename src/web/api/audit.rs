//! `GET /api/audit` (ADMIN): the audit log newest first, filtered and paged
//! by entry id (`next_before` names the next page); `GET /api/audit/export`:
//! the same filters as CSV, every matching entry, safe to open in a
//! spreadsheet.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::audit::csv_export;
use crate::db;
use crate::web::{ApiError, AppState, audit_query};

/// Most entries one export holds (newest first); the filters narrow it.
pub const MAX_EXPORT_ROWS: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/export", get(export))
}

async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (filter, limit) = audit_query::parse(&q)?;
    let entries = db::audit_log::list(&state.pool, &filter, limit).await?;
    let next_before = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(json!({"entries": entries, "next_before": next_before})).into_response())
}

async fn export(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (mut filter, _) = audit_query::parse(&q)?;
    let pool = state.pool.clone();
    // Read in pages while the answer streams: an export never sits in memory whole.
    let body = async_stream::stream! {
        yield Ok::<_, std::io::Error>(bytes::Bytes::from_static(csv_export::HEADER.as_bytes()));
        let mut sent = 0usize;
        loop {
            let page = match db::audit_log::list(&pool, &filter, 1000).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "audit export stopped");
                    yield Err(std::io::Error::other("the audit export stopped: database error"));
                    break;
                }
            };
            let Some(last) = page.last().map(|e| e.id) else { break };
            let mut chunk = String::new();
            for e in &page {
                chunk.push_str(&csv_export::row(e));
            }
            sent += page.len();
            yield Ok(bytes::Bytes::from(chunk));
            if page.len() < 1000 || sent >= MAX_EXPORT_ROWS {
                break;
            }
            filter.before_id = Some(last);
        }
    };
    let name = format!(
        "attachment; filename=\"fastflow-audit-{}.csv\"",
        chrono::Utc::now().format("%Y%m%d-%H%M%S")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}
