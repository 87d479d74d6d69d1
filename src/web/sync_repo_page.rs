//! The Sync page's repository panel: the form that stores the repository and
//! its credentials (shown only as set), the connection test of what is typed,
//! the deploy key generator and its public key, and removing what is stored.
//! Errors come back inside the panel (status 200), so htmx always shows them.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::api::{first_sync_message, store_error, sync_wait};
use super::{AppError, AppState, is_htmx};
use crate::gitsync::remote::deploy_keys_url;
use crate::gitsync::repo_config::{RepoConfigChange, RepoConfigView};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sync/repo", post(save))
        .route("/sync/repo/test", post(test))
        .route("/sync/repo/deploy-key", post(generate_deploy_key))
        .route("/sync/repo/remove", post(remove))
}

/// The panel as the page and its fragment show it.
pub struct RepoPanel {
    pub repo: RepoConfigView,
    pub fixed_url: bool,
    pub fixed_branch: bool,
    pub fixed_subdir: bool,
    pub fixed_credentials: bool,
    pub fixed_webhook: bool,
    pub deploy_keys_url: Option<String>,
    /// The result of the button just pressed, if any.
    pub notice: String,
    pub notice_ok: bool,
}

impl RepoPanel {
    pub async fn load(state: &AppState, notice: String, notice_ok: bool) -> Self {
        let repo = state.deployment.view().await;
        let fixed = |name| repo.from_environment.contains(&name);
        Self {
            fixed_url: fixed("repo_url"),
            fixed_branch: fixed("branch"),
            fixed_subdir: fixed("pipelines_subdir"),
            fixed_credentials: fixed("credentials"),
            fixed_webhook: fixed("webhook_secret"),
            deploy_keys_url: repo.repo_url.as_deref().and_then(deploy_keys_url),
            repo,
            notice,
            notice_ok,
        }
    }

    /// Shows what was typed (never a credential) instead of what is stored, so
    /// a refused or tested form can be corrected.
    fn keep_typed(&mut self, form: &HashMap<String, String>) {
        let typed = |k: &str| form.get(k).map(|v| v.trim().to_string());
        let r = &mut self.repo;
        if !self.fixed_url {
            r.repo_url = typed("repo_url").or(r.repo_url.take());
        }
        if !self.fixed_branch {
            if let Some(b) = typed("branch") {
                r.branch = b;
            }
        }
        if !self.fixed_subdir {
            r.pipelines_subdir = typed("pipelines_subdir").or(r.pipelines_subdir.take());
        }
        if !self.fixed_credentials {
            r.github_app_id = typed("github_app_id").or(r.github_app_id.take());
            r.github_app_installation_id =
                typed("github_app_installation_id").or(r.github_app_installation_id.take());
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/sync_repo.html")]
struct RepoFragment {
    panel: RepoPanel,
}

/// The form's fields as a change (checkboxes: present = on).
fn change_of(form: &HashMap<String, String>) -> RepoConfigChange {
    let field = |k: &str| form.get(k).cloned();
    RepoConfigChange {
        repo_url: field("repo_url"),
        branch: field("branch"),
        pipelines_subdir: field("pipelines_subdir"),
        token: field("token"),
        deploy_key: field("deploy_key"),
        github_app_id: field("github_app_id"),
        github_app_installation_id: field("github_app_installation_id"),
        github_app_private_key: field("github_app_private_key"),
        webhook_secret: field("webhook_secret"),
        remove_credentials: form.contains_key("remove_credentials"),
        remove_webhook_secret: form.contains_key("remove_webhook_secret"),
    }
}

/// The panel with `notice` under htmx (and the status part told to refresh);
/// the whole page with it otherwise. `typed`: the form to show again as typed.
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    notice: String,
    ok: bool,
    typed: Option<&HashMap<String, String>>,
) -> Result<Response, AppError> {
    let mut panel = RepoPanel::load(state, notice, ok).await;
    if let Some(form) = typed {
        panel.keep_typed(form);
    }
    if !is_htmx(headers) {
        return super::sync_page::full_page(state, panel).await;
    }
    let mut response = RepoFragment { panel }.into_response();
    response
        .headers_mut()
        .insert("HX-Trigger", HeaderValue::from_static("sync-changed"));
    Ok(response)
}

fn refused(e: crate::gitsync::deployment::StoreError) -> String {
    let e = store_error(e);
    e.0.to_string()
}

async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let change = change_of(&form);
    let (notice, ok) = match state.deployment.store(&change).await {
        Err(e) => (format!("Nothing was saved: {}", refused(e)), false),
        Ok(()) => {
            let outcome = state
                .deployment
                .apply_detached(true, sync_wait(&state))
                .await;
            let (synced, message) = first_sync_message(outcome);
            (format!("Saved; {message}."), synced)
        }
    };
    let typed = (!ok).then_some(&form);
    respond(&state, &headers, notice, ok, typed).await
}

async fn test(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let (notice, ok) = match state.deployment.test_candidate(&change_of(&form)).await {
        Ok((branch, branches)) if branches.contains(&branch) => (
            format!(
                "Connected; branch `{branch}` found (the pipelines folder is checked at the first sync). Nothing was saved yet."
            ),
            true,
        ),
        Ok((branch, _)) => (
            format!("Connected, but the repository has no branch `{branch}`. Nothing was saved."),
            false,
        ),
        Err(e) => (format!("{} Nothing was saved.", refused(e)), false),
    };
    respond(&state, &headers, notice, ok, Some(&form)).await
}

async fn generate_deploy_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let mut change = change_of(&form);
    // The form's other credential fields are empty when a key is generated.
    change.token = None;
    change.deploy_key = None;
    let (notice, ok) = match state.deployment.store_new_deploy_key(&change).await {
        Err(e) => (format!("Nothing was saved: {}", refused(e)), false),
        Ok(_) => {
            let _ = state
                .deployment
                .apply_detached(false, sync_wait(&state))
                .await;
            (
                "Deploy key generated and stored. Add the public key below to the repository as a read-only deploy key, then press Sync now.".to_string(),
                true,
            )
        }
    };
    let typed = (!ok).then_some(&form);
    respond(&state, &headers, notice, ok, typed).await
}

async fn remove(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    let (notice, ok) = match state.deployment.remove_stored().await {
        Err(e) => (refused(e), false),
        Ok(removed) => {
            let _ = state
                .deployment
                .apply_detached(true, sync_wait(&state))
                .await;
            let configured = state.gitsync().is_some();
            let notice = match (removed, configured) {
                (false, _) => "Nothing was stored.",
                (true, true) => "Removed; the repository set in the environment stays in force.",
                (true, false) => "Removed; the pipelines come from PIPELINES_DIR again.",
            };
            (notice.to_string(), true)
        }
    };
    respond(&state, &headers, notice, ok, None).await
}
