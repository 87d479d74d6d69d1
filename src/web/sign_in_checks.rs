//! The checks every sign-in passes before and around the password: rate
//! limits per client (`over_limit`, 429 with `Retry-After`), at most a few
//! password hashes at once, where a login may send the browser next, whether
//! the page was opened at `BASE_URL`'s address, and what a username may be.

use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};

use super::{AppError, AppState};

/// Sign-in and setup attempts per client address and minute (the first burst
/// may use them all at once); more get 429 with `Retry-After`.
pub const ATTEMPTS_PER_MINUTE: u32 = 10;

/// Password checks running at once (argon2id takes 19 MiB each): more wait,
/// so a flood of sign-ins from many addresses cannot exhaust memory.
const CONCURRENT_PASSWORD_CHECKS: usize = 4;

/// Runs `work` (a password hash or check) when a slot is free.
pub async fn password_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    static SLOTS: tokio::sync::Semaphore =
        tokio::sync::Semaphore::const_new(CONCURRENT_PASSWORD_CHECKS);
    let _slot = SLOTS.acquire().await.ok()?;
    tokio::task::spawn_blocking(work).await.ok()
}

/// A 429 when `peer` tried too often this minute.
pub fn too_many(state: &AppState, peer: &SocketAddr) -> Option<Response> {
    over_limit(
        &state.login_limiter,
        ATTEMPTS_PER_MINUTE,
        "sign-in attempts",
        peer,
    )
}

/// A 429 with `Retry-After` when `peer` used up `limiter` this minute.
pub fn over_limit(
    limiter: &super::api::webhooks::Limiter,
    per_minute: u32,
    what: &str,
    peer: &SocketAddr,
) -> Option<Response> {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter.check_key(&peer.ip()).err().map(|_| {
        let mut r = AppError::TooManyRequests(format!(
            "more than {per_minute} {what} a minute from {}; wait a minute",
            peer.ip()
        ))
        .into_response();
        r.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("60"),
        );
        r
    })
}

/// Where to go after signing in: a path of this site, never another site.
pub fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.clone()
        }
        _ => "/".into(),
    }
}

/// Sessions (a `Secure` cookie when `BASE_URL` is https) and OAuth callbacks
/// belong to `BASE_URL`'s host: opened elsewhere, a sign-in succeeds and is
/// lost. Says so, instead of a silent loop back to this page.
pub fn address_mismatch(base_url: &str, headers: &axum::http::HeaderMap) -> String {
    let host_of = |h: &str| {
        let h = h.trim().to_ascii_lowercase();
        match h.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
            None => h.split(':').next().unwrap_or_default().to_string(),
        }
    };
    let Some(asked) = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_of)
    else {
        return String::new();
    };
    let rest = base_url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(base_url);
    let base_host = host_of(rest.split('/').next().unwrap_or_default());
    if asked == base_host {
        return String::new();
    }
    format!(
        "This page was opened at {asked}, but BASE_URL is {base_url}: a provider sends you back to that address (where this browser has no session), and an https BASE_URL makes the session cookie secure-only, so signing in here may not stick. Open {base_url}/login, or set BASE_URL to the address you use."
    )
}

/// The checks of a form that makes an account (setup, invitation): the
/// username, the two passwords alike, then the argon2id hash — or what to tell
/// the person (`Ok(Err(notice))`).
pub async fn new_account_hash(
    username: &str,
    password: &str,
    again: &str,
) -> Result<Result<String, String>, AppError> {
    if let Err(problem) = check_username(username) {
        return Ok(Err(problem));
    }
    if password != again {
        return Ok(Err("The two passwords differ.".into()));
    }
    let typed = password.to_string();
    match password_work(move || crate::auth::password::hash(&typed)).await {
        Some(Ok(hash)) => Ok(Ok(hash)),
        Some(Err(e)) => Ok(Err(format!("{e}."))),
        None => Err(AppError::internal(
            "hashing a password",
            "the worker stopped",
        )),
    }
}

/// 1 to 64 characters: letters, digits, `.`, `_`, `-`, `@`.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err("A username has 1 to 64 letters, digits, `.`, `_`, `-` or `@`.".into())
    }
}
