//! The container policy: what every container Fast-Flow creates (runs and
//! dependency warm-ups) must satisfy, checked in code right before the create
//! call. A Docker socket proxy cannot scope `POST /containers/create` (with
//! `CONTAINERS=1 POST=1` it lets any host config through), so this check is the
//! line that holds: never privileged, no added capabilities, no host network /
//! PID / IPC / UTS / user namespace, no devices, a read-only root file system, a
//! non-root user, and bind mounts only of the run's pipeline folder, the uv cache,
//! Fast-Flow's own runtime files and the CA bundle, each at its place and mode.

use std::path::{Component, Path, PathBuf};

use bollard::models::{ContainerCreateBody, HostConfig};

use super::container_spec::{APP_DIR, CA_BUNDLE_MOUNT, RUNTIME_MOUNT, UV_CACHE_MOUNT};
use crate::config::Config;

/// Why a container was refused; the message names the setting that breaks the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("container refused by Fast-Flow's container policy: {0}")]
pub struct PolicyViolation(pub String);

/// The host folders a container may see, read from the configuration.
#[derive(Debug, Clone)]
pub struct MountRoots {
    /// Pipeline folders live below one of these (the pipelines directory, the git
    /// sync snapshots).
    pub pipeline_roots: Vec<PathBuf>,
    pub uv_cache: PathBuf,
    pub runtime: PathBuf,
    pub ca_bundle: Option<PathBuf>,
}

impl MountRoots {
    pub fn from_config(config: &Config) -> Self {
        Self {
            pipeline_roots: [
                config.pipelines_dir.clone(),
                config.data_dir.join("git").join("snapshots"),
            ]
            .into_iter()
            .map(|root| std::fs::canonicalize(&root).unwrap_or(root))
            .collect(),
            uv_cache: config.uv_cache_dir.clone(),
            runtime: super::container_spec::runtime_dir(config),
            ca_bundle: config.worker_ca_bundle.clone(),
        }
    }
}

/// Checks `body` against the policy.
pub fn check(body: &ContainerCreateBody, roots: &MountRoots) -> Result<(), PolicyViolation> {
    let deny = |why: String| Err(PolicyViolation(why));
    match body.user.as_deref().map(str::trim) {
        None | Some("") => return deny("the container has no user (it would run as root)".into()),
        Some(user) if is_root_user(user) => {
            return deny(format!("the container would run as `{user}` (root)"));
        }
        Some(_) => {}
    }
    let Some(host) = &body.host_config else {
        return deny("the container has no host configuration (no limits or hardening)".into());
    };
    check_privileges(host).or_else(deny)?;
    check_namespaces(host).or_else(deny)?;
    check_binds(host, roots).or_else(deny)
}

fn is_root_user(user: &str) -> bool {
    let name = user.split(':').next().unwrap_or(user);
    name == "0" || name.eq_ignore_ascii_case("root")
}

fn check_privileges(host: &HostConfig) -> Result<(), String> {
    if host.privileged == Some(true) {
        return Err("privileged mode".into());
    }
    if host.cap_add.as_ref().is_some_and(|c| !c.is_empty()) {
        return Err(format!(
            "added capabilities {:?}",
            host.cap_add.as_deref().unwrap_or_default()
        ));
    }
    if !host
        .cap_drop
        .as_ref()
        .is_some_and(|c| c.iter().any(|x| x.eq_ignore_ascii_case("ALL")))
    {
        return Err("the capabilities are not all dropped".into());
    }
    let opts = host.security_opt.as_deref().unwrap_or_default();
    if !opts
        .iter()
        .any(|o| o == "no-new-privileges:true" || o == "no-new-privileges")
    {
        return Err("no-new-privileges is not set".into());
    }
    if let Some(o) = opts
        .iter()
        .find(|o| o.ends_with("=unconfined") || o.ends_with(":unconfined"))
    {
        return Err(format!("security option `{o}` turns confinement off"));
    }
    if host.readonly_rootfs != Some(true) {
        return Err("the root file system is writable".into());
    }
    if host.devices.as_ref().is_some_and(|d| !d.is_empty())
        || host.device_requests.as_ref().is_some_and(|d| !d.is_empty())
        || host
            .device_cgroup_rules
            .as_ref()
            .is_some_and(|d| !d.is_empty())
    {
        return Err("host devices".into());
    }
    if host.mounts.as_ref().is_some_and(|m| !m.is_empty())
        || host.volumes_from.as_ref().is_some_and(|v| !v.is_empty())
        || host.volume_driver.as_ref().is_some_and(|v| !v.is_empty())
    {
        return Err("mounts other than the listed bind mounts (volumes, volumes-from)".into());
    }
    Ok(())
}

fn check_namespaces(host: &HostConfig) -> Result<(), String> {
    if let Some(mode) = &host.network_mode {
        crate::config::check_network_mode(mode)?;
    }
    for (what, mode) in [
        ("PID", &host.pid_mode),
        ("IPC", &host.ipc_mode),
        ("UTS", &host.uts_mode),
        ("user", &host.userns_mode),
        (
            "cgroup",
            &host.cgroupns_mode.as_ref().map(|m| m.to_string()),
        ),
    ] {
        let mode = mode.as_deref().unwrap_or("");
        let shared = mode.eq_ignore_ascii_case("host") || mode.starts_with("container:");
        if shared {
            return Err(format!("the {what} namespace `{mode}` is shared"));
        }
    }
    Ok(())
}

/// Each bind must be one of the four known ones: the right host folder at the
/// right place with the right mode.
fn check_binds(host: &HostConfig, roots: &MountRoots) -> Result<(), String> {
    for bind in host.binds.as_deref().unwrap_or_default() {
        let mut parts = bind.rsplitn(3, ':');
        let (mode, target, source) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(s)) => (m, t, Path::new(s)),
            _ => {
                return Err(format!(
                    "bind mount `{bind}` does not say source:target:mode"
                ));
            }
        };
        if !is_plain_absolute(source) {
            return Err(format!(
                "bind mount source `{}` is not a plain absolute path",
                source.display()
            ));
        }
        let allowed = match (target, mode) {
            // Resolved, so a symlink cannot lead the engine outside the roots.
            (APP_DIR, "ro") => std::fs::canonicalize(source).is_ok_and(|real| {
                roots
                    .pipeline_roots
                    .iter()
                    .any(|r| real.starts_with(r) && real != *r)
            }),
            (UV_CACHE_MOUNT, "rw") => source == roots.uv_cache,
            (RUNTIME_MOUNT, "ro") => source == roots.runtime,
            (CA_BUNDLE_MOUNT, "ro") => {
                roots.ca_bundle.as_deref() == Some(source) && source.is_file()
            }
            _ => false,
        };
        if !allowed {
            return Err(format!(
                "bind mount of `{}` at `{target}` ({mode}) is not the pipeline folder, the uv cache, the runtime files or the CA bundle",
                source.display()
            ));
        }
        if source == Path::new("/") {
            return Err("bind mount of the host's root".into());
        }
    }
    Ok(())
}

/// Absolute, without `.` / `..` components: `starts_with` on it means "inside".
fn is_plain_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

#[cfg(test)]
#[path = "container_policy_tests.rs"]
mod tests;
