//! What the access layer writes to the audit log for a state-changing
//! request: the route's action, the caller, their address, the outcome from
//! the status code, and any `AuditNote` the handler attached (the name of a
//! secret made, the user invited…). Sign-ins are written by their handlers.

use std::net::SocketAddr;

use axum::http::{Method, StatusCode};

use super::AppState;
use super::access_table::Route;
use super::identity::Identity;
use crate::audit;
use crate::db::audit_log::NewEntry;

/// A detail a handler adds to its response for the audit log (never a
/// secret's value).
#[derive(Debug, Clone)]
pub struct AuditNote(pub String);

/// The status a change really had, when the response carries another (an
/// htmx panel answers 200 with the refusal inside it).
#[derive(Debug, Clone, Copy)]
pub struct AuditStatus(pub StatusCode);

/// Routes whose handlers write their own entries (they know who signed in).
fn written_by_handler(pattern: &str) -> bool {
    matches!(pattern, "/login" | "/setup" | "/invite")
}

pub struct Change<'a> {
    pub method: &'a Method,
    pub route: &'a Route,
    pub who: Option<&'a Identity>,
    pub peer: Option<SocketAddr>,
    pub status: StatusCode,
    pub note: Option<AuditNote>,
}

/// Outcome by status: `ok`, `denied` (401 / 403) or `failed`.
fn outcome(status: StatusCode) -> &'static str {
    match status.as_u16() {
        0..=399 => "ok",
        401 | 403 => "denied",
        _ => "failed",
    }
}

pub async fn record(state: &AppState, c: Change<'_>) {
    if matches!(*c.method, Method::GET | Method::HEAD | Method::OPTIONS)
        || written_by_handler(c.route.pattern)
    {
        return;
    }
    let (actor, actor_id) = match c.who {
        Some(w) => (w.name.clone(), w.user_id.clone()),
        // Open and changing: the webhooks, which bring their own key.
        None => ("webhook".to_string(), None),
    };
    // The status only when it says something: a refusal or a failure.
    let status = (c.status.as_u16() >= 400).then(|| format!("HTTP {}", c.status.as_u16()));
    let note = c.note.map(|AuditNote(n)| audit::clip(&n));
    let via = c
        .who
        .and_then(|w| w.token_name.as_ref())
        .map(|t| format!("with token {t}"));
    let detail = [note, via, status]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
    audit::record(
        &state.pool,
        NewEntry {
            actor,
            actor_id,
            client_addr: c.peer.map(|p| p.ip().to_string()),
            action: audit::action_for(c.method.as_str(), c.route.pattern),
            target: Some(audit::target_for(c.route.pattern, &c.route.params)),
            outcome: outcome(c.status).into(),
            detail: (!detail.is_empty()).then_some(detail),
        },
    )
    .await;
}

/// A sign-in, a failed one, or a sign-out, written by the login handlers.
pub async fn sign_in_event(
    state: &AppState,
    action: &str,
    actor: &str,
    actor_id: Option<&str>,
    peer: &SocketAddr,
    outcome: &str,
    detail: String,
) {
    audit::record(
        &state.pool,
        NewEntry {
            actor: audit::clip(actor),
            actor_id: actor_id.map(String::from),
            client_addr: Some(peer.ip().to_string()),
            action: action.into(),
            target: None,
            outcome: outcome.into(),
            detail: Some(audit::clip(&detail)),
        },
    )
    .await;
}

/// An API token that opens nothing (unknown, revoked, expired): written while
/// the client is under its limit of refused tokens, so guessing is visible but
/// cannot flood the log.
pub async fn token_refused(state: &AppState, peer: Option<SocketAddr>, path: &str, why: &str) {
    audit::record(
        &state.pool,
        NewEntry {
            actor: "anonymous".into(),
            actor_id: None,
            client_addr: peer.map(|p| p.ip().to_string()),
            action: "token.refused".into(),
            target: Some(audit::clip(path)),
            outcome: "denied".into(),
            detail: Some(why.into()),
        },
    )
    .await;
}
