//! Settings for operating the server (Fast-Flow's names where it had them):
//! the release check, the metrics scrape token, and later logs and notifications.

use std::collections::HashMap;

use super::ConfigError;
use super::values::{err, parse_bool};
use crate::secrets::SecretString;

/// Shortest `METRICS_TOKEN`: a scraper's credential must not be guessable.
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// How log lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, with the request or run it belongs to.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT=text|json`, or Fast-Flow 1.x's `LOG_JSON=true`.
    pub fn parse(format: Option<&str>, legacy_json: Option<&str>) -> Result<Self, String> {
        match format.map(|f| f.trim().to_ascii_lowercase()) {
            Some(f) if f == "json" => Ok(Self::Json),
            Some(f) if f == "text" || f.is_empty() => Ok(Self::Text),
            Some(f) => Err(format!("LOG_FORMAT={f}: expected `text` or `json`")),
            None if legacy_json.is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) => {
                Ok(Self::Json)
            }
            None => Ok(Self::Text),
        }
    }

    /// From the process environment, before the configuration is read (logging
    /// starts first); a bad value is said once logging runs.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(
            std::env::var("LOG_FORMAT").ok().as_deref(),
            std::env::var("LOG_JSON").ok().as_deref(),
        )
    }
}

/// `VERSION_CHECK`, `VERSION_CHECK_URL`, `METRICS_TOKEN`, `LOG_FORMAT`.
#[derive(Debug, Clone, Default)]
pub struct OpsEnv {
    /// `VERSION_CHECK` (default on): look for a newer release at start and daily.
    pub version_check: bool,
    /// `VERSION_CHECK_URL`: a GitHub-style "latest release" JSON (`tag_name`), e.g.
    /// `https://api.github.com/repos/OWNER/REPO/releases/latest`. Unset: no check.
    pub version_check_url: Option<String>,
    /// `METRICS_TOKEN`: a bearer token that may read `/metrics` (and nothing else)
    /// without signing in; any signed-in user or API token may read it too.
    pub metrics_token: Option<SecretString>,
    /// `LOG_FORMAT`: every request is logged at info in JSON, at debug in text.
    pub log_format: LogFormat,
}

impl OpsEnv {
    pub(super) fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let version_check = match get("VERSION_CHECK") {
            None => true,
            raw => parse_bool(raw, "VERSION_CHECK")?,
        };
        let version_check_url = match get("VERSION_CHECK_URL") {
            Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                return Err(err(
                    "VERSION_CHECK_URL",
                    &url,
                    "expected an http:// or https:// URL",
                ));
            }
            url => url,
        };
        let metrics_token = match get("METRICS_TOKEN") {
            Some(t) if t.chars().count() < MIN_METRICS_TOKEN_CHARS => {
                return Err(err(
                    "METRICS_TOKEN",
                    "(hidden)",
                    format!("must be at least {MIN_METRICS_TOKEN_CHARS} characters"),
                ));
            }
            t => t.map(SecretString::new),
        };
        let log_format = LogFormat::parse(get("LOG_FORMAT").as_deref(), get("LOG_JSON").as_deref())
            .map_err(|reason| {
                err(
                    "LOG_FORMAT",
                    get("LOG_FORMAT").as_deref().unwrap_or(""),
                    reason,
                )
            })?;
        Ok(Self {
            version_check,
            version_check_url,
            metrics_token,
            log_format,
        })
    }
}
