//! The request being handled, as the templates need it: whether a caller is
//! signed in, who, with which role, and their session's CSRF token. The access layer puts both in
//! scope around the handler; pages render the token into forms (`csrf_token`)
//! and into htmx's headers (`X-CSRF-Token`).

use std::future::Future;

#[derive(Clone, Default)]
pub struct Current {
    pub signed_in: bool,
    /// Empty for a bearer token (it needs none) or nobody.
    pub csrf: String,
    /// The caller's name (shown in the navigation) and role.
    pub name: String,
    pub role: Option<crate::auth::Role>,
    /// The request's path: the navigation marks the section it belongs to.
    pub path: String,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// Runs `f` with `current` as the request being handled.
pub async fn scope<F: Future>(current: Current, f: F) -> F::Output {
    CURRENT.scope(current, f).await
}

/// The request being handled (for work that renders later, like a live
/// stream's events); the default outside a request.
pub fn current() -> Current {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}

/// The current request's CSRF token; empty outside a request or without a session.
pub fn token() -> String {
    CURRENT.try_with(|c| c.csrf.clone()).unwrap_or_default()
}

/// Whether the current request comes from a signed-in user or a token.
pub fn signed_in() -> bool {
    CURRENT.try_with(|c| c.signed_in).unwrap_or(false)
}

/// A fresh token for a new session.
pub fn fresh() -> String {
    crate::auth::api_token::generate()
        .map(|t| t.hash)
        .unwrap_or_default()
}

/// The caller's name; empty when nobody is signed in.
pub fn name() -> String {
    CURRENT.try_with(|c| c.name.clone()).unwrap_or_default()
}

/// Whether the caller is an admin (the navigation shows Users and Audit).
pub fn is_admin() -> bool {
    CURRENT
        .try_with(|c| c.role == Some(crate::auth::Role::Admin))
        .unwrap_or(false)
}

/// Whether the caller may change things (WRITE or ADMIN).
pub fn can_write() -> bool {
    CURRENT
        .try_with(|c| c.role.is_some_and(|r| r >= crate::auth::Role::Write))
        .unwrap_or(false)
}

/// `aria-current="page"` for the navigation link of `section` (`/runs`) when the
/// request is in it (`/runs`, `/runs/…`); `/pipelines` also owns `/`'s neighbours.
pub fn current_section(section: &str) -> &'static str {
    let inside = CURRENT
        .try_with(|c| {
            c.path == section
                || c.path
                    .strip_prefix(section)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .unwrap_or(false);
    if inside { "page" } else { "false" }
}
