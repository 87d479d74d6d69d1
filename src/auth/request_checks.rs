//! The access layer every route passes through. Login and roles arrive with the
//! authentication issue; today it defends a server that anyone on the machine
//! (or network) can reach against browsers being used against it:
//!
//! - **DNS rebinding**: a page on `evil.example` whose name later resolves to
//!   127.0.0.1 is same-origin to the browser, so only the `Host` header tells.
//!   Requests must name a host derived from `BASE_URL`, loopback (`localhost`),
//!   an IP address, or one listed in `ALLOWED_HOSTS` (`*` allows any).
//! - **Cross-site writes**: a POST from another site, or from an opaque origin
//!   (`Origin: null`: sandboxed iframes, `data:` pages), is refused.
//! - **Framing and sniffing**: every response says `X-Frame-Options: DENY`, a CSP
//!   that allows only our own scripts, styles and frames-of-none, `nosniff` and a
//!   same-origin referrer policy.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;

/// Refuses requests for unknown hosts and cross-site state changes.
pub async fn access_guard(
    State(config): State<Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    for host in match request_hosts(&request) {
        Ok(hosts) => hosts,
        Err(reason) => return (StatusCode::BAD_REQUEST, format!("{reason}\n")).into_response(),
    } {
        if !host_allowed(&host, &config.allowed_hosts) {
            let host = crate::pipelines::fields::shown(&host);
            let message = format!(
                "Host `{host}` is not allowed (a defence against DNS rebinding). Open Fast-Flow at {} (BASE_URL), or start it with ALLOWED_HOSTS={host} (comma-separated for several names)\n",
                config.base_url
            );
            return (StatusCode::MISDIRECTED_REQUEST, message).into_response();
        }
    }
    if let Some(reason) = cross_site_write(&request) {
        return (
            StatusCode::FORBIDDEN,
            format!("cross-site request refused: {reason}\n"),
        )
            .into_response();
    }
    next.run(request).await
}

/// The host names the request addresses (lower case, without port or trailing dot):
/// its `Host` header and, in an absolute-form request line, the URI's authority.
/// Several `Host` headers, or one that is not text, are refused outright.
fn request_hosts(request: &Request) -> Result<Vec<String>, &'static str> {
    let mut headers = request.headers().get_all(header::HOST).iter();
    let mut hosts = Vec::new();
    if let Some(value) = headers.next() {
        let text = value
            .to_str()
            .map_err(|_| "the Host header is not valid text")?;
        hosts.push(host_name(text));
    }
    if headers.next().is_some() {
        return Err("more than one Host header");
    }
    if let Some(authority) = request.uri().authority() {
        hosts.push(host_name(authority.as_str()));
    }
    Ok(hosts)
}

/// `Example.com.:8000` → `example.com`; `[::1]:8000` → `[::1]`.
fn host_name(authority: &str) -> String {
    let authority = authority.trim();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or_default()),
        None => authority.split(':').next().unwrap_or_default().to_string(),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        // An IP literal cannot be rebound: the attacker's page would be on that IP itself.
        || bare.parse::<IpAddr>().is_ok()
        || allowed.iter().any(|a| a == "*" || a == host)
}

/// Why a state-changing request is cross-site, if it is.
fn cross_site_write(request: &Request) -> Option<&'static str> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return None;
    }
    let headers = request.headers();
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v == "cross-site")
    {
        return Some("the browser marked it cross-site");
    }
    // Browsers send Origin on POST; curl and scripts do not.
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())?;
    if origin.trim() == "null" {
        return Some("it comes from an opaque origin (Origin: null)");
    }
    let origin_authority = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin)
        .trim_end_matches('/');
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) if host.eq_ignore_ascii_case(origin_authority) => None,
        _ => Some("its Origin is another site"),
    }
}

/// The security headers every response carries (unless a handler set its own).
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    [
        set(header::X_FRAME_OPTIONS, "DENY"),
        set(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        set(header::REFERRER_POLICY, "same-origin"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let allowed = vec!["flow.example.com".to_string()];
        for ok in [
            "localhost",
            "app.localhost",
            "127.0.0.1",
            "[::1]",
            "10.1.2.3",
            "flow.example.com",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "flow.example.com.evil.example",
            "localhost.evil",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
        assert!(host_allowed("anything", &["*".to_string()]));
        assert_eq!(host_name("Flow.Example.com:8000"), "flow.example.com");
        assert_eq!(host_name("localhost.:8000"), "localhost");
        assert_eq!(host_name("[::1]:8000"), "[::1]");
    }
}
