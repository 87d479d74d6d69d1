//! Pre-heating: resolving a pipeline's `requirements.txt` into the shared uv cache
//! in a runner container (the run's image, mounts, user and limits), so that its
//! next run starts warm. Warm-ups run one at a time in the background; a run of a
//! pipeline that is waiting for or in a warm-up waits for it instead of doing the
//! same downloads twice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::container_spec::{self, APP_DIR, RunContext};
use super::{Runner, engine};
use crate::pipelines::Pipeline;

/// Longest a warm-up may take before it is stopped and reported failed.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Where a pipeline's warm-up stands.
#[derive(Debug, Clone, Serialize)]
pub struct WarmState {
    /// `pending`, `warming`, `ready` or `failed`.
    pub state: &'static str,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// How long the warm-up took, once it ended.
    pub seconds: Option<f64>,
}

/// The warm-ups of this process.
#[derive(Default)]
pub struct Preheater {
    states: Mutex<BTreeMap<String, WarmState>>,
    /// Bumped at every state change; waiting runs watch it.
    changed: tokio::sync::watch::Sender<u64>,
    /// One warm-up at a time.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Preheater {
    pub fn states(&self) -> BTreeMap<String, WarmState> {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, name: &str, state: &'static str, error: Option<String>, seconds: Option<f64>) {
        let entry = WarmState {
            state,
            error,
            updated_at: Utc::now(),
            seconds,
        };
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), entry);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn is_busy(&self, name: &str) -> bool {
        self.states
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .is_some_and(|s| matches!(s.state, "pending" | "warming"))
    }

    /// Returns once `name` has no warm-up pending or running (at most the timeout).
    pub async fn wait_idle(&self, name: &str) {
        let mut changes = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + WARM_UP_TIMEOUT;
        while self.is_busy(name) {
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// The command that resolves and installs the requirements into the cache, then exits.
fn warm_command(pipeline: &Pipeline) -> Vec<String> {
    let mut cmd: Vec<String> = ["uv", "run", "--no-project"].map(String::from).into();
    if let Some(version) = &pipeline.metadata.python_version {
        cmd.extend(["--python".into(), version.clone()]);
    }
    cmd.extend([
        "--with-requirements".into(),
        format!("{APP_DIR}/requirements.txt"),
        "python".into(),
        "-c".into(),
        "pass".into(),
    ]);
    cmd
}

impl Runner {
    /// Warms the given pipelines' requirements in the background, one after another.
    pub fn preheat(&self, pipelines: Vec<Arc<Pipeline>>) {
        let wanted: Vec<Arc<Pipeline>> = pipelines
            .into_iter()
            .filter(|p| p.has_requirements && p.is_valid())
            .collect();
        if wanted.is_empty() {
            return;
        }
        let preheater = self.deps.preheat.clone();
        for p in &wanted {
            preheater.set(&p.name, "pending", None, None);
        }
        let runner = self.clone();
        tokio::spawn(async move {
            let _one = preheater.one_at_a_time.lock().await;
            for p in wanted {
                if runner.deps.shutdown.is_cancelled() {
                    return;
                }
                preheater.set(&p.name, "warming", None, None);
                let clock = Instant::now();
                let result = runner.warm(&p).await;
                let seconds = Some(clock.elapsed().as_secs_f64());
                match result {
                    Ok(()) => preheater.set(&p.name, "ready", None, seconds),
                    Err(e) => {
                        tracing::warn!(pipeline = %p.name, error = %e, "pre-heating failed");
                        preheater.set(&p.name, "failed", Some(e), seconds);
                    }
                }
            }
        });
    }

    async fn warm(&self, p: &Pipeline) -> Result<(), String> {
        let deps = &self.deps;
        let image =
            engine::choose_image(&deps.docker, deps.config.worker_base_image.as_deref()).await;
        let limits = super::limits::for_run(&p.metadata.limits, &deps.config, deps.registry.host());
        let env = BTreeMap::new();
        let id = format!("preheat-{}", uuid::Uuid::now_v7());
        let ctx = RunContext {
            run_id: &id,
            instance_id: &deps.instance_id,
            run_env: &env,
            user: &deps.worker_user,
            image: &image,
            limits: &limits,
        };
        let mut body = container_spec::build(&deps.config, p, &ctx);
        body.cmd = Some(warm_command(p));
        let container = engine::create_container(
            &deps.docker,
            body,
            &super::container_policy::MountRoots::from_config(&deps.config),
        )
        .await
        .map_err(|e| format!("creating the warm-up container failed: {e}"))?;
        let outcome = async {
            deps.docker
                .start_container(
                    &container,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await
                .map_err(|e| format!("starting the warm-up container failed: {e}"))?;
            match tokio::time::timeout(WARM_UP_TIMEOUT, engine::wait_exit(&deps.docker, &container))
                .await
            {
                Ok(Ok(0)) => Ok(()),
                Ok(Ok(code)) => Err(format!(
                    "uv exited with code {code} while resolving requirements.txt{}",
                    last_output(&deps.docker, &container).await
                )),
                Ok(Err(e)) => Err(format!("waiting for the warm-up container failed: {e}")),
                Err(_) => Err(format!(
                    "the warm-up took longer than {} s",
                    WARM_UP_TIMEOUT.as_secs()
                )),
            }
        }
        .await;
        engine::remove_in_background(&deps.docker, container);
        outcome
    }
}

/// The container's last output lines, as `": …"` (empty if there is none).
async fn last_output(docker: &bollard::Docker, id: &str) -> String {
    use futures_util::StreamExt;
    let options = bollard::query_parameters::LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail("5")
        .build();
    let mut stream = docker.logs(id, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        if text.len() > 2000 {
            break;
        }
    }
    let text: String = text.trim().chars().take(1000).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}
