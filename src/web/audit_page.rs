//! The Audit page (ADMIN): the audit log newest first, filtered by actor,
//! action, outcome and date range (all in the URL, so a view can be shared),
//! paged by entry id, with a CSV export of the same filters.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::page_query::PageQuery as Query;
use super::views::fmt_time;
use super::{AppError, AppState, audit_query};
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(page))
}

pub struct EntryRow {
    pub at: String,
    pub actor: String,
    pub client_addr: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

#[derive(Template, WebTemplate, Default)]
#[template(path = "pages/audit.html")]
pub struct AuditPage {
    pub rows: Vec<EntryRow>,
    pub actors: Vec<String>,
    pub actions: Vec<String>,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub since: String,
    pub until: String,
    pub filtered: bool,
    /// Query string of the next (older) page; empty on the last.
    pub older: String,
    /// Query string of the filters, for the export.
    pub export: String,
    pub notice: String,
}

async fn page(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let (actors, mut actions) = db::audit_log::distinct_values(&state.pool).await?;
    // Each family (`login.` for `login`, `login.failed`, …) is a choice too, and
    // the filter in force stays chosen even when nothing matches it.
    let mut families: Vec<String> = actions
        .iter()
        .filter_map(|a| a.split_once('.').map(|(head, _)| format!("{head}.")))
        .collect();
    families.dedup();
    actions.extend(families);
    if let Some(a) = q.get("action").map(|a| a.trim()).filter(|a| !a.is_empty())
        && !actions.iter().any(|x| x == a)
    {
        actions.push(crate::audit::clip(a));
    }
    actions.sort();
    actions.dedup();
    let mut page = AuditPage {
        actors,
        actions,
        actor: get("actor"),
        action: get("action"),
        outcome: get("outcome"),
        since: get("since"),
        until: get("until"),
        export: audit_query::query_string(&q, &["limit"]),
        ..AuditPage::default()
    };
    page.filtered = [
        &page.actor,
        &page.action,
        &page.outcome,
        &page.since,
        &page.until,
    ]
    .iter()
    .any(|v| !v.is_empty());
    let (filter, limit) = match audit_query::parse(&q) {
        Ok(parsed) => parsed,
        Err(e) => {
            page.notice = e.message();
            return Ok((e.status(), page).into_response());
        }
    };
    let entries = db::audit_log::list(&state.pool, &filter, limit).await?;
    if entries.len() as i64 == limit
        && let Some(last) = entries.last()
    {
        let mut next = audit_query::query_string(&q, &[]);
        if !next.is_empty() {
            next.push('&');
        }
        next.push_str(&format!("before={}", last.id));
        page.older = next;
    }
    page.rows = entries
        .into_iter()
        .map(|e| EntryRow {
            at: fmt_time(&e.at),
            actor: e.actor,
            client_addr: e.client_addr.unwrap_or_default(),
            action: e.action,
            target: e.target.unwrap_or_default(),
            outcome: e.outcome,
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    Ok(page.into_response())
}
