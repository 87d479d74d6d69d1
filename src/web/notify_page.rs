//! Settings → Notifications (admins): the e-mail, webhook and Teams settings
//! with where each value comes from, the events told, test buttons, and the
//! log of notifications with their delivery results (also a fragment that
//! refreshes itself). Every form works without htmx.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Extension, Form, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::identity::Identity;
use super::notify_form::{FormView, SettingsForm, changes, form_view, keep_typed};
use super::page_query::PageQuery as Query;
use super::views::fmt_time;
use super::{AppError, AppState, is_htmx};
use crate::db::notifications::Delivery;

/// Messages a page of the log shows.
const LOG_PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/notifications", get(page).post(save))
        .route("/settings/notifications/test", post(test))
        .route("/fragments/notifications", get(log_fragment))
}

pub struct DeliveryRow {
    pub d: Delivery,
    pub created: String,
    pub next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/notifications.html")]
struct Page {
    notice: String,
    notice_ok: bool,
    f: FormView,
    log: LogView,
}

#[derive(Template, WebTemplate)]
#[template(path = "fragments/notify_log.html")]
struct LogFragment {
    log: LogView,
}

pub struct LogView {
    rows: Vec<DeliveryRow>,
    /// `?before=` of the next older page, if there is one.
    older: Option<i64>,
    before: Option<i64>,
}

#[derive(Deserialize)]
struct LogQuery {
    before: Option<i64>,
}

async fn log_view(state: &AppState, before: Option<i64>) -> Result<LogView, AppError> {
    let rows = crate::db::notifications::list(&state.pool, before, LOG_PAGE).await?;
    let older = (rows.len() as i64 == LOG_PAGE)
        .then(|| rows.last().map(|d| d.id))
        .flatten();
    Ok(LogView {
        rows: rows
            .into_iter()
            .map(|d| DeliveryRow {
                created: fmt_time(&d.created_at),
                next: d.next_attempt_at.as_ref().map(fmt_time).unwrap_or_default(),
                d,
            })
            .collect(),
        older,
        before,
    })
}

async fn render(
    state: &AppState,
    notice: String,
    notice_ok: bool,
    before: Option<i64>,
) -> Result<Response, AppError> {
    render_with(state, notice, notice_ok, before, None).await
}

/// The page; after a refused save, with what was typed (`typed`) kept in the form.
async fn render_with(
    state: &AppState,
    notice: String,
    notice_ok: bool,
    before: Option<i64>,
    typed: Option<&SettingsForm>,
) -> Result<Response, AppError> {
    let e = state.runner.deps().notifier.settings().await?;
    let mut f = form_view(&e, state);
    if let Some(t) = typed {
        keep_typed(&mut f, t);
    }
    Ok(Page {
        notice,
        notice_ok,
        f,
        log: log_view(state, before).await?,
    }
    .into_response())
}

async fn page(
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<Response, AppError> {
    render(&state, String::new(), true, q.before).await
}

async fn log_fragment(
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Result<Response, AppError> {
    Ok(LogFragment {
        log: log_view(&state, q.before).await?,
    }
    .into_response())
}

async fn save(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, AppError> {
    let changes = changes(form.clone());
    match crate::notify::settings::change(&state.pool, &state.cipher, &changes, &who.name).await? {
        Ok(()) => {
            let saved = "Saved; in force for the next notification.".to_string();
            render(&state, saved, true, None).await
        }
        Err(why) => {
            let refused = format!(
                "Not saved: {why}. The form keeps what you typed (passwords and URLs must be typed again)."
            );
            render_with(&state, refused, false, None, Some(&form)).await
        }
    }
}

#[derive(Deserialize)]
struct TestForm {
    channel: String,
}

#[derive(Template, WebTemplate)]
#[template(
    source = r#"<p class="banner {% if ok %}ok{% else %}error{% endif %}" role="status">{{ text }}</p>"#,
    ext = "html"
)]
struct TestResult {
    ok: bool,
    text: String,
}

/// Sends a test message now; under htmx only the result line comes back.
async fn test(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    headers: HeaderMap,
    Form(form): Form<TestForm>,
) -> Result<Response, AppError> {
    let result = state.runner.deps().notifier.send_test(&form.channel).await;
    let what = match form.channel.as_str() {
        "email" => "e-mail",
        "teams" => "Teams message",
        _ => "webhook",
    };
    let (ok, text) = match result {
        Ok(m) => (true, format!("Test {what}: {m} — accepted.")),
        Err(e) => (false, format!("Test {what} failed: {}", e.message)),
    };
    // The whole page is the admins'; a WRITE caller gets the result line alone.
    if is_htmx(&headers) || who.role != crate::auth::Role::Admin {
        return Ok(TestResult { ok, text }.into_response());
    }
    render(&state, text, ok, None).await
}
