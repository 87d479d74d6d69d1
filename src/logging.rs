//! Log output: the filter (`RUST_LOG`, `LOG_LEVEL`), text or JSON lines
//! (`LOG_FORMAT`), and the one summary line start-up writes once the pipelines
//! are known.

use crate::web::AppState;

/// Starts logging: `RUST_LOG` (else `LOG_LEVEL`, else info), text or JSON
/// (`LOG_FORMAT`), and never the Docker client's debug bodies.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| {
            EnvFilter::try_new(
                std::env::var("LOG_LEVEL")
                    .unwrap_or_else(|_| "info".into())
                    .to_lowercase(),
            )
        })
        .unwrap_or_else(|_| EnvFilter::new("info"));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{Layer, filter::filter_fn};
    // The Docker client's debug output holds whole request bodies, a run's
    // environment (its secrets) among them: dropped below info by a filter of its
    // own, which no directive of RUST_LOG / LOG_LEVEL can outrank.
    let no_engine_bodies = filter_fn(|meta| {
        !(meta.target().starts_with("bollard") && *meta.level() > tracing::Level::INFO)
    });
    let format = crate::config::operations::LogFormat::from_env();
    let layer: Box<dyn Layer<_> + Send + Sync> = match format {
        // One object per line; the request's or run's span fields (request_id,
        // run_id) are on every line inside it.
        Ok(crate::config::operations::LogFormat::Json) => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        _ => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
    };
    let layer = layer.with_filter(filter).with_filter(no_engine_bodies);
    let _ = tracing_subscriber::registry().with(layer).try_init();
    if let Err(problem) = format {
        tracing::warn!("{problem}; writing text logs");
    }
}

/// One line once the pipelines are discovered: what was found, which image, the
/// engine and the address, so an operator sees at a glance whether all is well.
pub async fn startup_summary(state: AppState) {
    let snapshot = state.registry.snapshot();
    let valid = snapshot.pipelines.values().filter(|p| p.is_valid()).count();
    let invalid = snapshot.pipelines.len() - valid;
    let engine = state.runner.deps().engine.down_reason();
    tracing::info!(
        pipelines_valid = valid,
        pipelines_invalid = invalid,
        image = state.config.worker_base_image.as_deref().unwrap_or("automatic"),
        engine = engine.as_deref().unwrap_or("reachable"),
        docker_host = %crate::runner::engine::describe_host(state.config.docker_host.as_deref()),
        url = %state.config.base_url,
        "ready: {valid} pipelines ({invalid} invalid) from {}",
        state.config.pipelines_dir.display()
    );
}
