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
use super::page_query::PageQuery as Query;
use super::views::fmt_time;
use super::{AppError, AppState, is_htmx};
use crate::config::notify::SmtpTls;
use crate::db::notifications::Delivery;
use crate::notify::settings::Effective;
use crate::pipelines::notify_spec::{NotifyEvent, shown_url};

/// Messages a page of the log shows.
const LOG_PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/notifications", get(page).post(save))
        .route("/settings/notifications/test", post(test))
        .route("/fragments/notifications", get(log_fragment))
}

/// One field as the form shows it: the stored value (empty when the
/// environment's is in force) and the environment's, as a placeholder.
pub struct FieldView {
    pub value: String,
    pub from_env: String,
    pub overridden: bool,
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

pub struct FormView {
    email_enabled: (String, bool),
    teams_enabled: (String, bool),
    text: Vec<(&'static str, &'static str, FieldView)>,
    smtp_tls: String,
    smtp_tls_env: String,
    tls_modes: Vec<&'static str>,
    secrets: Vec<(&'static str, &'static str, String, bool)>,
    webhook_format: String,
    events: Vec<(&'static str, bool)>,
    events_from_env: bool,
    env_events: String,
    email_problem: String,
    problems: Vec<String>,
}

fn form_view(e: &Effective, state: &AppState) -> FormView {
    let env = &state.config.notify;
    let field = |name: &str, value: String, from_env: String| FieldView {
        value: if e.is_overridden(name) {
            value
        } else {
            String::new()
        },
        from_env,
        overridden: e.is_overridden(name),
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let switch = |name: &str, on: bool| {
        let v = if !e.is_overridden(name) {
            String::new()
        } else if on {
            "true".into()
        } else {
            "false".into()
        };
        (v, on)
    };
    let secret = |v: &Option<crate::secrets::SecretString>, url: bool| match v {
        Some(s) if url => format!("set: {}", shown_url(s.expose())),
        Some(_) => "set (hidden)".into(),
        None => "not set".into(),
    };
    FormView {
        email_enabled: switch("email_enabled", e.email_enabled),
        teams_enabled: switch("teams_enabled", e.teams_enabled),
        text: vec![
            (
                "smtp_host",
                "SMTP server",
                field("smtp_host", opt(&e.smtp_host), opt(&env.smtp_host)),
            ),
            (
                "smtp_port",
                "Port",
                field(
                    "smtp_port",
                    e.smtp_port.to_string(),
                    env.smtp_port.to_string(),
                ),
            ),
            (
                "smtp_user",
                "User",
                field("smtp_user", opt(&e.smtp_user), opt(&env.smtp_user)),
            ),
            (
                "smtp_from",
                "Sender (From)",
                field("smtp_from", opt(&e.smtp_from), opt(&env.smtp_from)),
            ),
            (
                "email_recipients",
                "Recipients",
                field(
                    "email_recipients",
                    e.email_recipients.join(", "),
                    env.email_recipients.join(", "),
                ),
            ),
        ],
        smtp_tls: if e.is_overridden("smtp_tls") {
            e.smtp_tls.as_str().into()
        } else {
            String::new()
        },
        smtp_tls_env: env
            .smtp_tls
            .unwrap_or_else(|| SmtpTls::for_port(e.smtp_port))
            .as_str()
            .into(),
        tls_modes: SmtpTls::ALL.iter().map(|t| t.as_str()).collect(),
        secrets: vec![
            (
                "smtp_password",
                "SMTP password",
                secret(&e.smtp_password, false),
                e.is_overridden("smtp_password"),
            ),
            (
                "webhook_url",
                "Webhook URL",
                secret(&e.webhook_url, true),
                e.is_overridden("webhook_url"),
            ),
            (
                "teams_webhook_url",
                "Teams webhook URL",
                secret(&e.teams_webhook_url, true),
                e.is_overridden("teams_webhook_url"),
            ),
        ],
        webhook_format: e
            .webhook_format
            .map(|f| f.as_str().to_string())
            .unwrap_or_default(),
        events: NotifyEvent::ALL
            .iter()
            .map(|ev| (ev.as_str(), e.notify_on.contains(ev)))
            .collect(),
        events_from_env: !e.is_overridden("notify_on"),
        env_events: env
            .notify_on
            .iter()
            .map(|x| x.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        email_problem: e.email_unready().unwrap_or_default(),
        problems: e.problems.clone(),
    }
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
    let e = state.runner.deps().notifier.settings().await?;
    Ok(Page {
        notice,
        notice_ok,
        f: form_view(&e, state),
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

/// The whole form: empty fields and "environment" choices give a setting back
/// to the environment; an empty credential field keeps the stored one.
#[derive(Deserialize, Default)]
struct SettingsForm {
    email_enabled: Option<String>,
    smtp_host: Option<String>,
    smtp_port: Option<String>,
    smtp_user: Option<String>,
    smtp_password: Option<String>,
    clear_smtp_password: Option<String>,
    smtp_from: Option<String>,
    smtp_tls: Option<String>,
    email_recipients: Option<String>,
    teams_enabled: Option<String>,
    teams_webhook_url: Option<String>,
    clear_teams_webhook_url: Option<String>,
    webhook_url: Option<String>,
    clear_webhook_url: Option<String>,
    webhook_format: Option<String>,
    notify_on_env: Option<String>,
    on_failure: Option<String>,
    on_timeout: Option<String>,
    on_oom: Option<String>,
    on_recovery: Option<String>,
    on_success: Option<String>,
}

fn changes(f: SettingsForm) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = [
        ("email_enabled", f.email_enabled),
        ("smtp_host", f.smtp_host),
        ("smtp_port", f.smtp_port),
        ("smtp_user", f.smtp_user),
        ("smtp_from", f.smtp_from),
        ("smtp_tls", f.smtp_tls),
        ("email_recipients", f.email_recipients),
        ("teams_enabled", f.teams_enabled),
        ("webhook_format", f.webhook_format),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.filter(|v| !v.trim().is_empty())))
    .collect();
    for (field, value, clear) in [
        ("smtp_password", f.smtp_password, f.clear_smtp_password),
        ("webhook_url", f.webhook_url, f.clear_webhook_url),
        (
            "teams_webhook_url",
            f.teams_webhook_url,
            f.clear_teams_webhook_url,
        ),
    ] {
        if clear.is_some() {
            out.push((field.to_string(), None));
        } else if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push((field.to_string(), Some(v)));
        }
    }
    let on: Vec<&str> = [
        ("failure", &f.on_failure),
        ("timeout", &f.on_timeout),
        ("oom", &f.on_oom),
        ("recovery", &f.on_recovery),
        ("success", &f.on_success),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| k)
    .collect();
    let notify_on = if f.notify_on_env.is_some() {
        None
    } else {
        // Nothing ticked means "tell nothing", which `notify_on` spells as empty.
        Some(if on.is_empty() {
            ",".to_string()
        } else {
            on.join(",")
        })
    };
    out.push(("notify_on".into(), notify_on));
    out
}

async fn save(
    State(state): State<AppState>,
    Extension(who): Extension<Identity>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, AppError> {
    let changes = changes(form);
    let (notice, ok) =
        match crate::notify::settings::change(&state.pool, &state.cipher, &changes, &who.name)
            .await?
        {
            Ok(()) => (
                "Saved; in force for the next notification.".to_string(),
                true,
            ),
            Err(why) => (format!("Not saved: {why}"), false),
        };
    render(&state, notice, ok, None).await
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
    if is_htmx(&headers) {
        return Ok(TestResult { ok, text }.into_response());
    }
    render(&state, text, ok, None).await
}
