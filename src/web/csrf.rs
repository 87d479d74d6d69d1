//! The request being handled, as the templates need it: whether a caller is
//! signed in, and their session's CSRF token. The access layer puts both in
//! scope around the handler; pages render the token into forms (`csrf_token`)
//! and into htmx's headers (`X-CSRF-Token`).

use std::future::Future;

#[derive(Clone, Default)]
pub struct Current {
    pub signed_in: bool,
    /// Empty for a bearer token (it needs none) or nobody.
    pub csrf: String,
}

tokio::task_local! {
    static CURRENT: Current;
}

/// Runs `f` with `current` as the request being handled.
pub async fn scope<F: Future>(current: Current, f: F) -> F::Output {
    CURRENT.scope(current, f).await
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
