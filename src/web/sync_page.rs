//! The Sync page: where the pipelines come from (repository, branch, active
//! commit), the last sync's result, Sync and Test-connection buttons, and the
//! sync log. Without git sync configured it says how to configure it.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::views::fmt_time;
use super::{AppError, AppState, is_htmx};
use crate::db::{self, gitsync::SyncLogEntry};
use crate::gitsync::host_keys::HostKeyPolicy;
use crate::gitsync::{AutoSync, AutoSyncChange, SyncOutcome, SyncStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sync", get(page).post(sync_now))
        .route("/fragments/sync", get(fragment))
        .route("/fragments/sync/log", get(log_fragment))
        .route("/sync/test", post(test_connection))
        .route("/sync/settings", post(save_settings))
        .route("/sync/host-key/reset", post(reset_host_key))
}

/// A log entry as the table shows it.
struct LogRow {
    when: String,
    trigger: String,
    success: bool,
    from_to: String,
    added: String,
    changed: String,
    removed: String,
    duration: String,
    error: String,
}

fn short(sha: Option<&str>) -> String {
    sha.map(|s| s.chars().take(10).collect())
        .unwrap_or_else(|| "—".into())
}

impl LogRow {
    fn new(e: &SyncLogEntry) -> Self {
        let from_to = if e.old_commit == e.new_commit {
            short(e.new_commit.as_deref())
        } else {
            format!(
                "{} → {}",
                short(e.old_commit.as_deref()),
                short(e.new_commit.as_deref())
            )
        };
        Self {
            when: fmt_time(&e.started_at),
            trigger: e.trigger.clone(),
            success: e.success,
            from_to,
            added: e.added.0.join(", "),
            changed: e.changed.0.join(", "),
            removed: e.removed.0.join(", "),
            duration: format!("{:.1} s", e.duration_ms as f64 / 1000.0),
            error: e.error.clone().unwrap_or_default(),
        }
    }
}

/// What the page and its fragment show.
struct SyncView {
    configured: bool,
    pipelines_dir: String,
    status: SyncStatus,
    commit_time: String,
    last_sync_at: String,
    logs: Vec<LogRow>,
    /// (pipeline, state, detail) of each dependency warm-up.
    preheat: Vec<(String, String, String)>,
    /// Auto-sync as in force.
    auto: AutoSync,
    /// The SSH host key check: (host, "known_hosts" or "pinned", fingerprints expected).
    host_key: Option<(String, &'static str, Vec<String>)>,
    /// The result of the button just pressed, if any.
    notice: String,
    notice_ok: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/sync.html")]
struct SyncPage {
    view: SyncView,
    panel: super::sync_repo_page::RepoPanel,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/sync_status.html")]
struct SyncFragment {
    view: SyncView,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/sync_log.html")]
struct SyncLogFragment {
    view: SyncView,
}

/// What a button of a repository that is gone answers (e.g. a page opened before a removal).
const NOT_CONFIGURED: &str =
    "No repository is configured (any more): fill in the repository below, or set GIT_REPO_URL.";

/// Log entries the page shows.
const PAGE_LOG_ENTRIES: i64 = 50;

async fn view(state: &AppState, notice: String, notice_ok: bool) -> Result<SyncView, AppError> {
    let status = state.gitsync().map(|s| s.status()).unwrap_or_default();
    let logs = db::gitsync::logs(&state.pool, PAGE_LOG_ENTRIES).await?;
    Ok(SyncView {
        configured: state.gitsync().is_some(),
        pipelines_dir: state.config.pipelines_dir.display().to_string(),
        commit_time: status
            .commit_time
            .as_ref()
            .map(fmt_time)
            .unwrap_or_default(),
        last_sync_at: status
            .last_sync_at
            .as_ref()
            .map(fmt_time)
            .unwrap_or_default(),
        auto: state
            .gitsync()
            .map(|s| s.auto_sync_settings())
            .unwrap_or_default(),
        host_key: host_key_panel(state).await,
        status,
        logs: logs.iter().map(LogRow::new).collect(),
        preheat: state
            .gitsync()
            .map(|s| s.preheat_states())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, w)| {
                let detail = match (&w.error, w.seconds) {
                    (Some(e), _) => e.clone(),
                    (None, Some(s)) => format!("{s:.1} s, {}", fmt_time(&w.updated_at)),
                    (None, None) => fmt_time(&w.updated_at),
                };
                (name, w.state.to_string(), detail)
            })
            .collect(),
        notice,
        notice_ok,
    })
}

/// The SSH host key panel's facts (no connection is made for the page).
async fn host_key_panel(state: &AppState) -> Option<(String, &'static str, Vec<String>)> {
    let sync = state.gitsync()?;
    let host = sync.spec().ssh_host()?;
    let (mode, keys) = match sync.host_key_policy().await.ok()? {
        HostKeyPolicy::Known(keys) => ("known_hosts", keys),
        HostKeyPolicy::Pinned(pin) => ("pinned", pin.into_iter().collect()),
    };
    let shown = keys
        .iter()
        .map(|k| format!("{} {}", k.key_type, k.fingerprint()))
        .collect();
    Some((host, mode, shown))
}

/// The settings form: `auto_sync_enabled` (a checkbox) and `auto_sync_interval`.
#[derive(Deserialize)]
struct SettingsForm {
    auto_sync_enabled: Option<String>,
    auto_sync_interval: Option<String>,
}

async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SettingsForm>,
) -> Result<Response, AppError> {
    let sync = configured(&state)?;
    let interval = match form
        .auto_sync_interval
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            AppError::BadRequest(format!(
                "the interval must be a number of seconds, not `{}`",
                crate::pipelines::fields::shown(v)
            ))
        })?),
    };
    let current = sync.auto_sync_settings();
    let change = AutoSyncChange {
        auto_sync_enabled: (!current.enabled_from_env).then(|| form.auto_sync_enabled.is_some()),
        auto_sync_interval: interval.filter(|_| !current.interval_from_env),
    };
    let (notice, ok) = match sync.change_auto_sync(change).await {
        Ok(_) => ("Settings saved; in force now.".to_string(), true),
        Err(e) => (e.to_string(), false),
    };
    respond(&state, &headers, notice, ok).await
}

#[derive(Deserialize)]
struct ResetForm {
    confirm_text: String,
}

/// Resets the pinned host key when the repository URL is typed exactly.
async fn reset_host_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Response, AppError> {
    let sync = configured(&state)?;
    let (notice, ok) = if form.confirm_text.trim() != sync.spec().shown_url {
        (
            "Type the repository URL exactly as shown to reset the host key.".to_string(),
            false,
        )
    } else {
        match sync.reset_host_key().await {
            Ok((old, new)) => (
                format!(
                    "Host key reset: {} → {}.",
                    old.unwrap_or_else(|| "none".into()),
                    new.unwrap_or_else(|| "pinned at the next sync".into())
                ),
                true,
            ),
            Err(e) => (e.to_string(), false),
        }
    };
    respond(&state, &headers, notice, ok).await
}

fn configured(state: &AppState) -> Result<std::sync::Arc<crate::gitsync::GitSync>, AppError> {
    state
        .gitsync()
        .ok_or_else(|| AppError::BadRequest(NOT_CONFIGURED.into()))
}

/// The fragment with `notice` under htmx; a redirect back to the page otherwise.
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    notice: String,
    ok: bool,
) -> Result<Response, AppError> {
    if !is_htmx(headers) {
        return Ok(Redirect::to("/sync").into_response());
    }
    Ok(SyncFragment {
        view: view(state, notice, ok).await?,
    }
    .into_response())
}

/// The page with `panel` (a repository form's result, without htmx).
pub(super) async fn full_page(
    state: &AppState,
    panel: super::sync_repo_page::RepoPanel,
) -> Result<Response, AppError> {
    Ok(SyncPage {
        view: view(state, String::new(), true).await?,
        panel,
    }
    .into_response())
}

async fn page(State(state): State<AppState>) -> Result<SyncPage, AppError> {
    Ok(SyncPage {
        view: view(&state, String::new(), true).await?,
        panel: super::sync_repo_page::RepoPanel::load(&state, String::new(), true).await,
    })
}

async fn fragment(State(state): State<AppState>) -> Result<SyncFragment, AppError> {
    Ok(SyncFragment {
        view: view(&state, String::new(), true).await?,
    })
}

async fn log_fragment(State(state): State<AppState>) -> Result<SyncLogFragment, AppError> {
    Ok(SyncLogFragment {
        view: view(&state, String::new(), true).await?,
    })
}

/// The Sync button: syncs (the response waits for it), then shows the result.
async fn sync_now(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(sync) = state.gitsync() else {
        return respond(&state, &headers, NOT_CONFIGURED.into(), false).await;
    };
    let wait = super::api::sync_wait(&state);
    let (notice, ok) = match sync.sync_detached("manual", wait).await {
        None => (
            "The sync takes a while: it continues in the background.".to_string(),
            true,
        ),
        Some(SyncOutcome::AlreadyRunning) => ("A sync is already running.".to_string(), true),
        Some(SyncOutcome::Replaced) => (
            "The repository configuration changed meanwhile; sync again.".to_string(),
            false,
        ),
        Some(SyncOutcome::Done(e)) if e.success && e.old_commit == e.new_commit => {
            ("Already up to date.".to_string(), true)
        }
        Some(SyncOutcome::Done(e)) if e.success => {
            (format!("Synced {}.", short(e.new_commit.as_deref())), true)
        }
        Some(SyncOutcome::Done(e)) => (e.error.clone().unwrap_or_default(), false),
    };
    if !is_htmx(&headers) {
        return Ok(Redirect::to("/sync").into_response());
    }
    Ok(SyncFragment {
        view: view(&state, notice, ok).await?,
    }
    .into_response())
}

/// The Test connection button (`git ls-remote`).
async fn test_connection(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(sync) = state.gitsync() else {
        return respond(&state, &headers, NOT_CONFIGURED.into(), false).await;
    };
    let branch = sync.spec().branch.clone();
    let (notice, ok) = match sync.test_connection().await {
        Ok(b) if b.contains(&branch) => (format!("Connected; branch `{branch}` found."), true),
        Ok(_) => (
            format!("Connected, but the repository has no branch `{branch}`."),
            false,
        ),
        Err(e) => (e.to_string(), false),
    };
    if !is_htmx(&headers) {
        return Ok(Redirect::to("/sync").into_response());
    }
    Ok(SyncFragment {
        view: view(&state, notice, ok).await?,
    }
    .into_response())
}
