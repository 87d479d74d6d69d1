//! Settings for operating the server (Fast-Flow's names where it had them):
//! the release check, the metrics scrape token, and later logs and notifications.

use std::collections::HashMap;

use super::ConfigError;
use super::values::{err, parse_bool};
use crate::secrets::SecretString;

/// Shortest `METRICS_TOKEN`: a scraper's credential must not be guessable.
pub const MIN_METRICS_TOKEN_CHARS: usize = 16;

/// `VERSION_CHECK`, `VERSION_CHECK_URL`, `METRICS_TOKEN`.
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
        Ok(Self {
            version_check,
            version_check_url,
            metrics_token,
        })
    }
}
