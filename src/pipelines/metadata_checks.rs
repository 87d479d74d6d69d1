//! Checks across the fields of one `pipeline.json`, after each was read on its
//! own: soft limits under the hard ones they get, unique schedule ids and webhook
//! keys, start before end (errors); ignored or dead schedule fields (warnings).

use super::fields::{FieldIssue, shown};
use super::metadata::{PipelineMetadata, ResourceLimits};
use super::ranges;

pub(super) fn check_consistency(m: &PipelineMetadata, errors: &mut Vec<FieldIssue>) {
    m.limits.check("", errors);
    // A run configuration's limits are laid over the pipeline's: check what a run gets.
    for (i, s) in m.schedules.iter().enumerate() {
        let own = &s.limits;
        let merged = ResourceLimits {
            cpu_hard_limit: own.cpu_hard_limit.or(m.limits.cpu_hard_limit),
            mem_hard_limit: own
                .mem_hard_limit
                .clone()
                .or(m.limits.mem_hard_limit.clone()),
            cpu_soft_limit: own.cpu_soft_limit.or(m.limits.cpu_soft_limit),
            mem_soft_limit: own
                .mem_soft_limit
                .clone()
                .or(m.limits.mem_soft_limit.clone()),
        };
        if merged != m.limits {
            merged.check(&format!("schedules[{i}]"), errors);
        }
    }
    let mut err = |field: &str, message: String| {
        errors.push(FieldIssue {
            file: None,
            field: field.into(),
            message,
        })
    };
    // A name that cannot be an environment variable can never be received.
    for (i, key) in m.secrets.iter().enumerate() {
        let upper = key.to_ascii_uppercase();
        if !super::fields::is_env_name(key) {
            err(
                &format!("secrets[{i}]"),
                format!(
                    "`{}` is not a valid environment variable name (letters, digits, `_`; not starting with a digit)",
                    shown(key)
                ),
            );
        } else if upper.starts_with("FASTFLOW_") || upper.starts_with("_FASTFLOW_") {
            err(
                &format!("secrets[{i}]"),
                format!("`{key}` is Fast-Flow's own variable and cannot be a secret"),
            );
        }
    }
    let layers = encrypted_env_layers(m);
    for (prefix, entries) in layers {
        for key in entries.keys() {
            let upper = key.to_ascii_uppercase();
            if upper.starts_with("FASTFLOW_") || upper.starts_with("_FASTFLOW_") {
                err(
                    &format!("{prefix}encrypted_env.{key}"),
                    "is Fast-Flow's own variable: a run never sees this value".into(),
                );
            }
        }
    }
    if let (Some(start), Some(end)) = (m.schedule_start, m.schedule_end)
        && end <= start
    {
        err("schedule_end", "must be after schedule_start".into());
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, s) in m.schedules.iter().enumerate() {
        if !s.id.is_empty() && !ids.insert(s.id.as_str()) {
            err(
                &format!("schedules[{i}].id"),
                format!(
                    "`{}` is used by an earlier schedule; ids must be unique",
                    shown(&s.id)
                ),
            );
        }
    }
    let mut keys: Vec<(String, &str)> = Vec::new();
    if let Some(k) = &m.webhook_key {
        keys.push(("webhook_key".into(), k));
    }
    for (i, s) in m.schedules.iter().enumerate() {
        if let Some(k) = &s.webhook_key {
            keys.push((format!("schedules[{i}].webhook_key"), k));
        }
    }
    for (i, (field, key)) in keys.iter().enumerate() {
        if let Some((first, _)) = keys[..i].iter().find(|(_, k)| k == key) {
            // The key would not say which run configuration to use.
            err(
                field,
                format!("is the same as {first}; webhook keys must differ"),
            );
        }
    }
}

/// Problems that do not stop the pipeline from running.
pub(super) fn collect_warnings(m: &PipelineMetadata, warnings: &mut Vec<FieldIssue>) {
    let mut warn = |field: &str, message: &str| {
        warnings.push(FieldIssue {
            file: None,
            field: field.into(),
            message: message.into(),
        })
    };
    // Whether a token opens needs the server's key (the pipeline page and the run
    // say that); its shape can be checked here, so `fastflow check` catches a
    // value pasted in plain text.
    let layers = encrypted_env_layers(m);
    for (prefix, entries) in layers {
        for (key, token) in entries {
            if !looks_like_fernet_token(token) {
                warn(
                    &format!("{prefix}encrypted_env.{key}"),
                    "is not a Fernet token (they start with gAAAAA): runs fail until it holds one; make it with `fastflow encrypt` or the Secrets page",
                );
            }
        }
    }
    if m.schedule_cron.is_some() && m.schedule_interval_seconds.is_some() && m.schedules.is_empty()
    {
        warn(
            "schedule_interval_seconds",
            "ignored: schedule_cron is also set, and cron wins (as in Fast-Flow)",
        );
    }
    if let Some(at) = m.run_once_at
        && at <= chrono::Utc::now()
    {
        warn("run_once_at", "is in the past: it will not fire");
    }
    let cooldown = m
        .restart_cooldown
        .unwrap_or(ranges::DEFAULT_RESTART_COOLDOWN);
    if let Some(text) = &m.restart_interval
        && let Ok(super::timing::Trigger::Interval { seconds }) =
            super::timing::parse_restart_interval(text)
        && seconds <= cooldown
    {
        warn(
            "restart_interval",
            "is not longer than restart_cooldown: each restart waits out its cooldown, so a restart slot that comes during it is skipped",
        );
    }
    if !m.schedules.is_empty() {
        for (field, set) in [
            ("schedule_cron", m.schedule_cron.is_some()),
            (
                "schedule_interval_seconds",
                m.schedule_interval_seconds.is_some(),
            ),
            ("schedule_start", m.schedule_start.is_some()),
            ("schedule_end", m.schedule_end.is_some()),
        ] {
            if set {
                warn(
                    field,
                    "ignored: `schedules` is set, so only its entries fire",
                );
            }
        }
    }
}

/// A Fernet token's shape: version byte 0x80 (`gAAAAA` in base64url), at least
/// the 73 bytes of header, one block and HMAC, url-safe base64.
fn looks_like_fernet_token(text: &str) -> bool {
    let t = text.trim();
    t.starts_with("gAAAAA")
        && t.len() >= 100
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
}

/// Each `encrypted_env` with the prefix of its field path: the pipeline's
/// (`""`), then each run configuration's (`"schedules[i]."`).
fn encrypted_env_layers(
    m: &PipelineMetadata,
) -> impl Iterator<Item = (String, &std::collections::BTreeMap<String, String>)> {
    std::iter::once((String::new(), &m.encrypted_env)).chain(
        m.schedules
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("schedules[{i}]."), &s.encrypted_env)),
    )
}
