//! Typed configuration, read once from the environment (and an optional `.env`).
//!
//! Variable names follow Fast-Flow 1.x where the meaning is the same. Every
//! value has an embedded default, so `fastflow` runs with nothing set.

pub mod auth;
pub mod git;
pub mod notify;
pub mod operations;
pub mod shown;
mod values;

pub use auth::AuthEnv;
pub use git::GitEnv;
pub use notify::NotifyEnv;
pub use operations::OpsEnv;
pub use values::check_network_mode;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::pipelines::fields::MemorySize;
use crate::pipelines::ranges;
use values::{
    base_url_checked, cpu_limit, err, host_list, in_range, mem_limit, net_list, parse_bool,
    parse_or, positive_opt, url_host,
};

/// Where the server runs: production refuses insecure shortcuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Everything the process needs to know, resolved and validated at startup.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub base_url: String,
    pub environment: Environment,
    pub data_dir: PathBuf,
    pub pipelines_dir: PathBuf,
    pub logs_dir: PathBuf,
    pub database_url: String,
    /// `WORKER_BASE_IMAGE` when set; otherwise the runner picks (see `engine::choose_image`).
    pub worker_base_image: Option<String>,
    pub uv_cache_dir: PathBuf,
    /// `ENCRYPTION_KEY` as given; resolved (or generated) by `secrets::key`.
    pub encryption_key: Option<crate::secrets::SecretString>,
    /// `ENCRYPTION_KEYS`: Fernet keys, newest first (rotation); wins over `ENCRYPTION_KEY`.
    pub encryption_keys: Vec<crate::secrets::SecretString>,
    pub max_concurrent_runs: usize,
    /// Default run timeout in seconds; `None` means no timeout.
    pub container_timeout: Option<u64>,
    pub retry_attempts: u32,
    pub log_max_size_bytes: u64,
    /// `DOCKER_HOST` (or its alias `DOCKER_PROXY_URL`); `None` uses the local socket.
    pub docker_host: Option<String>,
    /// Host CA bundle mounted into run containers (`WORKER_CA_BUNDLE`).
    pub worker_ca_bundle: Option<PathBuf>,
    /// Docker network for run containers (`WORKER_NETWORK`, default `bridge`).
    pub worker_network: String,
    /// Maximum number of processes inside one run container.
    pub worker_pids_limit: i64,
    /// On shutdown, stop running containers and mark their runs INTERRUPTED
    /// (default: leave them running and re-attach at the next start).
    pub stop_runs_on_shutdown: bool,
    /// Delete finished runs (rows, logs, metrics) older than this many days.
    pub log_retention_days: Option<u32>,
    /// Keep at most this many finished runs per pipeline.
    pub log_retention_runs: Option<u32>,
    /// Daily cleanup time, UTC (`CLEANUP_TIME`, `HH:MM`).
    pub cleanup_time: chrono::NaiveTime,
    /// Hard limits for pipelines that set none (`DEFAULT_CPU_LIMIT`, `DEFAULT_MEM_LIMIT`).
    pub default_cpu_limit: Option<f64>,
    pub default_mem_limit: Option<MemorySize>,
    /// Limits of the HTTP edge.
    pub http: HttpLimits,
    /// Host names a request may address: BASE_URL's, loopback, and `ALLOWED_HOSTS`
    /// (`*` allows any). IP literals are always accepted.
    pub allowed_hosts: Vec<String>,
    /// `/ready` fails when DATA_DIR or LOGS_DIR has less free space (`MIN_FREE_DISK_MB`).
    pub min_free_disk_bytes: u64,
    /// Whether this process fires schedules (`SCHEDULER_ENABLED`, default true).
    pub scheduler_enabled: bool,
    /// Webhook calls per minute per client address (`WEBHOOK_RATE_LIMIT`, default 30 as in Fast-Flow).
    pub webhook_rate_limit: u32,
    /// Git sync (`GIT_REPO_URL` and friends); without a repository, `PIPELINES_DIR` is used as is.
    pub git: GitEnv,
    /// Release check, metrics, logs, notifications.
    pub ops: OpsEnv,
    /// Failure notifications: e-mail, webhooks, the events to tell.
    pub notify: NotifyEnv,
    /// OAuth providers, local sign-in, the initial admin's e-mail.
    pub auth: AuthEnv,
}

/// Timeouts and caps of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    /// A client must send a request's headers within this time after connecting
    /// or after its previous response (`HTTP_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// A connection with nothing read or written for this long is closed (`HTTP_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// A request (body included) must be handled within this time (`HTTP_REQUEST_TIMEOUT`);
    /// a response that streams (logs, SSE) only needs to have started.
    pub request_timeout: Duration,
    /// Open connections at most; more are answered 503 and closed (`HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Live streams (SSE) open at once (`MAX_SSE_STREAMS`).
    pub max_sse_streams: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`);
    /// without them every address is the connection's own.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// A configuration value that could not be used; names the variable and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

pub const DEFAULT_WORKER_IMAGE: &str = "ghcr.io/astral-sh/uv:python3.12-bookworm-slim";
/// The image `scripts/build-runner-image.sh` builds for machines without registry access.
pub const LOCAL_RUNNER_IMAGE: &str = "fastflow-runner:latest";

impl Config {
    /// Reads the process environment, after loading `.env` from the working directory if present.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a broken one is reported by dotenvy on the variables it sets.
        let _ = dotenvy::dotenv();
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_vars(&vars)
    }

    /// Builds a config from an explicit variable map (tests, `check`).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let host: IpAddr = parse_or(get("HOST"), "HOST", "127.0.0.1".parse().ok())?;
        let port: u16 = parse_or(get("PORT"), "PORT", Some(8000))?;
        let environment = match get("ENVIRONMENT").as_deref() {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => {
                return Err(ConfigError {
                    var: "ENVIRONMENT",
                    value: other.to_string(),
                    reason: "expected `development` or `production`".into(),
                });
            }
        };
        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let pipelines_dir =
            PathBuf::from(get("PIPELINES_DIR").unwrap_or_else(|| "./examples/pipelines".into()));
        let logs_dir = get("LOGS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("logs"));
        let uv_cache_dir = get("UV_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("uv_cache"));
        let database_url = get("DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("fastflow.db").display()));
        if !database_url.starts_with("sqlite:") {
            return Err(ConfigError {
                var: "DATABASE_URL",
                value: database_url,
                reason: "only sqlite: URLs are supported in this version".into(),
            });
        }
        let base_url = match get("BASE_URL") {
            Some(url) => base_url_checked(&url)?,
            None => format!("http://{host}:{port}"),
        };

        let max_concurrent_runs: usize = in_range(
            get("MAX_CONCURRENT_RUNS"),
            "MAX_CONCURRENT_RUNS",
            10,
            1,
            1000,
            "runs",
        )?;
        let timeout: u64 = in_range(
            get("CONTAINER_TIMEOUT"),
            "CONTAINER_TIMEOUT",
            0,
            0,
            ranges::TIMEOUT.max,
            "seconds; 0 = no timeout",
        )?;
        let log_max_size_mb: f64 = in_range(
            get("LOG_MAX_SIZE_MB"),
            "LOG_MAX_SIZE_MB",
            100.0,
            0.001,
            1_048_576.0,
            "megabytes",
        )?;
        if !log_max_size_mb.is_finite() {
            return Err(err(
                "LOG_MAX_SIZE_MB",
                "NaN",
                "must be a number of megabytes",
            ));
        }
        let allowed_hosts = {
            let mut hosts = host_list(get("ALLOWED_HOSTS"));
            hosts.extend(url_host(&base_url));
            hosts
        };
        let worker_ca_bundle = get("WORKER_CA_BUNDLE").map(PathBuf::from);
        if let Some(path) = &worker_ca_bundle
            && !path.is_file()
        {
            return Err(ConfigError {
                var: "WORKER_CA_BUNDLE",
                value: path.display().to_string(),
                reason: "not a readable file (expected a PEM CA bundle)".into(),
            });
        }

        Ok(Config {
            host,
            port,
            base_url,
            environment,
            data_dir,
            pipelines_dir,
            logs_dir,
            database_url,
            worker_base_image: get("WORKER_BASE_IMAGE"),
            uv_cache_dir,
            encryption_key: get("ENCRYPTION_KEY").map(crate::secrets::SecretString::new),
            encryption_keys: get("ENCRYPTION_KEYS")
                .map(|keys| {
                    keys.split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty())
                        .map(crate::secrets::SecretString::new)
                        .collect()
                })
                .unwrap_or_default(),
            max_concurrent_runs,
            container_timeout: (timeout > 0).then_some(timeout),
            retry_attempts: in_range(
                get("RETRY_ATTEMPTS"),
                "RETRY_ATTEMPTS",
                0,
                0,
                100,
                "retries",
            )?,
            log_max_size_bytes: (log_max_size_mb * 1024.0 * 1024.0) as u64,
            docker_host: get("DOCKER_HOST").or_else(|| get("DOCKER_PROXY_URL")),
            worker_ca_bundle,
            worker_network: {
                let mode = get("WORKER_NETWORK").unwrap_or_else(|| "bridge".into());
                values::check_network_mode(&mode)
                    .map_err(|reason| values::err("WORKER_NETWORK", &mode, reason))?;
                mode
            },
            worker_pids_limit: in_range(
                get("WORKER_PIDS_LIMIT"),
                "WORKER_PIDS_LIMIT",
                512,
                16,
                1_000_000,
                "processes",
            )?,
            stop_runs_on_shutdown: parse_bool(
                get("STOP_RUNS_ON_SHUTDOWN"),
                "STOP_RUNS_ON_SHUTDOWN",
            )?,
            log_retention_days: positive_opt(
                get("LOG_RETENTION_DAYS"),
                "LOG_RETENTION_DAYS",
                36_500,
            )?,
            log_retention_runs: positive_opt(
                get("LOG_RETENTION_RUNS"),
                "LOG_RETENTION_RUNS",
                10_000_000,
            )?,
            cleanup_time: match get("CLEANUP_TIME") {
                None => chrono::NaiveTime::from_hms_opt(2, 0, 0).unwrap_or_default(),
                Some(t) => chrono::NaiveTime::parse_from_str(&t, "%H:%M").map_err(|_| {
                    err(
                        "CLEANUP_TIME",
                        &t,
                        "expected HH:MM (24-hour, UTC), e.g. 02:00",
                    )
                })?,
            },
            default_cpu_limit: cpu_limit(get("DEFAULT_CPU_LIMIT"), "DEFAULT_CPU_LIMIT")?,
            default_mem_limit: mem_limit(get("DEFAULT_MEM_LIMIT"), "DEFAULT_MEM_LIMIT")?,
            http: HttpLimits {
                header_timeout: Duration::from_secs(in_range(
                    get("HTTP_HEADER_TIMEOUT"),
                    "HTTP_HEADER_TIMEOUT",
                    10,
                    1,
                    300,
                    "seconds",
                )?),
                // At least twice the 15 s keep-alive of live streams, or they would be cut.
                idle_timeout: Duration::from_secs(in_range(
                    get("HTTP_IDLE_TIMEOUT"),
                    "HTTP_IDLE_TIMEOUT",
                    60,
                    30,
                    3600,
                    "seconds",
                )?),
                request_timeout: Duration::from_secs(in_range(
                    get("HTTP_REQUEST_TIMEOUT"),
                    "HTTP_REQUEST_TIMEOUT",
                    30,
                    5,
                    600,
                    "seconds",
                )?),
                max_connections: in_range(
                    get("HTTP_MAX_CONNECTIONS"),
                    "HTTP_MAX_CONNECTIONS",
                    512,
                    8,
                    65_536,
                    "connections",
                )?,
                max_sse_streams: in_range(
                    get("MAX_SSE_STREAMS"),
                    "MAX_SSE_STREAMS",
                    100,
                    1,
                    10_000,
                    "streams",
                )?,
                trusted_proxies: net_list(get("TRUSTED_PROXIES"), "TRUSTED_PROXIES")?,
            },
            allowed_hosts,
            min_free_disk_bytes: in_range::<u64>(
                get("MIN_FREE_DISK_MB"),
                "MIN_FREE_DISK_MB",
                100,
                0,
                1_048_576,
                "megabytes",
            )? << 20,
            scheduler_enabled: match get("SCHEDULER_ENABLED") {
                None => true,
                raw => parse_bool(raw, "SCHEDULER_ENABLED")?,
            },
            webhook_rate_limit: in_range::<u32>(
                get("WEBHOOK_RATE_LIMIT"),
                "WEBHOOK_RATE_LIMIT",
                30,
                1,
                100_000,
                "calls per minute per client",
            )?,
            git: GitEnv::from_vars(vars)?,
            ops: OpsEnv::from_vars(vars)?,
            notify: NotifyEnv::from_vars(vars)?,
            auth: AuthEnv::from_vars(vars)?,
        })
    }

    /// Creates the data, log and cache directories and makes the paths that are
    /// bind-mounted into containers absolute (Docker requires absolute host paths).
    pub fn prepare_dirs(&mut self) -> std::io::Result<()> {
        for dir in [&self.data_dir, &self.logs_dir, &self.uv_cache_dir] {
            std::fs::create_dir_all(dir)?;
        }
        self.data_dir = absolute(&self.data_dir)?;
        self.logs_dir = absolute(&self.logs_dir)?;
        self.uv_cache_dir = absolute(&self.uv_cache_dir)?;
        self.pipelines_dir = absolute(&self.pipelines_dir)?;
        if let Some(ca) = &self.worker_ca_bundle {
            self.worker_ca_bundle = Some(absolute(ca)?);
        }
        Ok(())
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    if path.exists() {
        path.canonicalize()
    } else {
        std::path::absolute(path)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
