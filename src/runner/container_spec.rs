//! What a run's container looks like: image, command, environment, mounts,
//! limits and hardening. A pure function of the config, the pipeline and the run,
//! so it can be checked without an engine.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::models::{ContainerCreateBody, HostConfig};

use crate::config::Config;
use crate::pipelines::Pipeline;
use crate::pipelines::metadata::ResourceLimits;

pub const LABEL_RUN_ID: &str = "fastflow.run_id";
pub const LABEL_PIPELINE: &str = "fastflow.pipeline";
pub const LABEL_INSTANCE: &str = "fastflow.instance";

/// Where things live inside the container.
pub const APP_DIR: &str = "/app";
pub const UV_CACHE_MOUNT: &str = "/cache/uv";
pub const CA_BUNDLE_MOUNT: &str = "/etc/fastflow/ca-bundle.crt";
/// Fast-Flow's own Python files (the setup probe), read-only.
pub const RUNTIME_MOUNT: &str = "/opt/fastflow";
const SITECUSTOMIZE: &str = include_str!("runtime/sitecustomize.py");

/// The line `sitecustomize` prints when `main.py` starts (unique per run).
pub fn setup_marker(run_id: &str) -> String {
    format!("\u{1e}fastflow-setup-ready {run_id}")
}

/// Where the runtime files live on the host.
pub fn runtime_dir(config: &Config) -> PathBuf {
    config.data_dir.join("runtime")
}

/// Writes the runtime files (world-readable, since pipelines run unprivileged).
pub fn install_runtime(config: &Config) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = runtime_dir(config);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let file = dir.join("sitecustomize.py");
    std::fs::write(&file, SITECUSTOMIZE)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))
}
/// Most bytes of `KEY=value` entries a run's environment may hold. Linux
/// refuses to start a program whose arguments and environment exceed about
/// 2 MiB (a quarter of the default stack limit); half of that is left for
/// `uv`, Python and the pipeline's own children.
pub const MAX_ENV_BYTES: usize = 1024 * 1024;

/// The size of `env` as the kernel counts it (each entry and its NUL).
pub fn env_bytes(env: &[String]) -> usize {
    env.iter().map(|e| e.len().saturating_add(1)).sum()
}

const TMPFS_OPTIONS: &str = "rw,nosuid,nodev,size=256m";

/// Inputs that are not part of the config or the pipeline.
pub struct RunContext<'a> {
    pub run_id: &'a str,
    pub instance_id: &'a str,
    /// What a run receives over `default_env`, later wins: the injected secrets
    /// (`runner::injection`), then the request's `env_vars`, then its `parameters`.
    pub run_env: &'a BTreeMap<String, String>,
    /// `uid:gid` the pipeline runs as.
    pub user: &'a str,
    pub image: &'a str,
    /// The limits in force (see `runner::limits::for_run`).
    pub limits: &'a ResourceLimits,
}

/// The container's environment: `default_env`, then the run's values (which win),
/// then Fast-Flow's own variables (which nobody can override).
pub fn environment(
    pipeline: &Pipeline,
    ctx: &RunContext<'_>,
    config: &Config,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("PYTHONUNBUFFERED", "1"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("UV_CACHE_DIR", UV_CACHE_MOUNT),
        ("UV_NO_PROGRESS", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if config.worker_ca_bundle.is_some() {
        for key in [
            "SSL_CERT_FILE",
            "REQUESTS_CA_BUNDLE",
            "CURL_CA_BUNDLE",
            "PIP_CERT",
        ] {
            env.insert(key.into(), CA_BUNDLE_MOUNT.into());
        }
        env.insert("UV_SYSTEM_CERTS".into(), "1".into());
    }
    env.extend(
        pipeline
            .metadata
            .default_env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env.extend(ctx.run_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.insert("FASTFLOW_RUN_ID".into(), ctx.run_id.into());
    env.insert("FASTFLOW_PIPELINE".into(), pipeline.name.clone());
    env.insert("FASTFLOW_SETUP_MARKER".into(), setup_marker(ctx.run_id));
    let python_path = match env.get("PYTHONPATH") {
        Some(user) if !user.is_empty() => format!("{RUNTIME_MOUNT}:{user}"),
        _ => RUNTIME_MOUNT.to_string(),
    };
    env.insert("PYTHONPATH".into(), python_path);
    env
}

/// `uv run --no-project [--python V] [--with-requirements /app/requirements.txt] /app/main.py`
pub fn command(pipeline: &Pipeline) -> Vec<String> {
    let mut cmd: Vec<String> = ["uv", "run", "--no-project"].map(String::from).into();
    if let Some(version) = &pipeline.metadata.python_version {
        cmd.extend(["--python".into(), version.clone()]);
    }
    if pipeline.has_requirements {
        cmd.extend([
            "--with-requirements".into(),
            format!("{APP_DIR}/requirements.txt"),
        ]);
    }
    cmd.push(format!("{APP_DIR}/main.py"));
    cmd
}

pub fn build(config: &Config, pipeline: &Pipeline, ctx: &RunContext<'_>) -> ContainerCreateBody {
    let mut binds = vec![
        format!("{}:{APP_DIR}:ro", pipeline.dir.display()),
        format!("{}:{UV_CACHE_MOUNT}:rw", config.uv_cache_dir.display()),
        format!("{}:{RUNTIME_MOUNT}:ro", runtime_dir(config).display()),
    ];
    if let Some(ca) = &config.worker_ca_bundle {
        binds.push(format!("{}:{CA_BUNDLE_MOUNT}:ro", ca.display()));
    }
    // Ranges are checked at discovery; the conversions stay total anyway.
    let memory = ctx
        .limits
        .mem_hard_limit
        .as_ref()
        .map(|m| i64::try_from(m.bytes).unwrap_or(i64::MAX));
    let host_config = HostConfig {
        binds: Some(binds),
        memory,
        // Swap equal to memory means no swap: the limit is a real limit.
        memory_swap: memory,
        nano_cpus: ctx.limits.cpu_hard_limit.map(|c| (c * 1e9).round() as i64),
        pids_limit: Some(config.worker_pids_limit),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_string(),
            TMPFS_OPTIONS.to_string(),
        )])),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        cap_drop: Some(vec!["ALL".into()]),
        network_mode: Some(config.worker_network.clone()),
        // An init process forwards signals to Python and reaps children.
        init: Some(true),
        log_config: Some(engine_log_config(config)),
        ..Default::default()
    };
    let env = environment(pipeline, ctx, config);
    ContainerCreateBody {
        image: Some(ctx.image.to_string()),
        cmd: Some(command(pipeline)),
        entrypoint: Some(Vec::new()),
        env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: Some(APP_DIR.into()),
        user: Some(ctx.user.to_string()),
        labels: Some(HashMap::from([
            (LABEL_RUN_ID.to_string(), ctx.run_id.to_string()),
            (LABEL_PIPELINE.to_string(), pipeline.name.clone()),
            (LABEL_INSTANCE.to_string(), ctx.instance_id.to_string()),
        ])),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// The engine keeps its own copy of a run's output (what `docker logs` and a
/// re-attach after a crash read). Without a cap it grows without bound on the host
/// while our copy stops at `LOG_MAX_SIZE_MB`: cap it at that size per file, in five
/// files, so it holds at least as many lines as ours although its JSON costs about
/// twice as many bytes per short line. (If it still rotated, a resume says so.)
fn engine_log_config(config: &Config) -> bollard::models::HostConfigLogConfig {
    let kib = config.log_max_size_bytes.div_ceil(1024).max(1);
    bollard::models::HostConfigLogConfig {
        typ: Some("json-file".into()),
        config: Some(HashMap::from([
            ("max-size".to_string(), format!("{kib}k")),
            ("max-file".to_string(), "5".to_string()),
        ])),
    }
}

/// The user that runs pipelines, and making the uv cache writable for it:
/// the server's own uid when it is not root, else a fixed unprivileged uid that
/// is given the cache directory.
pub fn prepare_worker_user(uv_cache: &PathBuf) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid/getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid != 0 {
        return Ok(format!("{uid}:{gid}"));
    }
    const WORKER_ID: u32 = 1001;
    if std::fs::metadata(uv_cache)?.uid() != WORKER_ID {
        chown_tree(uv_cache, WORKER_ID)?;
    }
    Ok(format!("{WORKER_ID}:{WORKER_ID}"))
}

fn chown_tree(path: &std::path::Path, id: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(id), Some(id))?;
    if std::fs::symlink_metadata(path)?.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), id)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipelines::metadata::parse_metadata;

    fn pipeline(json: &str, reqs: bool) -> Pipeline {
        Pipeline {
            name: "etl".into(),
            dir: PathBuf::from("/srv/pipelines/etl"),
            metadata_file: Some("pipeline.json".into()),
            has_requirements: reqs,
            requirements: None,
            metadata: parse_metadata(json).metadata,
            errors: vec![],
            warnings: vec![],
            revision: None,
        }
    }

    fn config() -> Config {
        let mut c = Config::from_vars(&HashMap::new()).unwrap();
        c.uv_cache_dir = PathBuf::from("/data/uv_cache");
        c
    }

    #[test]
    fn limits_hardening_and_mounts() {
        let p = pipeline(r#"{"mem_hard_limit": "512m", "cpu_hard_limit": 1.5}"#, true);
        let env = BTreeMap::new();
        let ctx = RunContext {
            run_id: "r1",
            instance_id: "i1",
            run_env: &env,
            user: "1001:1001",
            image: "img",
            limits: &p.metadata.limits,
        };
        let body = build(&config(), &p, &ctx);
        let hc = body.host_config.unwrap();
        assert_eq!(hc.memory, Some(512 << 20));
        assert_eq!(hc.memory_swap, Some(512 << 20));
        assert_eq!(hc.nano_cpus, Some(1_500_000_000));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
        assert!(
            hc.binds
                .unwrap()
                .contains(&"/srv/pipelines/etl:/app:ro".to_string())
        );
        assert_eq!(body.user.as_deref(), Some("1001:1001"));
        assert_eq!(
            body.cmd.unwrap(),
            [
                "uv",
                "run",
                "--no-project",
                "--with-requirements",
                "/app/requirements.txt",
                "/app/main.py"
            ]
        );
        assert_eq!(body.labels.unwrap()[LABEL_RUN_ID], "r1");
        let log = hc.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert_eq!(log.config.unwrap()["max-size"], "102400k");
    }

    #[test]
    fn run_env_wins_over_default_env_but_not_over_fastflow_vars() {
        let p = pipeline(
            r#"{"default_env": {"A": "default", "B": "default"}}"#,
            false,
        );
        let run_env = BTreeMap::from([
            ("B".to_string(), "run".to_string()),
            ("FASTFLOW_RUN_ID".to_string(), "spoof".to_string()),
        ]);
        let ctx = RunContext {
            run_id: "r1",
            instance_id: "i1",
            run_env: &run_env,
            user: "1:1",
            image: "img",
            limits: &p.metadata.limits,
        };
        let env = environment(&p, &ctx, &config());
        assert_eq!(env["A"], "default");
        assert_eq!(env["B"], "run");
        assert_eq!(env["FASTFLOW_RUN_ID"], "r1");
        assert_eq!(env["FASTFLOW_PIPELINE"], "etl");
        assert!(!env.contains_key("SSL_CERT_FILE"));
    }
}
