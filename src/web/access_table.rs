//! Every route of the app with the access each method needs — the one table
//! the access layer enforces and the route-by-route tests walk. A request that
//! matches no entry is refused by the layer, so a route cannot be reachable
//! without being listed here.

use std::sync::OnceLock;

use axum::http::Method;

use crate::auth::Role;

/// What a request must bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health, static files, login and setup, webhooks (which check
    /// their own key or signature).
    Open,
    /// Any signed-in user or token, whatever its role (their own session).
    SignedIn,
    /// A signed-in browser session, never an API token: what changes the
    /// account itself (password, tokens, linked providers), so a token —
    /// perhaps a READONLY one — cannot turn itself into more.
    Session,
    /// At least this role.
    AtLeast(Role),
    /// `METRICS_TOKEN` as a bearer token, else like `AtLeast(Readonly)`.
    MetricsScrape,
}

use Access::{AtLeast, Open, Session, SignedIn};
const READ: Access = AtLeast(Role::Readonly);
const WRITE: Access = AtLeast(Role::Write);
const ADMIN: Access = AtLeast(Role::Admin);

/// `(path, [(method, access)])`, paths in the router's syntax.
pub const TABLE: &[(&str, &[(Method, Access)])] = &[
    ("/health", &[(Method::GET, Open)]),
    ("/ready", &[(Method::GET, Open)]),
    ("/metrics", &[(Method::GET, Access::MetricsScrape)]),
    ("/static/{*path}", &[(Method::GET, Open)]),
    ("/login", &[(Method::GET, Open), (Method::POST, Open)]),
    ("/setup", &[(Method::GET, Open), (Method::POST, Open)]),
    ("/invite", &[(Method::GET, Open), (Method::POST, Open)]),
    ("/logout", &[(Method::POST, SignedIn)]),
    ("/", &[(Method::GET, READ)]),
    ("/fragments/engine-status", &[(Method::GET, READ)]),
    ("/fragments/dashboard", &[(Method::GET, READ)]),
    ("/pipelines", &[(Method::GET, READ)]),
    ("/fragments/pipelines", &[(Method::GET, READ)]),
    ("/pipelines/refresh", &[(Method::POST, WRITE)]),
    ("/pipelines/{name}", &[(Method::GET, READ)]),
    ("/fragments/pipelines/{name}/runs", &[(Method::GET, READ)]),
    ("/pipelines/{name}/run", &[(Method::POST, WRITE)]),
    ("/runs", &[(Method::GET, READ)]),
    ("/fragments/runs", &[(Method::GET, READ)]),
    ("/runs/cleanup", &[(Method::POST, ADMIN)]),
    ("/runs/{id}", &[(Method::GET, READ)]),
    ("/fragments/runs/{id}/summary", &[(Method::GET, READ)]),
    ("/fragments/runs/{id}/log", &[(Method::GET, READ)]),
    ("/fragments/runs/{id}/metrics", &[(Method::GET, READ)]),
    ("/runs/{id}/log/stream", &[(Method::GET, READ)]),
    ("/runs/{id}/cancel", &[(Method::POST, WRITE)]),
    ("/runs/{id}/retry", &[(Method::POST, WRITE)]),
    ("/scheduler", &[(Method::GET, READ)]),
    ("/scheduler/{id}", &[(Method::GET, READ)]),
    ("/scheduler/{id}/enabled", &[(Method::POST, WRITE)]),
    ("/secrets", &[(Method::GET, WRITE), (Method::POST, ADMIN)]),
    ("/fragments/secrets", &[(Method::GET, WRITE)]),
    ("/secrets/encrypt-for-pipeline", &[(Method::POST, WRITE)]),
    ("/secrets/{key}/change", &[(Method::POST, ADMIN)]),
    ("/secrets/{key}/delete", &[(Method::POST, ADMIN)]),
    ("/sync", &[(Method::GET, READ), (Method::POST, WRITE)]),
    ("/fragments/sync", &[(Method::GET, READ)]),
    ("/fragments/sync/log", &[(Method::GET, READ)]),
    ("/sync/test", &[(Method::POST, WRITE)]),
    ("/sync/settings", &[(Method::POST, WRITE)]),
    ("/sync/host-key/reset", &[(Method::POST, ADMIN)]),
    ("/sync/repo", &[(Method::POST, WRITE)]),
    ("/sync/repo/test", &[(Method::POST, WRITE)]),
    ("/sync/repo/deploy-key", &[(Method::POST, WRITE)]),
    ("/sync/repo/remove", &[(Method::POST, WRITE)]),
    ("/settings", &[(Method::GET, SignedIn)]),
    (
        "/settings/notifications",
        &[(Method::GET, ADMIN), (Method::POST, ADMIN)],
    ),
    ("/settings/notifications/test", &[(Method::POST, WRITE)]),
    ("/fragments/notifications", &[(Method::GET, WRITE)]),
    ("/settings/password", &[(Method::POST, Session)]),
    ("/settings/tokens", &[(Method::POST, Session)]),
    ("/settings/tokens/{id}/revoke", &[(Method::POST, Session)]),
    (
        "/settings/linked/{provider}/unlink",
        &[(Method::POST, Session)],
    ),
    ("/audit", &[(Method::GET, ADMIN)]),
    ("/system", &[(Method::GET, ADMIN)]),
    ("/users", &[(Method::GET, ADMIN)]),
    ("/users/local", &[(Method::POST, ADMIN)]),
    ("/users/invite", &[(Method::POST, ADMIN)]),
    ("/users/invites/{id}/revoke", &[(Method::POST, ADMIN)]),
    ("/users/{id}/role", &[(Method::POST, ADMIN)]),
    ("/users/{id}/block", &[(Method::POST, ADMIN)]),
    ("/users/{id}/unblock", &[(Method::POST, ADMIN)]),
    ("/users/{id}/delete", &[(Method::POST, ADMIN)]),
    ("/users/{id}/approve", &[(Method::POST, ADMIN)]),
    ("/users/{id}/reject", &[(Method::POST, ADMIN)]),
    ("/api/auth/providers", &[(Method::GET, Open)]),
    ("/api/auth/{provider}/authorize", &[(Method::GET, Open)]),
    ("/api/auth/{provider}/callback", &[(Method::GET, Open)]),
    (
        "/api/auth/link/{provider}",
        &[(Method::GET, Session), (Method::DELETE, Session)],
    ),
    ("/api/auth/me", &[(Method::GET, SignedIn)]),
    ("/api/auth/logout", &[(Method::POST, SignedIn)]),
    ("/api/pipelines", &[(Method::GET, READ)]),
    ("/api/pipelines/refresh", &[(Method::POST, WRITE)]),
    ("/api/pipelines/{name}", &[(Method::GET, READ)]),
    ("/api/pipelines/{name}/run", &[(Method::POST, WRITE)]),
    ("/api/pipelines/{name}/runs", &[(Method::GET, READ)]),
    ("/api/runs", &[(Method::GET, READ)]),
    ("/api/runs/{id}", &[(Method::GET, READ)]),
    ("/api/runs/{id}/logs", &[(Method::GET, READ)]),
    ("/api/runs/{id}/logs/stream", &[(Method::GET, READ)]),
    ("/api/runs/{id}/metrics", &[(Method::GET, READ)]),
    ("/api/runs/{id}/metrics/stream", &[(Method::GET, READ)]),
    ("/api/runs/{id}/cancel", &[(Method::POST, WRITE)]),
    ("/api/runs/{id}/retry", &[(Method::POST, WRITE)]),
    ("/api/scheduler/jobs", &[(Method::GET, READ)]),
    (
        "/api/scheduler/jobs/{id}",
        &[(Method::GET, READ), (Method::PUT, WRITE)],
    ),
    ("/api/scheduler/jobs/{id}/next-runs", &[(Method::GET, READ)]),
    ("/api/scheduler/jobs/{id}/runs", &[(Method::GET, READ)]),
    ("/api/scheduler/jobs/{id}/slots", &[(Method::GET, READ)]),
    (
        "/api/secrets",
        &[(Method::GET, ADMIN), (Method::POST, ADMIN)],
    ),
    ("/api/secrets/from-pipelines", &[(Method::GET, READ)]),
    (
        "/api/secrets/encrypt-for-pipeline",
        &[(Method::POST, WRITE)],
    ),
    (
        "/api/secrets/{key}",
        &[(Method::PUT, ADMIN), (Method::DELETE, ADMIN)],
    ),
    ("/api/sync", &[(Method::POST, WRITE)]),
    ("/api/sync/status", &[(Method::GET, READ)]),
    ("/api/sync/logs", &[(Method::GET, READ)]),
    (
        "/api/sync/settings",
        &[(Method::GET, READ), (Method::PUT, WRITE)],
    ),
    ("/api/sync/host-key/status", &[(Method::GET, ADMIN)]),
    ("/api/sync/host-key/reset", &[(Method::POST, ADMIN)]),
    (
        "/api/sync/repo-config",
        &[
            (Method::GET, READ),
            (Method::POST, WRITE),
            (Method::DELETE, WRITE),
        ],
    ),
    ("/api/sync/repo-config/test", &[(Method::POST, WRITE)]),
    (
        "/api/sync/repo-config/generate-deploy-key",
        &[(Method::POST, WRITE)],
    ),
    ("/api/sync/webhook", &[(Method::POST, Open)]),
    (
        "/api/webhooks/{pipeline_name}/{webhook_key}",
        &[(Method::POST, Open)],
    ),
    (
        "/api/settings/notifications",
        &[(Method::GET, ADMIN), (Method::PUT, ADMIN)],
    ),
    ("/api/settings/test-email", &[(Method::POST, WRITE)]),
    ("/api/settings/test-teams", &[(Method::POST, WRITE)]),
    ("/api/settings/test-webhook", &[(Method::POST, WRITE)]),
    ("/api/notifications", &[(Method::GET, WRITE)]),
    ("/api/system/cleanup", &[(Method::POST, ADMIN)]),
    ("/api/system/version", &[(Method::GET, READ)]),
    ("/api/users", &[(Method::GET, ADMIN), (Method::POST, ADMIN)]),
    (
        "/api/users/{id}",
        &[
            (Method::GET, ADMIN),
            (Method::PUT, ADMIN),
            (Method::DELETE, ADMIN),
        ],
    ),
    ("/api/users/{id}/block", &[(Method::POST, ADMIN)]),
    ("/api/users/{id}/unblock", &[(Method::POST, ADMIN)]),
    ("/api/users/{id}/approve", &[(Method::POST, ADMIN)]),
    ("/api/users/{id}/reject", &[(Method::POST, ADMIN)]),
    ("/api/users/invite", &[(Method::POST, ADMIN)]),
    ("/api/users/invites", &[(Method::GET, ADMIN)]),
    ("/api/users/invites/{id}", &[(Method::DELETE, ADMIN)]),
    ("/api/stats/daily", &[(Method::GET, READ)]),
    ("/api/audit", &[(Method::GET, ADMIN)]),
    ("/api/audit/export", &[(Method::GET, ADMIN)]),
];

/// The access `method` on `path` needs; `None` when no route has that path and
/// method. `HEAD` is a `GET`.
pub fn lookup(method: &Method, path: &str) -> Option<Access> {
    lookup_route(method, path).map(|r| r.access)
}

/// A request's route: its pattern, its parameters and the access it needs.
pub struct Route {
    pub pattern: &'static str,
    pub params: Vec<(String, String)>,
    pub access: Access,
}

type Entries = (&'static str, &'static [(Method, Access)]);

/// The methods a path has (`GET, POST`), when it is a route at all.
pub fn methods_of(path: &str) -> Option<String> {
    let found = router().at(path).ok()?;
    let names: Vec<&str> = found.value.1.iter().map(|(m, _)| m.as_str()).collect();
    Some(names.join(", "))
}

fn router() -> &'static matchit::Router<Entries> {
    static ROUTER: OnceLock<matchit::Router<Entries>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut r = matchit::Router::new();
        for (path, methods) in TABLE {
            // The table is a constant checked by a test: a bad path never ships.
            let _ = r.insert(*path, (*path, *methods));
        }
        r
    })
}

pub fn lookup_route(method: &Method, path: &str) -> Option<Route> {
    let router = router();
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let found = router.at(path).ok()?;
    let (pattern, methods) = *found.value;
    let access = methods.iter().find(|(m, _)| m == method)?.1;
    Some(Route {
        pattern,
        params: found
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_accepted_and_listed_once() {
        let mut r = matchit::Router::new();
        for (path, _) in TABLE {
            assert!(r.insert(*path, ()).is_ok(), "{path}");
        }
    }

    #[test]
    fn lookups_follow_the_table() {
        assert_eq!(lookup(&Method::GET, "/health"), Some(Open));
        assert_eq!(lookup(&Method::HEAD, "/runs/abc"), Some(READ));
        assert_eq!(lookup(&Method::POST, "/runs/abc/cancel"), Some(WRITE));
        assert_eq!(lookup(&Method::POST, "/runs/cleanup"), Some(ADMIN));
        assert_eq!(lookup(&Method::DELETE, "/api/secrets/DB"), Some(ADMIN));
        assert_eq!(lookup(&Method::GET, "/static/htmx.min.js"), Some(Open));
        assert_eq!(lookup(&Method::POST, "/api/webhooks/p/k"), Some(Open));
        assert_eq!(lookup(&Method::GET, "/nope"), None);
        assert_eq!(lookup(&Method::DELETE, "/runs/abc"), None);
    }
}
