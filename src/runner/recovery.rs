//! Start-up repair. Runs left RUNNING by a previous process are picked up again:
//! a container that still runs is re-attached (the log continues after the last
//! stored line), an exited one is finalized with its real exit code and remaining
//! output, a vanished one ends FAILED with the reason, a never-started one goes
//! back to the queue. This installation's containers without a run are removed.

use std::collections::HashMap;
use std::time::Duration;

use super::{Runner, engine};
use crate::db::{self, Run};

impl Runner {
    /// Repairs `stale` (the runs RUNNING before this process started) once the
    /// engine answers; runs in the background so start-up never waits for Docker.
    pub async fn recover(self, stale: Vec<Run>) {
        let deps = self.deps.clone();
        let mut wait = Duration::from_millis(250);
        let containers = loop {
            match engine::list_instance_containers(&deps.docker, &deps.instance_id).await {
                Ok(c) => {
                    deps.engine.set_up();
                    break c;
                }
                Err(e) => {
                    deps.engine.set_down(format!(
                        "cannot reach the Docker engine at {}: {e}",
                        engine::describe_host(deps.config.docker_host.as_deref())
                    ));
                    tokio::select! {
                        _ = deps.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        };
        match deps.docker.info().await {
            Ok(info) => {
                let host = crate::pipelines::HostResources::from_engine(
                    info.ncpu.unwrap_or(0),
                    info.mem_total.unwrap_or(0),
                );
                if let Some(host) = host {
                    deps.registry.set_host(host).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the engine's CPUs and memory"),
        }
        check_runner_image(&deps).await;
        let mut by_run: HashMap<String, String> =
            containers.into_iter().map(|(c, r)| (r, c)).collect();
        for run in stale {
            match run
                .container_id
                .clone()
                .or_else(|| by_run.get(&run.id).cloned())
            {
                Some(container) => {
                    by_run.remove(&run.id);
                    tracing::info!(run = %run.id, %container, "re-attaching to a run left by the previous process");
                    self.spawn_executor(run, Some(container));
                }
                None => {
                    // Claimed, but no container was created: it never ran.
                    tracing::info!(run = %run.id, "requeueing a run that never started");
                    if let Err(e) = db::runs::requeue(&deps.pool, &run.id).await {
                        tracing::error!(run = %run.id, error = %e, "could not requeue");
                    }
                }
            }
        }
        self.wake.notify_one();
        // What is left are containers whose run is not open any more (or never existed).
        for (run_id, container) in by_run {
            let open = matches!(db::runs::get(&deps.pool, &run_id).await, Ok(Some(r)) if !r.status.is_terminal());
            if !open {
                tracing::info!(%container, run = %run_id, "removing a leftover run container");
                engine::remove_in_background(&deps.docker, container);
            }
        }
    }
}

/// Says at start, not at the first run, that the runner image is missing.
async fn check_runner_image(deps: &super::RunnerDeps) {
    let image = engine::choose_image(&deps.docker, deps.config.worker_base_image.as_deref()).await;
    match deps.docker.inspect_image(&image).await {
        Ok(_) => {
            tracing::info!(%image, "runner image present");
            deps.engine.set_image_problem(None);
        }
        Err(e) if engine::is_not_found(&e) => {
            let problem = format!(
                "runner image `{image}` is not on the Docker engine; the first run will try to pull it. Without registry access, build it with scripts/build-runner-image.sh and set WORKER_BASE_IMAGE"
            );
            tracing::error!("{problem}");
            deps.engine.set_image_problem(Some(problem));
        }
        Err(e) => tracing::warn!(%image, error = %e, "could not inspect the runner image"),
    }
}
