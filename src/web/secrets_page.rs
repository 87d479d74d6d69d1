//! The Secrets page: stored secrets (shown only as set) and parameters (shown),
//! which pipelines list each, keys pipelines list that are not defined, forms
//! to add, change and delete, and one that encrypts a value for a pipeline's
//! `encrypted_env`. Under htmx every form answers with the panel (status 200,
//! errors inside it); without htmx with the whole page (a refusal keeps its
//! status). A typed value is never shown again.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::page_query::PageQuery as Query;
use super::views::fmt_time;
use super::{AppError, AppState, is_htmx, secret_store};
use crate::db;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/secrets", get(page).post(create))
        .route("/fragments/secrets", get(fragment))
        // Hyphens cannot be in a key, so this path never names a secret.
        .route("/secrets/encrypt-for-pipeline", post(encrypt))
        .route("/secrets/{key}/change", post(change))
        .route("/secrets/{key}/delete", post(delete))
}

pub struct SecretRow {
    pub key: String,
    pub is_parameter: bool,
    /// A parameter's value; empty for a secret (never shown).
    pub value: String,
    pub pipelines: Vec<String>,
    pub updated: String,
    pub delete_confirm: String,
    /// A secret that no key of ENCRYPTION_KEY(S) opens (the key changed).
    pub unreadable: bool,
}

/// The panel the page and every form answer with.
#[derive(Default)]
pub struct SecretsPanel {
    pub rows: Vec<SecretRow>,
    /// Keys pipelines list that are not defined, with those pipelines.
    pub missing: Vec<(String, Vec<String>)>,
    pub notice: String,
    pub notice_ok: bool,
    /// The new-secret form's key (typed, or from `?key=`), never its value.
    pub typed_key: String,
    pub typed_parameter: bool,
    /// The row whose change form stays open (after it was refused).
    pub open_key: String,
    /// `(name, token)` just made by the encrypt form.
    pub encrypted: Option<(String, String)>,
}

impl SecretsPanel {
    async fn load(state: &AppState) -> Result<Self, AppError> {
        let mut used = secret_store::listed_by(state);
        let stored = db::secrets::list(&state.pool).await?;
        let rows = stored
            .into_iter()
            .map(|s| {
                let pipelines: Vec<String> = used
                    .remove(&s.key)
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let delete_confirm = if pipelines.is_empty() {
                    format!("Delete {}?", s.key)
                } else {
                    format!(
                        "Delete {}? It is listed by {}: their runs fail until it is defined again.",
                        s.key,
                        pipelines.join(", ")
                    )
                };
                let unreadable = !s.is_parameter && state.cipher.decrypt(&s.value).is_err();
                SecretRow {
                    unreadable,
                    value: if s.is_parameter {
                        s.value
                    } else {
                        String::new()
                    },
                    key: s.key,
                    is_parameter: s.is_parameter,
                    pipelines,
                    updated: fmt_time(&s.updated_at),
                    delete_confirm,
                }
            })
            .collect();
        let missing = used
            .into_iter()
            .map(|(k, p)| (k, p.into_iter().collect()))
            .collect();
        Ok(Self {
            rows,
            missing,
            ..Self::default()
        })
    }

    pub fn unreadable(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|r| r.unreadable)
            .map(|r| r.key.as_str())
            .collect()
    }

    fn said(mut self, notice: String, ok: bool) -> Self {
        self.notice = notice;
        self.notice_ok = ok;
        self
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/secrets.html")]
struct SecretsPage {
    panel: SecretsPanel,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/secrets_panel.html")]
struct PanelFragment {
    panel: SecretsPanel,
}

/// The panel under htmx (always 200, so it is shown); the page otherwise, with
/// `status` (a refusal's).
fn respond(headers: &HeaderMap, panel: SecretsPanel, status: StatusCode) -> Response {
    if is_htmx(headers) {
        PanelFragment { panel }.into_response()
    } else {
        (status, SecretsPage { panel }).into_response()
    }
}

async fn page(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<SecretsPage, AppError> {
    let mut panel = SecretsPanel::load(&state).await?;
    // "Define" links of missing keys open the form with the key filled in.
    if let Some(key) = query.get("key") {
        panel.typed_key = key.chars().take(256).collect();
    }
    Ok(SecretsPage { panel })
}

async fn fragment(State(state): State<AppState>) -> Result<PanelFragment, AppError> {
    Ok(PanelFragment {
        panel: SecretsPanel::load(&state).await?,
    })
}

/// The value from the one-line (password) field or the multi-line one (whose
/// browser line ends, CRLF, become LF: a key file stays as it was).
fn typed_value(form: &HashMap<String, String>) -> Result<String, AppError> {
    let line = form.get("value").map(String::as_str).unwrap_or_default();
    let multi = form
        .get("value_multiline")
        .map(|v| v.replace("\r\n", "\n"))
        .unwrap_or_default();
    match (line.is_empty(), multi.is_empty()) {
        (false, false) => Err(AppError::BadRequest(
            "give the value in one field only (one line or multi-line)".into(),
        )),
        (true, true) => Err(AppError::BadRequest("the value is empty".into())),
        (false, true) => Ok(line.to_string()),
        (true, false) => Ok(multi),
    }
}

fn form_is_blank(form: &HashMap<String, String>) -> bool {
    ["value", "value_multiline"]
        .iter()
        .all(|f| form.get(*f).is_none_or(|v| v.is_empty()))
}

/// The panel after a form: `done` says what happened, or why nothing was.
async fn after(
    state: &AppState,
    headers: &HeaderMap,
    done: Result<String, AppError>,
    keep: impl FnOnce(&mut SecretsPanel),
) -> Result<Response, AppError> {
    let panel = SecretsPanel::load(state).await?;
    Ok(match done {
        Ok(notice) => respond(headers, panel.said(notice, true), StatusCode::OK),
        Err(e) => {
            let status = e.status();
            let mut panel = panel.said(format!("Nothing was saved: {}", e.message()), false);
            keep(&mut panel);
            let mut r = respond(headers, panel, status);
            // Under htmx the panel answers 200; the audit log keeps the refusal.
            r.extensions_mut()
                .insert(super::audit_trail::AuditStatus(status));
            r
        }
    })
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let key = form.get("key").map(|k| k.trim()).unwrap_or_default();
    let is_parameter = form.contains_key("is_parameter");
    let done = async {
        let value = typed_value(&form)?;
        secret_store::create(&state, key, &value, is_parameter).await?;
        let kind = if is_parameter { "Parameter" } else { "Secret" };
        Ok(format!("{kind} {key} saved."))
    }
    .await;
    let saved = done.is_ok();
    let mut r = after(&state, &headers, done, |p| {
        p.typed_key = key.chars().take(256).collect();
        p.typed_parameter = is_parameter;
    })
    .await?;
    if saved {
        let kind = if is_parameter { "parameter" } else { "secret" };
        let note = format!("{kind} {}", crate::pipelines::fields::shown(key));
        r.extensions_mut()
            .insert(super::audit_trail::AuditNote(note));
    }
    Ok(r)
}

async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let kind = match form.get("kind").map(String::as_str) {
        Some("parameter") => Some(true),
        Some("secret") => Some(false),
        _ => None,
    };
    let done = async {
        // Both fields empty: only the kind changes (see `secret_store::change`).
        let value = match typed_value(&form) {
            Ok(v) => Some(v),
            Err(_) if form_is_blank(&form) => None,
            Err(e) => return Err(e),
        };
        let is_parameter = secret_store::change(&state, &key, value.as_deref(), kind).await?;
        let kind = if is_parameter { "parameter" } else { "secret" };
        Ok(format!("{key} changed (now a {kind})."))
    }
    .await;
    after(&state, &headers, done, |p| p.open_key = key.clone()).await
}

async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, AppError> {
    let done = secret_store::delete(&state, &key).await.map(|still| {
        if still.is_empty() {
            format!("{key} deleted.")
        } else {
            format!(
                "{key} deleted; it is {}.",
                secret_store::still_listed_warning(&key, &still)
            )
        }
    });
    after(&state, &headers, done, |_| {}).await
}

async fn encrypt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let name = form.get("name").map(|n| n.trim()).unwrap_or_default();
    let made = async {
        let value = typed_value(&form)?;
        secret_store::check(if name.is_empty() { "VALUE" } else { name }, &value)?;
        Ok::<_, AppError>(state.cipher.encrypt(&value))
    }
    .await;
    let panel = SecretsPanel::load(&state).await?;
    Ok(match made {
        Ok(token) => {
            let mut panel = panel.said(
                "Encrypted. Paste it into pipeline.json; nothing was stored here.".into(),
                true,
            );
            let name = if name.is_empty() { "NAME" } else { name };
            panel.encrypted = Some((name.to_string(), token));
            respond(&headers, panel, StatusCode::OK)
        }
        Err(e) => {
            let status = e.status();
            let panel = panel.said(format!("Not encrypted: {}", e.message()), false);
            respond(&headers, panel, status)
        }
    })
}
