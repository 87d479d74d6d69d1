//! The form of Settings → Notifications: each field as shown (the stored value,
//! or empty with the environment's as its placeholder), the submitted form as
//! changes for `notify::settings::change`, and a refused form's values kept.

use serde::Deserialize;

use super::AppState;
use crate::config::notify::SmtpTls;
use crate::notify::settings::Effective;
use crate::pipelines::notify_spec::{NotifyEvent, shown_url};

/// One field as the form shows it: the stored value (empty when the
/// environment's is in force) and the environment's, as a placeholder.
pub struct FieldView {
    pub value: String,
    pub from_env: String,
    pub overridden: bool,
}

pub struct FormView {
    pub(super) email_enabled: (String, bool),
    pub(super) teams_enabled: (String, bool),
    pub(super) text: Vec<(&'static str, &'static str, FieldView)>,
    pub(super) smtp_tls: String,
    pub(super) smtp_tls_env: String,
    pub(super) tls_modes: Vec<&'static str>,
    pub(super) secrets: Vec<(&'static str, &'static str, String, bool)>,
    pub(super) webhook_format: String,
    pub(super) events: Vec<(&'static str, bool)>,
    pub(super) events_from_env: bool,
    pub(super) env_events: String,
    pub(super) email_problem: String,
    pub(super) problems: Vec<String>,
}

pub(super) fn form_view(e: &Effective, state: &AppState) -> FormView {
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

/// Puts a refused form's values back (never a credential: those are typed again).
pub(super) fn keep_typed(f: &mut FormView, t: &SettingsForm) {
    let typed = |v: &Option<String>| v.clone().unwrap_or_default();
    for (name, _, view) in &mut f.text {
        view.value = match *name {
            "smtp_host" => typed(&t.smtp_host),
            "smtp_port" => typed(&t.smtp_port),
            "smtp_user" => typed(&t.smtp_user),
            "smtp_from" => typed(&t.smtp_from),
            "email_recipients" => typed(&t.email_recipients),
            _ => continue,
        };
    }
    f.email_enabled.0 = typed(&t.email_enabled);
    f.teams_enabled.0 = typed(&t.teams_enabled);
    f.smtp_tls = typed(&t.smtp_tls);
    f.webhook_format = typed(&t.webhook_format);
    f.events_from_env = t.notify_on_env.is_some();
    for (event, on) in &mut f.events {
        *on = match *event {
            "failure" => t.on_failure.is_some(),
            "timeout" => t.on_timeout.is_some(),
            "oom" => t.on_oom.is_some(),
            "recovery" => t.on_recovery.is_some(),
            _ => t.on_success.is_some(),
        };
    }
}

/// The whole form: empty fields and "environment" choices give a setting back
/// to the environment; an empty credential field keeps the stored one.
#[derive(Deserialize, Default, Clone)]
pub(super) struct SettingsForm {
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

pub(super) fn changes(f: SettingsForm) -> Vec<(String, Option<String>)> {
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
