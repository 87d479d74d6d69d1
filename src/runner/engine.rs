//! The Docker Engine, through bollard: connecting, creating containers (pulling
//! the image when it is missing), waiting for exit, and removing containers.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::container_policy::{self, MountRoots, PolicyViolation};
use super::container_spec::LABEL_INSTANCE;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot connect to the Docker engine ({host}): {source}")]
    Connect { host: String, source: BollardError },
    #[error(
        "image `{image}` is not available locally and pulling it failed: {reason}. On machines without registry access build a local image with scripts/build-runner-image.sh and set WORKER_BASE_IMAGE"
    )]
    Pull { image: String, reason: String },
    #[error("Docker engine error: {}", describe_api_error(.0))]
    Api(#[from] BollardError),
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// The wait for a running container cannot be kept up.
    #[error("{0}")]
    Wait(String),
}

/// A 403 from the engine's address is a socket proxy's allow-list (the engine itself
/// answers 403 only for swarm and plugin calls we never make): say which call and
/// what to allow instead of passing on the proxy's HTML page.
fn describe_api_error(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 403, ..
        } => "the Docker API refused the call with 403 Forbidden: a Docker socket proxy in DOCKER_HOST does not allow it. Fast-Flow needs CONTAINERS=1 IMAGES=1 INFO=1 POST=1 PING=1 (docs/deployment.md lists each call)".into(),
        other => other.to_string(),
    }
}

/// Connects to `DOCKER_HOST` (unix socket path or `unix://`, `tcp://`, `http://`), or
/// the local socket. bollard connects lazily: this does not fail when the engine is down.
pub fn connect(docker_host: Option<&str>) -> Result<Docker, EngineError> {
    let result = match docker_host {
        None => Docker::connect_with_local_defaults(),
        Some(h) if h.starts_with('/') => Docker::connect_with_host(&format!("unix://{h}")),
        Some(h) => Docker::connect_with_host(h),
    };
    result.map_err(|source| EngineError::Connect {
        host: docker_host.unwrap_or("local socket").to_string(),
        source,
    })
}

/// Where the engine is expected, for messages: `DOCKER_HOST=tcp://proxy:2375`, or
/// the default socket when `DOCKER_HOST` is unset.
pub fn describe_host(docker_host: Option<&str>) -> String {
    match docker_host {
        Some(h) => format!("DOCKER_HOST={h}"),
        None => "unix:///var/run/docker.sock (the default; set DOCKER_HOST to change it)".into(),
    }
}

impl EngineError {
    /// The engine could not be reached at all (as opposed to refusing a request).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Api(e) | Self::Connect { source: e, .. } => is_unreachable(e),
            Self::Pull { .. } | Self::Policy(_) | Self::Wait(_) => false,
        }
    }
}

/// Connection-level failures: refused, socket missing, timed out.
pub fn is_unreachable(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::IOError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::RequestTimeoutError
            | BollardError::HyperLegacyError { .. }
            | BollardError::SocketNotFoundError(_)
    )
}

pub fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The image for a run: `WORKER_BASE_IMAGE` when configured. Otherwise the default
/// uv image if present, else a local image built by `scripts/build-runner-image.sh`
/// if present (air-gapped machines), else the default uv image (pulled on first use).
pub async fn choose_image(docker: &Docker, configured: Option<&str>) -> String {
    use crate::config::{DEFAULT_WORKER_IMAGE, LOCAL_RUNNER_IMAGE};
    if let Some(image) = configured {
        return image.to_string();
    }
    if docker.inspect_image(DEFAULT_WORKER_IMAGE).await.is_err()
        && docker.inspect_image(LOCAL_RUNNER_IMAGE).await.is_ok()
    {
        return LOCAL_RUNNER_IMAGE.to_string();
    }
    DEFAULT_WORKER_IMAGE.to_string()
}

/// Pulls `image` and waits for the pull to finish.
pub async fn pull_image(docker: &Docker, image: &str) -> Result<(), EngineError> {
    let (repo, tag) = split_image(image);
    let options = CreateImageOptionsBuilder::new()
        .from_image(repo)
        .tag(tag)
        .build();
    let mut progress = docker.create_image(Some(options), None, None);
    while let Some(item) = progress.next().await {
        match item {
            Ok(info) => {
                if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                    return Err(EngineError::Pull {
                        image: image.into(),
                        reason: detail,
                    });
                }
            }
            Err(e) => {
                return Err(EngineError::Pull {
                    image: image.into(),
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// `repo[:tag]` or `repo@digest`; a `:` inside a registry host:port is not a tag.
fn split_image(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], &image[i + 1..]),
        _ => (image, "latest"),
    }
}

/// Creates a container; when the image is missing, pulls it once and retries.
pub async fn create_container(
    docker: &Docker,
    body: ContainerCreateBody,
    roots: &MountRoots,
) -> Result<String, EngineError> {
    container_policy::check(&body, roots)?;
    match docker.create_container(None, body.clone()).await {
        Ok(created) => Ok(created.id),
        Err(e) if is_not_found(&e) => {
            let image = body.image.clone().unwrap_or_default();
            tracing::info!(%image, "image missing locally; pulling");
            pull_image(docker, &image).await?;
            Ok(docker.create_container(None, body).await?.id)
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits until the container is not running and returns its exit code.
///
/// A socket proxy may end a long wait: HAProxy (tecnativa/docker-socket-proxy)
/// answers `504` after `timeout server` (10 minutes) without a byte, or the
/// connection drops. Then the container's own state decides: still running is
/// waited for again, ended gives its exit code. A wait that keeps failing at
/// once while the container runs (a proxy that refuses it) is an error.
pub async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, EngineError> {
    const QUICK: std::time::Duration = std::time::Duration::from_secs(1);
    const MAX_QUICK_FAILURES: u32 = 5;
    let mut quick_failures = 0;
    loop {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let began = std::time::Instant::now();
        let mut stream = docker.wait_container(id, Some(options));
        let cut = match stream.next().await {
            Some(Ok(resp)) => return Ok(resp.status_code),
            // bollard reports a non-zero exit as an error value; it is an outcome.
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => return Ok(code),
            // The response headers took longer than the client timeout; keep waiting.
            Some(Err(BollardError::RequestTimeoutError)) => continue,
            Some(Err(e)) => Some(e),
            None => None,
        };
        drop(stream);
        let state = docker.inspect_container(id, None).await?.state;
        if !state.as_ref().and_then(|s| s.running).unwrap_or(false) {
            return Ok(state.and_then(|s| s.exit_code).unwrap_or(-1));
        }
        if began.elapsed() < QUICK {
            quick_failures += 1;
            if quick_failures >= MAX_QUICK_FAILURES {
                return Err(match cut {
                    Some(e) => e.into(),
                    None => EngineError::Wait(
                        "the engine (or a proxy in front of it) keeps ending the wait for the container at once".into(),
                    ),
                });
            }
            tokio::time::sleep(QUICK).await;
        } else {
            quick_failures = 0;
        }
        if let Some(e) = &cut {
            tracing::info!(container = %id, error = %e, "the wait for the container was cut off while it runs; waiting again");
        }
    }
}

/// Whether the container runs now (`false` when it cannot be inspected).
pub async fn is_running(docker: &Docker, id: &str) -> bool {
    match docker.inspect_container(id, None).await {
        Ok(c) => c.state.and_then(|s| s.running).unwrap_or(false),
        Err(_) => false,
    }
}

/// SIGTERM, then SIGKILL after `grace` seconds (the engine does both).
pub async fn stop(docker: &Docker, id: &str, grace: i32) -> Result<(), EngineError> {
    let options = bollard::query_parameters::StopContainerOptionsBuilder::new()
        .t(grace)
        .build();
    match docker.stop_container(id, Some(options)).await {
        Err(BollardError::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        })
        | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn kill(docker: &Docker, id: &str) -> Result<(), EngineError> {
    let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
    match docker.kill_container(id, Some(options)).await {
        // 409: already stopped; 404: already gone. Both mean "not running".
        Err(BollardError::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        })
        | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What the engine recorded about a container that ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExitState {
    pub oom_killed: bool,
    /// When it exited, as the engine recorded it.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The engine's record of an ended container. The engine can handle the OOM event
/// after the exit event, so a SIGKILL under a memory limit (`may_be_late`) is
/// re-checked for up to a second before "not OOM-killed".
pub async fn exit_state(
    docker: &Docker,
    id: &str,
    may_be_late: bool,
) -> Result<ExitState, EngineError> {
    let tries = if may_be_late { 10 } else { 1 };
    let mut seen = ExitState::default();
    for attempt in 0..tries {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let state = docker
            .inspect_container(id, None)
            .await?
            .state
            .unwrap_or_default();
        seen.finished_at = state
            .finished_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            // "0001-01-01T00:00:00Z" means "not finished".
            .filter(|t| t.timestamp() > 0);
        seen.oom_killed = state.oom_killed.unwrap_or(false);
        if seen.oom_killed {
            break;
        }
    }
    Ok(seen)
}

/// Force-removes a container; "already gone" is success.
pub async fn remove(docker: &Docker, id: &str) -> Result<(), EngineError> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Err(e) if is_not_found(&e) => Ok(()),
        Err(BollardError::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()), // removal already in progress
        other => Ok(other?),
    }
}

/// Removes the container in the background: the run's result never waits for it.
pub fn remove_in_background(docker: &Docker, id: String) {
    let docker = docker.clone();
    tokio::spawn(async move {
        if let Err(e) = remove(&docker, &id).await {
            tracing::warn!(container = %id, error = %e, "could not remove run container");
        }
    });
}

/// Containers (any state) labelled as ours: `(container id, run id)`.
pub async fn list_instance_containers(
    docker: &Docker,
    instance_id: &str,
) -> Result<Vec<(String, String)>, EngineError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_INSTANCE}={instance_id}")],
    )]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker.list_containers(Some(options)).await?;
    Ok(containers
        .into_iter()
        .filter_map(|c| {
            let run_id = c
                .labels
                .as_ref()?
                .get(super::container_spec::LABEL_RUN_ID)?
                .clone();
            Some((c.id?, run_id))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn image_references() {
        assert_eq!(
            split_image("ghcr.io/astral-sh/uv:python3.12-bookworm-slim"),
            ("ghcr.io/astral-sh/uv", "python3.12-bookworm-slim")
        );
        assert_eq!(
            split_image("fastflow-runner"),
            ("fastflow-runner", "latest")
        );
        assert_eq!(
            split_image("localhost:5000/runner"),
            ("localhost:5000/runner", "latest")
        );
        assert_eq!(
            split_image("localhost:5000/runner:v1"),
            ("localhost:5000/runner", "v1")
        );
    }
}
