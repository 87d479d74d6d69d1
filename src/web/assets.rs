//! Static files, embedded in the binary so it runs from any directory. Pages
//! link them with a content hash (`/static/app.js?v=…`, see `url`), so a linked
//! file may be cached for a year: a changed file gets a new address. They go out
//! compressed (gzip or brotli, as the browser accepts).

use axum::Router;
use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use sha2::{Digest, Sha256};

use super::AppState;

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/style.css"),
    ),
    (
        "copy.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/copy.js"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/app.js"),
    ),
    (
        "vendor/htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/vendor/htmx.min.js"),
    ),
    (
        "vendor/sse.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/vendor/sse.js"),
    ),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/{*path}", get(serve))
        .layer(tower_http::compression::CompressionLayer::new())
}

/// The first 12 hex digits of each file's SHA-256, computed once.
fn versions() -> &'static HashMap<&'static str, String> {
    static VERSIONS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, _, body)| {
                let digest = Sha256::digest(body);
                let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
                (*name, hex)
            })
            .collect()
    })
}

/// The address pages link a static file by: its path and content hash.
pub fn url(name: &str) -> String {
    match versions().get(name) {
        Some(v) => format!("/static/{name}?v={v}"),
        None => format!("/static/{name}"),
    }
}

struct AssetQuery {
    v: Option<String>,
}

async fn serve(Path(path): Path<String>, RawQuery(raw): RawQuery) -> Response {
    let Some((name, mime, body)) = FILES.iter().find(|(name, _, _)| *name == path) else {
        return super::AppError::NotFound(format!(
            "no such static file: {}",
            crate::pipelines::fields::shown(&path)
        ))
        .into_response();
    };
    // The first `v` counts; a malformed or repeated one is just not current.
    let q = AssetQuery {
        v: serde_urlencoded::from_str::<Vec<(String, String)>>(raw.as_deref().unwrap_or(""))
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "v").map(|(_, v)| v)),
    };
    // Only the current content's address is immutable; an old or bare one is
    // revalidated soon, so it never pins a stale file.
    let current = q.v.as_deref() == versions().get(name).map(String::as_str);
    let cache = if current {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (header::CONTENT_TYPE, *mime),
            (header::CACHE_CONTROL, cache),
        ],
        *body,
    )
        .into_response()
}
