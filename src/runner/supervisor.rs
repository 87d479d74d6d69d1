//! Executor tasks under supervision. A panic inside one (a bug, never an input:
//! inputs are range-checked) must not leave its run RUNNING, hold a slot, or leave
//! the dispatcher asleep: the run is finished as `infrastructure_error` with the
//! panic message, its container removed, and the dispatcher woken.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use super::outcome::failure;
use super::{Runner, engine, executor};
use crate::db;
use crate::run_status::ErrorType;

impl Runner {
    /// Runs (or resumes) a run in a tracked, supervised task.
    pub(crate) fn spawn_executor(&self, run: db::Run, container: Option<String>) {
        let runner = self.clone();
        let run_id = run.id.clone();
        self.spawn_supervised(run_id, async move {
            match container {
                None => executor::execute(runner, run).await,
                Some(id) => executor::resume(runner, run, id).await,
            }
        });
    }

    /// Runs `work` for `run_id`; whatever happens, the dispatcher is woken after.
    pub(crate) fn spawn_supervised(
        &self,
        run_id: String,
        work: impl Future<Output = ()> + Send + 'static,
    ) {
        let runner = self.clone();
        self.deps.tasks.spawn(async move {
            if let Err(panic) = AssertUnwindSafe(work).catch_unwind().await {
                let message = panic_message(panic.as_ref());
                tracing::error!(run = %run_id, panic = %message, "a run's executor panicked; finishing the run");
                runner.finish_after_panic(&run_id, &message).await;
            }
            // A slot is free again (or the run ended): let queued runs start.
            runner.wake.notify_one();
        });
    }

    async fn finish_after_panic(&self, run_id: &str, message: &str) {
        let deps = &self.deps;
        deps.with_active(|m| m.remove(run_id));
        let run = match db::runs::get(&deps.pool, run_id).await {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(run = %run_id, error = %e, "cannot read the run after a panic");
                deps.hubs
                    .close(run_id, crate::run_status::RunStatus::Failed);
                return;
            }
        };
        let outcome = failure(
            ErrorType::InfrastructureError,
            format!("internal error: Fast-Flow's executor failed ({message}); please report this"),
        );
        if executor::record(deps, &run, &outcome).await.is_some()
            && let Some(container) = run.container_id
        {
            engine::remove_in_background(&deps.docker, container);
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic without a message".into());
    crate::pipelines::fields::shown(&text)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::pipelines::PipelineRegistry;
    use crate::run_status::RunStatus;
    use crate::runner::RunnerDeps;
    use crate::runner::hub::HubEvent;

    /// A runner on a real SQLite file; its engine client is never used here.
    async fn runner(dir: &std::path::Path) -> Runner {
        let vars = HashMap::from([
            (
                "DATA_DIR".to_string(),
                dir.join("data").display().to_string(),
            ),
            ("PIPELINES_DIR".to_string(), dir.display().to_string()),
        ]);
        let mut config = Config::from_vars(&vars).unwrap();
        config.prepare_dirs().unwrap();
        let pool = db::connect(&config.database_url).await.unwrap();
        let registry = Arc::new(PipelineRegistry::load(dir, None));
        let config = Arc::new(config);
        let cipher = Arc::new(
            crate::secrets::Cipher::new(&crate::secrets::SecretString::new(
                "kcogCCTbNDkn7UOY3RvQF_CW6Qpu0HufuPWp2qm_X7U=",
            ))
            .unwrap(),
        );
        let notifier = crate::notify::Notifier::new(
            pool.clone(),
            config.clone(),
            cipher.clone(),
            registry.clone(),
        );
        Runner::new(RunnerDeps {
            registry,
            config,
            pool,
            notifier,
            docker: engine::connect(Some("tcp://127.0.0.1:9")).unwrap(),
            hubs: Default::default(),
            instance_id: "test".into(),
            worker_user: "1000:1000".into(),
            active: Default::default(),
            engine: Default::default(),
            shutdown: Default::default(),
            tasks: Default::default(),
            preheat: Default::default(),
            create_resets: Default::default(),
            cipher,
        })
    }

    #[tokio::test]
    async fn a_panicking_executor_finishes_its_run_and_wakes_the_dispatcher() {
        let dir = tempfile::tempdir().unwrap();
        let runner = runner(dir.path()).await;
        let pool = &runner.deps().pool;
        let new = db::NewRun {
            id: "r1".into(),
            pipeline_name: "p".into(),
            triggered_by: "test".into(),
            env_vars: Default::default(),
            parameters: Default::default(),
            log_file: "r1.log".into(),
            attempt: 1,
            ..Default::default()
        };
        db::runs::insert(pool, &new).await.unwrap();
        db::runs::claim(pool, "r1").await.unwrap().unwrap();
        let mut viewer = runner.hubs().subscribe("r1");

        runner.spawn_supervised("r1".into(), async {
            panic!("index out of bounds in a test");
        });

        tokio::time::timeout(Duration::from_secs(10), runner.wake.notified())
            .await
            .expect("the dispatcher is woken after the panic");
        let end = tokio::time::timeout(Duration::from_secs(10), viewer.recv())
            .await
            .expect("viewers are told")
            .unwrap();
        assert!(matches!(end, HubEvent::End(RunStatus::Failed)));
        let run = db::runs::get(pool, "r1").await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.error_type, Some(ErrorType::InfrastructureError));
        let message = run.error_message.unwrap();
        assert!(
            message.contains("index out of bounds in a test"),
            "{message}"
        );
    }
}
