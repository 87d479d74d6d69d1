//! The release check (Fast-Flow 1.x's `GET /api/system/version`): this build's
//! version (the `VERSION` file, which the tests keep equal to Cargo's), and
//! whether `VERSION_CHECK_URL` names a newer release — checked at start, daily at
//! `CLEANUP_TIME`, and on demand (`force_check=true`, at most once a minute).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// This build's version, from the `VERSION` file at the repository's root.
pub fn current_version() -> &'static str {
    include_str!("../VERSION").trim().trim_start_matches('v')
}

/// A release feed may take this long before the check gives up.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest release document read (GitHub's are a few KiB).
const MAX_BODY_BYTES: usize = 1 << 20;
/// On-demand checks closer together than this answer the previous result.
const MIN_FORCED_INTERVAL: Duration = Duration::from_secs(60);

/// The answer of `GET /api/system/version` (Fast-Flow 1.x's fields).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VersionInfo {
    pub version: String,
    pub latest_version: Option<String>,
    pub update_available: bool,
    pub last_checked: Option<DateTime<Utc>>,
    pub check_error: Option<String>,
}

pub struct ReleaseCheck {
    url: Option<String>,
    client: reqwest::Client,
    state: Mutex<(VersionInfo, Option<Instant>)>,
    /// One check at a time; a forced check waits for a running one.
    running: tokio::sync::Mutex<()>,
}

impl ReleaseCheck {
    pub fn new(config: &Config) -> Arc<Self> {
        let url = config
            .ops
            .version_check
            .then(|| config.ops.version_check_url.clone())
            .flatten();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("fastflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let info = VersionInfo {
            version: current_version().to_string(),
            latest_version: None,
            update_available: false,
            last_checked: None,
            check_error: None,
        };
        Arc::new(Self {
            url,
            client,
            state: Mutex::new((info, None)),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// False when `VERSION_CHECK=false` or no `VERSION_CHECK_URL` is set.
    pub fn is_enabled(&self) -> bool {
        self.url.is_some()
    }

    pub fn current(&self) -> VersionInfo {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// Checks now, unless the last check was under a minute ago.
    pub async fn check_now(&self) -> VersionInfo {
        let Some(url) = &self.url else {
            return self.current();
        };
        let _one = self.running.lock().await;
        let recent = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.1.is_some_and(|at| at.elapsed() < MIN_FORCED_INTERVAL)
        };
        if recent {
            return self.current();
        }
        let outcome = fetch_latest(&self.client, url).await;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let info = &mut state.0;
        info.last_checked = Some(Utc::now());
        match outcome {
            Ok(latest) => {
                info.update_available = is_newer(&latest, &info.version);
                info.latest_version = Some(latest);
                info.check_error = None;
            }
            Err(error) => {
                tracing::warn!(%error, "release check");
                info.check_error = Some(error);
            }
        }
        state.1 = Some(Instant::now());
        state.0.clone()
    }

    /// Checks at start and then every day at `at` (UTC) until `shutdown`.
    pub async fn run_daily(self: Arc<Self>, at: NaiveTime, shutdown: CancellationToken) {
        if !self.is_enabled() {
            return;
        }
        loop {
            let info = self.check_now().await;
            if info.update_available {
                tracing::info!(
                    current = %info.version,
                    latest = info.latest_version.as_deref().unwrap_or(""),
                    "a newer Fast-Flow release is available"
                );
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(crate::retention::until_next(at)) => {}
            }
        }
    }
}

/// The latest release's version (`tag_name` without a leading `v`), or why not.
async fn fetch_latest(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let mut response = client
        .get(url)
        .header("Accept", "application/vnd.github.v3+json")
        .send()
        .await
        .map_err(|e| format!("cannot reach the release feed: {}", without_url(e)))?;
    match response.status().as_u16() {
        200 => {}
        404 => return Err("Repository or release not found".into()),
        code => return Err(format!("HTTP {code}")),
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the release feed: {}", without_url(e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!(
                "the release document is over {MAX_BODY_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("the release feed did not answer JSON: {e}"))?;
    let tag = doc["tag_name"].as_str().unwrap_or("").trim();
    let version = tag.trim_start_matches('v');
    if version.is_empty() || version.len() > 64 || parse(version).is_none() {
        return Err("Invalid GitHub release format".into());
    }
    Ok(version.to_string())
}

/// reqwest's messages repeat the URL, which may carry a token in its query.
fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", FETCH_TIMEOUT.as_secs());
    }
    if e.is_connect() {
        return "connection failed".into();
    }
    e.without_url().to_string()
}

/// `major.minor.patch` as numbers; a `-prerelease` or `+build` suffix is ignored.
fn parse(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// True only when `latest` is a higher release than `current`.
fn is_newer(latest: &str, current: &str) -> bool {
    matches!((parse(latest), parse(current)), (Some(l), Some(c)) if l > c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_file_is_cargos_version() {
        assert_eq!(current_version(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn versions_compare_by_number() {
        assert!(is_newer("1.10.0", "1.9.9"));
        assert!(is_newer("2", "1.99.99"));
        assert!(!is_newer("1.2.3", "1.2.3"));
        assert!(!is_newer("1.2.3-rc1", "1.2.3"));
        assert!(!is_newer("1.2.2", "1.2.3"));
        assert!(!is_newer("garbage", "1.0.0"));
        assert_eq!(parse("1.2.3.4"), None);
        assert_eq!(parse("99999999999999999999.0.0"), None);
    }
}
