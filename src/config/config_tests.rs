//! The configuration's own checks: defaults, ranges and refusals by variable.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_need_nothing_set() {
    let c = Config::from_vars(&HashMap::new()).unwrap();
    assert_eq!(c.host.to_string(), "127.0.0.1");
    assert_eq!(c.port, 8000);
    assert_eq!(c.database_url, "sqlite://./data/fastflow.db");
    assert_eq!(c.pipelines_dir, PathBuf::from("./examples/pipelines"));
    assert_eq!(c.container_timeout, None);
    assert_eq!(c.worker_base_image, None);
}

#[test]
fn docker_proxy_url_is_an_alias() {
    let c = Config::from_vars(&vars(&[("DOCKER_PROXY_URL", "tcp://proxy:2375")])).unwrap();
    assert_eq!(c.docker_host.as_deref(), Some("tcp://proxy:2375"));
    let c = Config::from_vars(&vars(&[
        ("DOCKER_PROXY_URL", "tcp://proxy:2375"),
        ("DOCKER_HOST", "unix:///run/docker.sock"),
    ]))
    .unwrap();
    assert_eq!(c.docker_host.as_deref(), Some("unix:///run/docker.sock"));
}

#[test]
fn bad_values_name_the_variable() {
    let err = Config::from_vars(&vars(&[("PORT", "eighty")])).unwrap_err();
    assert_eq!(err.var, "PORT");
    let err = Config::from_vars(&vars(&[("MAX_CONCURRENT_RUNS", "0")])).unwrap_err();
    assert_eq!(err.var, "MAX_CONCURRENT_RUNS");
    let err = Config::from_vars(&vars(&[("WORKER_CA_BUNDLE", "/nonexistent/ca.pem")])).unwrap_err();
    assert_eq!(err.var, "WORKER_CA_BUNDLE");
    let err = Config::from_vars(&vars(&[("DATABASE_URL", "mysql://x")])).unwrap_err();
    assert_eq!(err.var, "DATABASE_URL");
    let err = Config::from_vars(&vars(&[("CLEANUP_TIME", "25:99")])).unwrap_err();
    assert_eq!(err.var, "CLEANUP_TIME");
    let err = Config::from_vars(&vars(&[("STOP_RUNS_ON_SHUTDOWN", "maybe")])).unwrap_err();
    assert_eq!(err.var, "STOP_RUNS_ON_SHUTDOWN");
}

#[test]
fn numbers_outside_their_range_name_the_range() {
    for (var, value) in [
        ("MAX_CONCURRENT_RUNS", "1000000"),
        ("CONTAINER_TIMEOUT", "18446744073709551615"),
        ("RETRY_ATTEMPTS", "4294967295"),
        ("LOG_MAX_SIZE_MB", "0"),
        ("LOG_MAX_SIZE_MB", "1e300"),
        ("WORKER_PIDS_LIMIT", "-1"),
        ("LOG_RETENTION_DAYS", "4294967295"),
        ("HTTP_HEADER_TIMEOUT", "0"),
        ("HTTP_MAX_CONNECTIONS", "1"),
        ("DEFAULT_CPU_LIMIT", "1e-12"),
        ("DEFAULT_MEM_LIMIT", "9000000t"),
        ("DEFAULT_MEM_LIMIT", "lots"),
    ] {
        let err = Config::from_vars(&vars(&[(var, value)])).unwrap_err();
        assert_eq!(err.var, var, "{value}");
        assert!(!err.reason.is_empty());
    }
    let err = Config::from_vars(&vars(&[("RETRY_ATTEMPTS", "101")])).unwrap_err();
    assert_eq!(err.reason, "must be from 0 to 100 (retries)");
}

#[test]
fn allowed_hosts_come_from_base_url_and_the_list() {
    let c = Config::from_vars(&vars(&[
        ("BASE_URL", "https://Flow.Example.com:8443/ui"),
        ("ALLOWED_HOSTS", "internal.lan, other:9000"),
    ]))
    .unwrap();
    assert_eq!(
        c.allowed_hosts,
        ["internal.lan", "other", "flow.example.com"]
    );
    let c = Config::from_vars(&vars(&[
        ("DEFAULT_CPU_LIMIT", "1.5"),
        ("DEFAULT_MEM_LIMIT", "512m"),
    ]))
    .unwrap();
    assert_eq!(c.default_cpu_limit, Some(1.5));
    assert_eq!(c.default_mem_limit.unwrap().bytes, 512 << 20);
}
