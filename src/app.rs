//! Wiring: resolves the key, opens the database, discovers pipelines, repairs
//! state left by a previous process, then runs the dispatcher, the pipeline
//! watcher and the web server under one cancellation token.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::pipelines::PipelineRegistry;
use crate::runner::{Runner, RunnerDeps, container_spec, engine};
use crate::secrets::{KeySource, resolve_encryption_keys};
use crate::web::{self, AppState};

/// Entry point of `fastflow serve`.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    crate::logging::init();
    raise_open_file_limit();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(serve_until_signal(config));
    // A blocking task that cannot end (a git fetch stuck on a silent remote)
    // must not keep the process alive after shutdown.
    runtime.shutdown_timeout(Duration::from_secs(5));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core) and
/// rarely returns their memory: with the async workers, the blocking pool and the
/// SQLite connection threads, that is a large part of the server's resident memory
/// under load (docs/benchmarks.md). Two arenas, unless `MALLOC_ARENA_MAX` says.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Hands memory that glibc keeps after a burst (many slow clients of big lists)
/// back to the system, every 30 s; without this the resident size stays at the
/// burst's peak. A no-op where the allocator is not glibc's.
async fn trim_memory_periodically(shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks glibc's own heap structures, under its locks.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Every connection, log file and engine stream is a file descriptor: use the
/// hard limit the system allows rather than the (often 1024) soft default.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "could not raise the open-file limit");
        }
    }
}

/// Descriptors kept free for the database, log files and engine connections.
const RESERVED_DESCRIPTORS: u64 = 64;

/// Keeps `HTTP_MAX_CONNECTIONS` below the open-file limit, so connections alone can
/// never make the process fail to open a log file or accept (EMFILE).
fn fit_connections_to_open_file_limit(config: &mut Config) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let fits =
        usize::try_from(limit.saturating_sub(RESERVED_DESCRIPTORS).max(8)).unwrap_or(usize::MAX);
    if config.http.max_connections > fits {
        tracing::warn!(
            configured = config.http.max_connections,
            open_file_limit = limit,
            using = fits,
            "HTTP_MAX_CONNECTIONS is above what the open-file limit allows; lowered"
        );
        config.http.max_connections = fits;
    }
}

async fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    let app = start(config).await?;
    tracing::info!("Fast-Flow listening on http://{}", app.addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    app.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A started server; `stop` shuts it down.
pub struct RunningApp {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    /// Released when the app is dropped (or the process ends).
    _data_lock: Option<crate::data_lock::DataLock>,
}

impl RunningApp {
    /// Stops accepting work, lets in-flight responses and log writes finish, and
    /// returns within a few seconds. Running containers are left running (and
    /// re-attached at the next start) unless `STOP_RUNS_ON_SHUTDOWN` is set.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let executors = self.state.runner.deps().tasks.clone();
        executors.close();
        let drain = async {
            while self.tasks.join_next().await.is_some() {}
            executors.wait().await;
        };
        if tokio::time::timeout(Duration::from_secs(8), drain)
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within 8s; aborting them");
            self.tasks.abort_all();
        }
    }
}

/// Starts everything and returns once the server accepts connections.
pub async fn start(mut config: Config) -> anyhow::Result<RunningApp> {
    let started = Instant::now();
    config
        .prepare_dirs()
        .context("creating DATA_DIR, LOGS_DIR or UV_CACHE_DIR")?;
    let data_lock = match crate::data_lock::try_lock(&config.data_dir) {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => {
            tracing::warn!(
                "another Fast-Flow process holds {}: two servers on one DATA_DIR share its database and runs; `fastflow restore` refuses while one runs",
                crate::data_lock::lock_path(&config.data_dir).display()
            );
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot take the DATA_DIR lock");
            None
        }
    };
    let (keys, source) = resolve_encryption_keys(
        &config.encryption_keys,
        config.encryption_key.as_ref(),
        &config.data_dir,
        config.is_production(),
    )?;
    match &source {
        KeySource::Generated(path) => tracing::warn!(
            "ENCRYPTION_KEY not set: generated a new key into {} (mode 0600); back it up, or set ENCRYPTION_KEY",
            path.display()
        ),
        KeySource::ExistingFile(path) => {
            tracing::info!("using the encryption key from {}", path.display())
        }
        KeySource::Environment => {}
    }
    if let Some(path) = crate::secrets::unlisted_key_file(&config.data_dir, &keys) {
        tracing::warn!("{}", crate::secrets::unlisted_key_file_advice(&path));
    }
    let cipher = Arc::new(
        crate::secrets::Cipher::with_keys(&keys)
            .context("ENCRYPTION_KEY(S) are not Fernet keys")?,
    );
    fit_connections_to_open_file_limit(&mut config);
    // Configuration that cannot work is said at start, not discovered at the first run.
    for problem in crate::readiness::directory_problems(&config) {
        tracing::error!("{problem}");
    }
    let pool = crate::db::connect(&config.database_url).await?;
    let instance_id = crate::db::instance_id(&pool).await?;
    crate::db::sessions::migrate(&pool).await?;
    match crate::secrets::rotate_command::unreadable_secrets(&pool, &cipher).await {
        Ok(keys) if !keys.is_empty() => tracing::warn!(
            "stored secrets that no key of ENCRYPTION_KEY(S) opens (runs listing them fail): {}; add the key they were made with to ENCRYPTION_KEYS, or store them again",
            keys.join(", ")
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "checking the stored secrets against the keys"),
    }
    // Discovery runs once the server answers (see `discover`); until then requests
    // that need pipelines wait for it, and `/health` answers at once.
    let registry = Arc::new(PipelineRegistry::empty(
        &config.pipelines_dir,
        crate::pipelines::HostResources::local(),
    ));
    let docker = engine::connect(config.docker_host.as_deref())?;
    let worker_user =
        container_spec::prepare_worker_user(&config.uv_cache_dir).with_context(|| {
            format!(
                "making UV_CACHE_DIR {} writable for pipelines",
                config.uv_cache_dir.display()
            )
        })?;
    container_spec::install_runtime(&config)
        .with_context(|| format!("writing runtime files into {}", config.data_dir.display()))?;
    let config = Arc::new(config);
    let shutdown = CancellationToken::new();
    let notifier = crate::notify::Notifier::new(
        pool.clone(),
        config.clone(),
        cipher.clone(),
        registry.clone(),
    );
    let runner = Runner::new(RunnerDeps {
        notifier: notifier.clone(),
        config: config.clone(),
        pool: pool.clone(),
        docker,
        registry: registry.clone(),
        hubs: Default::default(),
        instance_id,
        worker_user,
        active: Default::default(),
        engine: Default::default(),
        shutdown: shutdown.clone(),
        tasks: Default::default(),
        preheat: Default::default(),
        cipher: cipher.clone(),
        create_resets: Default::default(),
    });
    // Read before the dispatcher runs: these are the previous process's runs.
    let stale = crate::db::runs::running(&pool).await?;
    let scheduler =
        crate::scheduler::Scheduler::new(runner.clone(), pool.clone(), registry.clone());
    let deployment = crate::gitsync::Deployment::new(
        config.clone(),
        pool.clone(),
        registry.clone(),
        runner.clone(),
        cipher.clone(),
        shutdown.clone(),
    )?;
    let listener = tokio::net::TcpListener::bind((config.host, config.port))
        .await
        .with_context(|| format!("binding {}:{} (set HOST/PORT)", config.host, config.port))?;
    let addr = listener.local_addr()?;
    // Port 0 (tests) is only known now; a BASE_URL set by hand is kept.
    let base = if config.port == 0 {
        format!("http://{addr}")
    } else {
        config.base_url.trim_end_matches('/').to_string()
    };
    // Links the app makes (invitations, OAuth callbacks) name the address it really has.
    let web_config = if config.port == 0 && config.base_url.ends_with(":0") {
        Arc::new(Config {
            base_url: base.clone(),
            ..(*config).clone()
        })
    } else {
        config.clone()
    };
    notifier.set_base_url(base.clone());
    let state = AppState {
        config: web_config,
        pool,
        registry: registry.clone(),
        runner: runner.clone(),
        shutdown: shutdown.clone(),
        started,
        sse_slots: Arc::new(tokio::sync::Semaphore::new(config.http.max_sse_streams)),
        scheduler: scheduler.clone(),
        webhook_limiter: Arc::new(web::api::webhooks::limiter(config.webhook_rate_limit)),
        deployment: deployment.clone(),
        cipher,
        login_limiter: Arc::new(web::api::webhooks::limiter(web::login_attempts_per_minute())),
        oauth_limiter: Arc::new(web::api::webhooks::limiter(config.auth.oauth_rate_limit)),
        token_limiter: Arc::new(web::api::webhooks::limiter(
            web::access_layer::TOKEN_ATTEMPTS_PER_MINUTE,
        )),
        release_check: crate::release_check::ReleaseCheck::new(&config),
    };
    let auth = &config.auth;
    let providers: Vec<&str> = auth.providers.iter().map(|p| p.id.as_str()).collect();
    tracing::info!(providers = ?providers, local_login = auth.local_login, "sign-in");
    for p in &auth.providers {
        let callback = crate::auth::oauth_flow::callback_url(&state.config.base_url, p.id);
        tracing::info!(
            provider = p.id.as_str(),
            "register this callback URL at {}: {callback}",
            p.label
        );
    }
    let no_admin = crate::db::users::count_admins(&state.pool)
        .await
        .unwrap_or(0)
        == 0;
    if no_admin && !auth.local_login && auth.initial_admin_email.is_none() {
        tracing::warn!(
            "no admin exists and no one can become one: local sign-in is off and INITIAL_ADMIN_EMAIL is unset; set INITIAL_ADMIN_EMAIL to your verified e-mail at the provider, or LOCAL_LOGIN_ENABLED=true"
        );
    }
    // The setup link makes a local admin: useless where local sign-in is off.
    if auth.local_login {
        match crate::auth::setup_link::issue_if_no_user(&state.pool).await {
            Ok(Some(link))
                if config.ops.log_format == crate::config::operations::LogFormat::Json =>
            {
                // JSON logs stay one object per line: the link is a field.
                tracing::warn!(
                    setup_url = %format!("{base}{link}"),
                    "no admin exists yet: open setup_url once, within 24 hours, to create the first admin"
                );
            }
            Ok(Some(link)) => {
                // Said on stdout too, like Jupyter's token link: it is the way in.
                println!(
                    "\n    No admin exists yet. To create the first admin, open (once, within 24 hours):\n    {base}{link}\n"
                );
                tracing::warn!("no user exists yet: the setup link was printed to standard output");
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "making the first-run setup link"),
        }
    }

    let mut tasks = JoinSet::new();
    // The repository or PIPELINES_DIR, switched at runtime when the Sync page
    // stores another repository configuration.
    tasks.spawn(deployment.start());
    // Runs and schedules name pipelines: they start once the first scan is in.
    let after_discovery = |work| after_discovery(registry.clone(), shutdown.clone(), work);
    tasks.spawn(after_discovery(Box::pin(runner.clone().recover(stale))));
    tasks.spawn(after_discovery(Box::pin(
        runner.clone().dispatch(shutdown.clone()),
    )));
    if config.scheduler_enabled {
        tasks.spawn(after_discovery(Box::pin(scheduler.run(shutdown.clone()))));
    } else {
        tracing::warn!("SCHEDULER_ENABLED=false: schedules do not fire in this process");
    }
    tasks.spawn(notifier.dispatch(shutdown.clone()));
    tasks.spawn(trim_memory_periodically(shutdown.clone()));
    tasks.spawn(web::sessions::delete_expired_hourly(
        state.pool.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(crate::retention::run_daily(
        state.pool.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(
        state
            .release_check
            .clone()
            .run_daily(config.cleanup_time, shutdown.clone()),
    );
    tasks.spawn(after_discovery(Box::pin(crate::logging::startup_summary(
        state.clone(),
    ))));
    let router = web::router(state.clone());
    tasks.spawn(web::server::serve(
        listener,
        router,
        config.http.clone(),
        shutdown.clone(),
    ));
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "started");
    Ok(RunningApp {
        addr,
        state,
        shutdown,
        tasks,
        _data_lock: data_lock,
    })
}

/// Runs `work` once the first scan is in (not at all if shutdown comes first).
async fn after_discovery(
    registry: Arc<PipelineRegistry>,
    shutdown: CancellationToken,
    work: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = registry.wait_loaded() => {}
    }
    work.await
}
