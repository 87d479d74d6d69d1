//! The one access layer every request passes: it looks the route up in
//! `access_table`, finds the caller (`identity`), and lets the request through
//! only with the access the table asks for. Anonymous callers get 401 JSON on
//! `/api/*` and a redirect to `/login` on pages; a role too low gets 403. A
//! state-changing request made with a session cookie must carry the session's
//! CSRF token (header `X-CSRF-Token`, or form field `csrf_token`); one made
//! with a bearer token needs none. The caller's CSRF token is in scope while
//! the handler runs, for the templates (`csrf::token`).

use axum::body::{Body, to_bytes};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use super::access_table::{self, Access};
use super::audit_trail::{self, AuditNote, AuditStatus};
use super::identity::{self, Caller, Identity};
use super::sign_in_checks::over_limit;
use super::stream_guard;
use super::{ApiError, AppError, AppState, csrf, is_htmx};

/// Refused bearer tokens and personal token changes per client address and
/// minute (`settings_page` counts the changes).
pub const TOKEN_ATTEMPTS_PER_MINUTE: u32 = 30;

/// Most bytes of a form body read to find its CSRF field.
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// The request carries `METRICS_TOKEN` (compared in constant time).
fn metrics_token_matches(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    use subtle::ConstantTimeEq;
    match (&state.config.ops.metrics_token, identity::bearer(headers)) {
        (Some(token), Some(sent)) => bool::from(token.expose().as_bytes().ct_eq(sent.as_bytes())),
        _ => false,
    }
}

pub async fn enforce(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // A scraper wants a 401, not the sign-in page.
    let api = path.starts_with("/api/") || path == "/api" || path == "/metrics";
    let method = req.method().clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Some(route) = access_table::lookup_route(req.method(), &path) else {
        if let Some(allowed) = access_table::methods_of(&path) {
            let mut r = refuse(
                api,
                AppError::MethodNotAllowed(format!(
                    "{} is not allowed here; use {allowed}",
                    req.method()
                )),
            );
            if let Ok(v) = HeaderValue::from_str(&allowed) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        // Not a route (or not this method): nothing is reachable unlisted. A
        // signed-in reader's 404 page keeps their navigation.
        let missing = AppError::NotFound(format!("no such page: {}", shown_path(&path)));
        let session = req.extensions().get::<Session>().cloned();
        if !api
            && let Caller::Known(who) =
                identity::resolve(&state, req.headers(), session.as_ref()).await
        {
            return csrf::scope(current_of(&who, &path), async move { refuse(api, missing) }).await;
        }
        return refuse(api, missing);
    };
    let access = match route.access {
        Access::MetricsScrape if metrics_token_matches(&state, req.headers()) => Access::Open,
        Access::MetricsScrape => Access::AtLeast(crate::auth::Role::Readonly),
        other => other,
    };
    let change = |who, status, note| audit_trail::Change {
        method: &method,
        route: &route,
        who,
        peer,
        status,
        note,
    };
    if access == Access::Open {
        // Static files, health, login, webhooks: nobody to look up, no query spent.
        let mut response = csrf::scope(csrf::Current::default(), next.run(req)).await;
        let note = response.extensions_mut().remove::<AuditNote>();
        audit_trail::record(&state, change(None, response.status(), note)).await;
        return response;
    }
    let session = req.extensions().get::<Session>().cloned();
    let who = match identity::resolve(&state, req.headers(), session.as_ref()).await {
        Caller::Refused(why) => {
            // Guessing tokens costs a lookup each: a client that keeps sending
            // unknown ones is slowed down like a password guesser.
            if let Some(peer) = peer
                && let Some(limited) = over_limit(
                    &state.token_limiter,
                    TOKEN_ATTEMPTS_PER_MINUTE,
                    "refused API tokens or token changes",
                    &peer,
                )
            {
                return limited;
            }
            audit_trail::token_refused(&state, peer, &path, why).await;
            return refuse(api, AppError::Unauthorized(why.to_string()));
        }
        // A token sent another way than `Bearer` is said so (on pages, a reverse
        // proxy's own Basic credentials may be there: those go to the login).
        Caller::Anonymous if api && req.headers().contains_key(header::AUTHORIZATION) => {
            return refuse(
                api,
                AppError::Unauthorized(
                    "send the API token as `Authorization: Bearer <token>`".into(),
                ),
            );
        }
        Caller::Anonymous => return sign_in_first(api, &req),
        Caller::Known(who) => who,
    };
    let current = current_of(&who, &path);
    // A refusal of a known caller is a page with their navigation.
    let refuse_known = |e: AppError| csrf::scope(current.clone(), async move { refuse(api, e) });
    if access == Access::Session && who.csrf.is_none() {
        let refused = refuse_known(AppError::Forbidden(
            "this needs a signed-in browser session: an API token cannot change the account's password, tokens or linked providers".into(),
        ))
        .await;
        audit_trail::record(&state, change(Some(&who), refused.status(), None)).await;
        return refused;
    }
    if let Access::AtLeast(role) = access
        && who.role < role
    {
        let refused = refuse_known(AppError::Forbidden(format!(
            "this needs the {role} role; {} has {}",
            who.name, who.role
        )))
        .await;
        audit_trail::record(&state, change(Some(&who), refused.status(), None)).await;
        return refused;
    }
    let mut req = req;
    if !is_safe(req.method()) {
        req = match check_csrf(&who, req).await {
            Ok(req) => req,
            Err(e) => {
                let refused = refuse_known(e).await;
                audit_trail::record(&state, change(Some(&who), refused.status(), None)).await;
                return refused;
            }
        };
    }
    req.extensions_mut().insert(who.clone());
    let asked_with = req.headers().clone();
    let mut response = csrf::scope(current, next.run(req)).await;
    if stream_guard::is_stream(response.headers()) {
        let (parts, body) = response.into_parts();
        let body = stream_guard::guard(state.clone(), asked_with, session, body);
        response = Response::from_parts(parts, body);
    }
    let note = response.extensions_mut().remove::<AuditNote>();
    let status = response
        .extensions_mut()
        .remove::<AuditStatus>()
        .map_or(response.status(), |s| s.0);
    audit_trail::record(&state, change(Some(&who), status, note)).await;
    // What a signed-in caller sees (and its CSRF token) stays out of shared caches
    // and the browser's back-forward store.
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn shown_path(path: &str) -> String {
    crate::pipelines::fields::shown(path)
}

fn refuse(api: bool, e: AppError) -> Response {
    if api {
        ApiError(e).into_response()
    } else {
        e.into_response()
    }
}

/// 401 JSON for the API; for pages a redirect to the login (htmx is told to
/// load it as a whole page, not to swap it into a fragment).
/// What the templates need to know of a known caller.
fn current_of(who: &Identity, path: &str) -> csrf::Current {
    csrf::Current {
        signed_in: true,
        csrf: who.csrf.clone().unwrap_or_default(),
        name: who.name.clone(),
        role: Some(who.role),
        path: path.to_string(),
    }
}

fn sign_in_first(api: bool, req: &Request) -> Response {
    if api {
        return refuse(
            true,
            AppError::Unauthorized(
                "sign in first, or send an API token as `Authorization: Bearer <token>`".into(),
            ),
        );
    }
    // An htmx request (a fragment poll) comes back to the page it was made from.
    let from_page = is_htmx(req.headers())
        .then(|| req.headers().get("HX-Current-URL"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|url| url.split_once("://").map(|(_, rest)| rest))
        .map(|rest| rest.find('/').map_or("/", |i| &rest[i..]).to_string());
    let next = from_page.unwrap_or_else(|| {
        if is_htmx(req.headers()) {
            return "/".into();
        }
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into())
    });
    let target = format!("/login?next={}", urlencode(&next));
    if is_htmx(req.headers()) {
        let mut r = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(v) = HeaderValue::from_str(&target) {
            r.headers_mut().insert("HX-Redirect", v);
        }
        return r;
    }
    Redirect::to(&target).into_response()
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// The session's token in `X-CSRF-Token`, or as `csrf_token` in a form body
/// (read, checked and put back for the handler).
async fn check_csrf(who: &Identity, req: Request) -> Result<Request, AppError> {
    let Some(expected) = who.csrf.as_deref() else {
        return Ok(req); // a bearer token: no cookie, no cross-site request to forge
    };
    let refused = || {
        AppError::Forbidden(
            "this form is out of date or came from elsewhere (no valid CSRF token): reload the page and try again".into(),
        )
    };
    if let Some(sent) = req.headers().get("x-csrf-token") {
        return if same(sent.as_bytes(), expected.as_bytes()) {
            Ok(req)
        } else {
            Err(refused())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refused());
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge("the form is too large".into()))?;
    let sent = form_urlencoded_field(&bytes, "csrf_token");
    if !sent.is_some_and(|s| same(s.as_bytes(), expected.as_bytes())) {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Compares in constant time (the token is a secret of the session).
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
