//! Parsers for single environment values, each naming the variable and the
//! accepted range in its error, so a bad setting stops start-up with one clear line.

use super::ConfigError;

pub(super) fn err(var: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        value: crate::pipelines::fields::shown(value),
        reason: reason.into(),
    }
}

pub(super) fn parse_or<T: std::str::FromStr>(
    raw: Option<String>,
    var: &'static str,
    default: Option<T>,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match raw {
        Some(value) => value
            .parse()
            .map_err(|e: T::Err| err(var, &value, e.to_string())),
        None => default.ok_or_else(|| err(var, "", "is required")),
    }
}

/// A number in `min..=max` (its unit named in the error), or `default` when unset.
pub(super) fn in_range<T>(
    raw: Option<String>,
    var: &'static str,
    default: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Copy + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let shown = raw.clone().unwrap_or_default();
    let value: T = parse_or(raw, var, Some(default))?;
    if value < min || value > max {
        return Err(err(
            var,
            &shown,
            format!("must be from {min} to {max} ({unit})"),
        ));
    }
    Ok(value)
}

/// An optional count >= 1; `0` or unset means "no limit".
pub(super) fn positive_opt(
    raw: Option<String>,
    var: &'static str,
    max: u32,
) -> Result<Option<u32>, ConfigError> {
    let value: u32 = in_range(raw, var, 0, 0, max, "0 = no limit")?;
    Ok((value > 0).then_some(value))
}

pub(super) fn parse_bool(raw: Option<String>, var: &'static str) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(_) => Err(err(var, &raw.unwrap_or_default(), "expected true or false")),
    }
}

/// An optional CPU limit in cores, within the pipeline range.
pub(super) fn cpu_limit(
    raw: Option<String>,
    var: &'static str,
) -> Result<Option<f64>, ConfigError> {
    let Some(text) = raw else { return Ok(None) };
    let range = crate::pipelines::ranges::CPU;
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && range.contains(v) => Ok(Some(v)),
        _ => Err(err(
            var,
            &text,
            format!(
                "must be a number of CPU cores from {} to {}",
                range.min, range.max
            ),
        )),
    }
}

/// An optional memory size like `512m`, within the pipeline range.
pub(super) fn mem_limit(
    raw: Option<String>,
    var: &'static str,
) -> Result<Option<crate::pipelines::fields::MemorySize>, ConfigError> {
    let Some(text) = raw else { return Ok(None) };
    let range = crate::pipelines::ranges::MEM_HARD;
    match crate::pipelines::fields::parse_memory(&text) {
        Ok(bytes) if range.contains(bytes) => {
            Ok(Some(crate::pipelines::fields::MemorySize { text, bytes }))
        }
        Ok(_) => Err(err(var, &text, "must be from 6m to 1024t")),
        Err(reason) => Err(err(var, &text, reason)),
    }
}

/// Host names (lower case, no port) from a comma-separated list.
pub(super) fn host_list(raw: Option<String>) -> Vec<String> {
    raw.unwrap_or_default()
        .split(',')
        .filter_map(|h| match h.trim() {
            "*" => Some("*".to_string()),
            h => url_host(h),
        })
        .collect()
}

/// The host name of a URL like `https://flow.example.com:8443/path`, lower case.
pub(super) fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        format!("[{}]", v6.split(']').next()?)
    } else {
        authority.split(':').next()?.to_string()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// IP addresses and networks (`10.0.0.0/8`, `::1`) from a comma-separated list.
pub(super) fn net_list(
    raw: Option<String>,
    var: &'static str,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let mut nets = Vec::new();
    for item in raw.unwrap_or_default().split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let net = item
            .parse::<ipnet::IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                err(
                    var,
                    item,
                    "expected IP addresses or networks like 10.0.0.0/8, separated by commas",
                )
            })?;
        nets.push(net);
    }
    Ok(nets)
}

/// `BASE_URL` as people open it: `http(s)://host[:port][/path]`, without a
/// trailing `/`, nothing else (the links and OAuth callbacks are built from it).
pub(super) fn base_url_checked(raw: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| err("BASE_URL", raw, why);
    let url = oauth2::url::Url::parse(raw).map_err(|e| {
        bad(&format!(
            "not a URL ({e}); expected e.g. https://flow.example.com"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad(
            "expected an http:// or https:// URL with a host, e.g. https://flow.example.com",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("no query, fragment or user in BASE_URL"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// Network modes a run may use: the engine's bridge, none, or a user-defined
/// network by name. `host` and `container:<id>` share another namespace.
pub fn check_network_mode(mode: &str) -> Result<(), String> {
    let lower = mode.to_ascii_lowercase();
    if lower == "host" || lower.starts_with("container:") {
        return Err(format!(
            "network mode `{mode}` shares a namespace with the host or another container; use `bridge` (the default), `none` or a user-defined network name"
        ));
    }
    if mode.is_empty()
        || mode.len() > 128
        || mode.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("network mode `{mode}` is not a network name"));
    }
    Ok(())
}
