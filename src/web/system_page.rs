//! The System page (admins): the version, the runner image, the engine, the
//! disk, the pipelines found, and the effective configuration with every
//! secret redacted (`config::shown`).

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::views::fmt_bytes;
use super::{AppError, AppState};

pub fn router() -> Router<AppState> {
    Router::new().route("/system", get(page))
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/system.html")]
struct Page {
    version: &'static str,
    /// What the release check found, in words.
    release: String,
    image: String,
    engine: String,
    engine_ok: bool,
    /// (what, directory, free space or the error).
    disks: Vec<(&'static str, String, String)>,
    valid: usize,
    invalid: usize,
    settings: Vec<(&'static str, String)>,
}

fn release_text(state: &AppState) -> String {
    let check = &state.release_check;
    if !check.is_enabled() {
        return "not checked (VERSION_CHECK=false or no VERSION_CHECK_URL)".into();
    }
    let info = check.current();
    let when = info
        .last_checked
        .map(|t| format!(" (checked {})", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    match (&info.check_error, &info.latest_version) {
        (Some(error), _) => format!("the check failed: {error}{when}"),
        (None, Some(latest)) if info.update_available => {
            format!("{latest} is available — this is {}{when}", info.version)
        }
        (None, Some(latest)) => format!("{latest}, this version is current{when}"),
        (None, None) => "not checked yet".into(),
    }
}

async fn page(State(state): State<AppState>) -> Result<Page, AppError> {
    let engine = &state.runner.deps().engine;
    let (engine_text, engine_ok) = match (engine.down_reason(), engine.image_problem()) {
        (Some(reason), _) => (format!("unreachable: {reason}"), false),
        (None, Some(problem)) => (problem, false),
        (None, None) => ("reachable, runner image present".to_string(), true),
    };
    let c = &state.config;
    let disk = |dir: &std::path::Path| match crate::readiness::free_bytes(dir) {
        Ok(free) => format!("{} free", fmt_bytes(free)),
        Err(e) => format!("cannot be read: {e}"),
    };
    let disks = vec![
        ("Data", c.data_dir.display().to_string(), disk(&c.data_dir)),
        ("Logs", c.logs_dir.display().to_string(), disk(&c.logs_dir)),
        (
            "Pipelines",
            c.pipelines_dir.display().to_string(),
            disk(&c.pipelines_dir),
        ),
    ];
    let snapshot = state.registry.snapshot();
    let valid = snapshot.pipelines.values().filter(|p| p.is_valid()).count();
    Ok(Page {
        version: crate::release_check::current_version(),
        release: release_text(&state),
        image: image_in_use(&state).await,
        engine: engine_text,
        engine_ok,
        disks,
        valid,
        invalid: snapshot.pipelines.len() - valid,
        settings: crate::config::shown::effective(c),
    })
}

/// The image the next run would use (`WORKER_BASE_IMAGE`, else the default or
/// the locally built runner image, whichever the engine has).
/// A page never waits on an engine that accepts connections but does not answer.
pub(super) async fn image_in_use(state: &AppState) -> String {
    let deps = state.runner.deps();
    if let Some(image) = &deps.config.worker_base_image {
        return image.clone();
    }
    let choice =
        crate::runner::engine::choose_image(&deps.docker, deps.config.worker_base_image.as_deref());
    tokio::time::timeout(ENGINE_ANSWER_WAIT, choice)
        .await
        .unwrap_or_else(|_| {
            format!(
                "unknown: the Docker engine did not answer within {} s",
                ENGINE_ANSWER_WAIT.as_secs()
            )
        })
}

/// How long a page waits for the engine before it says it did not answer.
const ENGINE_ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
