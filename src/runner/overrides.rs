//! What a trigger may set: environment overrides and parameters given at run time
//! (UI form, JSON API, later webhooks) are checked here, once, for every route.
//! At most 50 names, 16 KiB per value, valid names, and none that would change how
//! Python, uv, git or the network stack behave (`UV_*`, `PIP_*`, `PYTHON*`, `LD_*`,
//! `GIT_*`, `XDG_*`, `SSL_*`, `PATH`, `HOME`, certificate paths, proxies) or
//! Fast-Flow's own (`FASTFLOW_*`, `_fastflow_*`): a caller who may start a run must
//! not thereby choose the package index, route its traffic, read tool configuration
//! from elsewhere or preload a library. The pipeline's own `default_env`, from its
//! git repository, may set them.

use std::collections::BTreeMap;

/// As in Fast-Flow 1.x.
pub const MAX_KEYS: usize = 50;
pub const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Prefixes (compared case-insensitively) and exact names refused at trigger time.
const FORBIDDEN_PREFIXES: [&str; 9] = [
    "UV_",
    "PIP_",
    "PYTHON",
    "LD_",
    "GIT_",
    "XDG_",
    "SSL_",
    "FASTFLOW_",
    "_FASTFLOW_",
];
const FORBIDDEN_NAMES: [&str; 9] = [
    "PATH",
    "HOME",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "NETRC",
];

/// A refused override; the message names the field and the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OverrideError(pub String);

/// Checks one map (`env_vars` or `parameters`) given at trigger time. `field`
/// prefixes key names in messages (`env_vars.X`); empty for the UI's plain list.
pub fn check(field: &str, values: &BTreeMap<String, String>) -> Result<(), OverrideError> {
    let path = |name: &str| {
        if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        }
    };
    let what = if field.is_empty() {
        "the environment"
    } else {
        field
    };
    if values.len() > MAX_KEYS {
        return Err(OverrideError(format!(
            "{what} has {} entries; at most {MAX_KEYS} are allowed",
            values.len()
        )));
    }
    for (name, value) in values {
        let shown = crate::pipelines::fields::shown(name);
        if !crate::pipelines::fields::is_env_name(name) {
            return Err(OverrideError(format!(
                "`{}` is not a valid environment variable name (letters, digits, `_`; not starting with a digit)",
                path(&shown)
            )));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(OverrideError(format!(
                "`{}` is {} bytes long; at most {MAX_VALUE_BYTES} are allowed",
                path(name),
                value.len()
            )));
        }
        if value.contains('\0') {
            return Err(OverrideError(format!(
                "`{}` contains a NUL character",
                path(name)
            )));
        }
        if is_forbidden(name) {
            return Err(OverrideError(format!(
                "`{}` cannot be set when starting a run: UV_*, PIP_*, PYTHON*, LD_*, GIT_*, XDG_*, SSL_*, PATH, HOME, proxies, certificate paths and Fast-Flow's own names are reserved (set it in the pipeline's default_env instead)",
                path(name)
            )));
        }
    }
    Ok(())
}

fn is_forbidden(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    FORBIDDEN_PREFIXES.iter().any(|p| upper.starts_with(p))
        || FORBIDDEN_NAMES.contains(&upper.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(name.to_string(), value.to_string())])
    }

    #[test]
    fn reserved_names_are_refused_with_the_key_named() {
        for name in [
            "UV_INDEX_URL",
            "uv_index_url",
            "PIP_INDEX_URL",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "LD_PRELOAD",
            "PATH",
            "SSL_CERT_FILE",
            "_fastflow_retry_count",
            "FASTFLOW_RUN_ID",
            "HTTPS_PROXY",
            "https_proxy",
            "XDG_CONFIG_HOME",
            "HOME",
            "GIT_SSH_COMMAND",
        ] {
            let err = check("env_vars", &one(name, "x")).unwrap_err().to_string();
            assert!(err.contains(&format!("`env_vars.{name}`")), "{err}");
        }
        for ok in ["LOG_LEVEL", "MY_PATH", "DEBUG", "UVICORN_WORKERS"] {
            assert!(check("env_vars", &one(ok, "1")).is_ok(), "{ok}");
        }
    }

    #[test]
    fn counts_sizes_and_names_are_bounded() {
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("K{i}"), String::new())).collect();
        assert!(
            check("parameters", &many)
                .unwrap_err()
                .to_string()
                .contains("at most 50")
        );
        let big = one("BIG", &"x".repeat(MAX_VALUE_BYTES + 1));
        assert!(check("env_vars", &big).is_err());
        assert!(check("env_vars", &one("1X", "")).is_err());
        assert!(check("env_vars", &one("A", "a\0b")).is_err());
    }
}
