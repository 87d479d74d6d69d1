//! The effective configuration as the System page shows it: each setting by its
//! variable name, with the value in force. Secrets never appear: they show as
//! "set" or "not set", and a repository URL loses any credentials in it.

use super::Config;
use crate::secrets::SecretString;

/// `(variable, value in force)`, in the order of `docs/configuration.md`'s sections.
pub fn effective(c: &Config) -> Vec<(&'static str, String)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "not set".into());
    let num = |v: Option<u32>| v.map_or("off".to_string(), |n| n.to_string());
    let secret = |v: &Option<SecretString>| {
        if v.is_some() {
            "set (hidden)"
        } else {
            "not set"
        }
        .to_string()
    };
    let path = |p: &std::path::Path| p.display().to_string();
    let seconds = |d: std::time::Duration| format!("{} s", d.as_secs());
    let providers: Vec<String> = c.auth.providers.iter().map(|p| p.label.clone()).collect();
    vec![
        ("HOST", c.host.to_string()),
        ("PORT", c.port.to_string()),
        ("BASE_URL", c.base_url.clone()),
        ("ENVIRONMENT", format!("{:?}", c.environment).to_lowercase()),
        ("DATA_DIR", path(&c.data_dir)),
        ("PIPELINES_DIR", path(&c.pipelines_dir)),
        ("LOGS_DIR", path(&c.logs_dir)),
        ("DATABASE_URL", without_credentials(&c.database_url)),
        ("WORKER_BASE_IMAGE", opt(&c.worker_base_image)),
        ("UV_CACHE_DIR", path(&c.uv_cache_dir)),
        (
            "ENCRYPTION_KEY(S)",
            if c.encryption_keys.is_empty() && c.encryption_key.is_none() {
                "not set (a key is generated and stored in DATA_DIR)".into()
            } else {
                "set (hidden)".into()
            },
        ),
        ("MAX_CONCURRENT_RUNS", c.max_concurrent_runs.to_string()),
        (
            "CONTAINER_TIMEOUT",
            c.container_timeout
                .map_or("none".to_string(), |s| format!("{s} s")),
        ),
        ("RETRY_ATTEMPTS", c.retry_attempts.to_string()),
        (
            "LOG_MAX_SIZE_MB",
            crate::byte_size::human_bytes(c.log_max_size_bytes),
        ),
        (
            "DOCKER_HOST",
            c.docker_host
                .as_deref()
                .map_or("the local socket".to_string(), without_credentials),
        ),
        (
            "WORKER_CA_BUNDLE",
            c.worker_ca_bundle
                .as_deref()
                .map_or("not set".to_string(), path),
        ),
        ("WORKER_NETWORK", c.worker_network.clone()),
        ("WORKER_PIDS_LIMIT", c.worker_pids_limit.to_string()),
        ("STOP_RUNS_ON_SHUTDOWN", c.stop_runs_on_shutdown.to_string()),
        ("LOG_RETENTION_DAYS", num(c.log_retention_days)),
        ("LOG_RETENTION_RUNS", num(c.log_retention_runs)),
        (
            "CLEANUP_TIME",
            format!("{} UTC", c.cleanup_time.format("%H:%M")),
        ),
        ("VERSION_CHECK", c.ops.version_check.to_string()),
        ("METRICS_TOKEN", secret(&c.ops.metrics_token)),
        (
            "LOG_FORMAT",
            match c.ops.log_format {
                crate::config::operations::LogFormat::Json => "json",
                crate::config::operations::LogFormat::Text => "text",
            }
            .to_string(),
        ),
        (
            "VERSION_CHECK_URL",
            c.ops
                .version_check_url
                .as_deref()
                .map_or("not set".to_string(), without_credentials),
        ),
        ("EMAIL_ENABLED", c.notify.email_enabled.to_string()),
        ("SMTP_HOST", opt(&c.notify.smtp_host)),
        ("SMTP_PORT", c.notify.smtp_port.to_string()),
        (
            "SMTP_TLS",
            c.notify
                .smtp_tls
                .map_or("by the port".to_string(), |t| t.as_str().to_string()),
        ),
        ("SMTP_USER", opt(&c.notify.smtp_user)),
        ("SMTP_PASSWORD", secret(&c.notify.smtp_password)),
        ("SMTP_FROM", opt(&c.notify.smtp_from)),
        ("EMAIL_RECIPIENTS", c.notify.email_recipients.join(", ")),
        ("TEAMS_ENABLED", c.notify.teams_enabled.to_string()),
        ("TEAMS_WEBHOOK_URL", secret(&c.notify.teams_webhook_url)),
        ("NOTIFY_WEBHOOK_URL", secret(&c.notify.webhook_url)),
        (
            "NOTIFY_WEBHOOK_FORMAT",
            c.notify
                .webhook_format
                .map_or("by the URL".to_string(), |f| f.as_str().to_string()),
        ),
        (
            "SMTP_CA_FILE",
            c.notify
                .smtp_ca_file
                .as_deref()
                .map_or("not set".to_string(), path),
        ),
        ("FRONTEND_URL", opt(&c.notify.frontend_url)),
        (
            "NOTIFY_ALLOW_LOOPBACK_WEBHOOKS",
            c.notify.allow_loopback_webhooks.to_string(),
        ),
        (
            "NOTIFY_ON",
            c.notify
                .notify_on
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "DEFAULT_CPU_LIMIT",
            c.default_cpu_limit.map_or("none".into(), |v| v.to_string()),
        ),
        (
            "DEFAULT_MEM_LIMIT",
            c.default_mem_limit
                .as_ref()
                .map_or("none".into(), |m| crate::byte_size::human_bytes(m.bytes)),
        ),
        ("HTTP_HEADER_TIMEOUT", seconds(c.http.header_timeout)),
        ("HTTP_REQUEST_TIMEOUT", seconds(c.http.request_timeout)),
        ("HTTP_IDLE_TIMEOUT", seconds(c.http.idle_timeout)),
        ("MAX_SSE_STREAMS", c.http.max_sse_streams.to_string()),
        ("HTTP_MAX_CONNECTIONS", c.http.max_connections.to_string()),
        ("ALLOWED_HOSTS", c.allowed_hosts.join(", ")),
        (
            "MIN_FREE_DISK_MB",
            (c.min_free_disk_bytes >> 20).to_string(),
        ),
        ("SCHEDULER_ENABLED", c.scheduler_enabled.to_string()),
        (
            "WEBHOOK_RATE_LIMIT",
            format!("{} / minute", c.webhook_rate_limit),
        ),
        (
            "GIT_REPO_URL",
            c.git
                .repo_url
                .as_ref()
                .map_or("not set".to_string(), |u| without_credentials(u.expose())),
        ),
        (
            "GIT_BRANCH",
            c.git
                .branch
                .clone()
                .unwrap_or_else(|| "main (the default)".into()),
        ),
        ("GIT_TIMEOUT", format!("{} s", c.git.timeout_secs)),
        ("PIPELINES_SUBDIR", opt(&c.git.pipelines_subdir)),
        ("GIT_SYNC_TOKEN", secret(&c.git.token)),
        ("GIT_SYNC_DEPLOY_KEY", secret(&c.git.deploy_key)),
        ("GIT_WEBHOOK_SECRET", secret(&c.git.webhook_secret)),
        (
            "AUTO_SYNC_ENABLED",
            c.git
                .auto_sync_enabled
                .map_or("not set (the Sync page decides)".to_string(), |b| {
                    b.to_string()
                }),
        ),
        (
            "AUTO_SYNC_INTERVAL",
            c.git
                .auto_sync_interval
                .map_or("not set".to_string(), |s| format!("{s} s")),
        ),
        ("UV_PRE_HEAT", c.git.uv_pre_heat.to_string()),
        ("GITHUB_APP_ID", opt(&c.git.github_app_id)),
        ("GITHUB_API_URL", opt(&c.git.github_api_url)),
        (
            "GITHUB_APP_PRIVATE_KEY",
            secret(&c.git.github_app_private_key),
        ),
        (
            "OAuth providers",
            if providers.is_empty() {
                "none".into()
            } else {
                providers.join(", ")
            },
        ),
        ("LOCAL_LOGIN_ENABLED", c.auth.local_login.to_string()),
        (
            "OAUTH_RATE_LIMIT",
            format!("{} / minute", c.auth.oauth_rate_limit),
        ),
        (
            "TRUSTED_PROXIES",
            if c.http.trusted_proxies.is_empty() {
                "none".to_string()
            } else {
                c.http
                    .trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("INITIAL_ADMIN_EMAIL", opt(&c.auth.initial_admin_email)),
    ]
}

/// A URL without `user:password@` (a token in a clone URL is a secret).
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{effective, without_credentials};

    #[test]
    fn every_name_shown_is_a_documented_setting() {
        let docs = include_str!("../../docs/configuration.md");
        let config = crate::config::Config::from_vars(&Default::default()).unwrap();
        for (name, _) in effective(&config) {
            if name.contains(' ') {
                continue; // a summary line ("OAuth providers"), not a variable
            }
            // `ENCRYPTION_KEY(S)` stands for both variables.
            let name = name.trim_end_matches("(S)");
            assert!(
                docs.contains(&format!("`{name}`")),
                "{name} is not in docs/configuration.md"
            );
        }
    }

    #[test]
    fn credentials_leave_urls() {
        assert_eq!(
            without_credentials("https://x-access-token:ghp_secret@github.com/o/r.git"),
            "https://***@github.com/o/r.git"
        );
        assert_eq!(
            without_credentials("git@github.com:o/r.git"),
            "git@github.com:o/r.git"
        );
        assert_eq!(
            without_credentials("sqlite://data/fastflow.db"),
            "sqlite://data/fastflow.db"
        );
        assert_eq!(
            without_credentials("tcp://u:p@host:2375"),
            "tcp://***@host:2375"
        );
    }
}
