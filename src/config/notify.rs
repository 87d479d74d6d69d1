//! Failure notification settings from the environment, with Fast-Flow 1.x's
//! names (`EMAIL_ENABLED`, `SMTP_*`, `EMAIL_RECIPIENTS`, `TEAMS_*`) plus a
//! generic webhook and the events to tell. The Settings page can override each
//! one (see `notify::settings`); these are the values it falls back to.

use std::collections::HashMap;
use std::path::PathBuf;

use super::ConfigError;
use super::values::{err, in_range, parse_bool};
use crate::pipelines::notify_spec::{
    NotifyEvent, WebhookFormat, check_webhook_url, parse_address_list,
};
use crate::secrets::SecretString;

/// How the SMTP connection is protected (`SMTP_TLS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// TLS from the first byte (port 465, "SMTPS").
    Tls,
    /// Plain connection upgraded with STARTTLS, which the server must offer (port 587).
    Starttls,
    /// STARTTLS when the server offers it, else plain (port 25 and others).
    Opportunistic,
    /// Never encrypted: only for a relay on the same host or network.
    None,
}

impl SmtpTls {
    pub const ALL: [SmtpTls; 4] = [Self::Tls, Self::Starttls, Self::Opportunistic, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls => "tls",
            Self::Starttls => "starttls",
            Self::Opportunistic => "opportunistic",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tls" | "ssl" | "smtps" => Some(Self::Tls),
            "starttls" => Some(Self::Starttls),
            "opportunistic" => Some(Self::Opportunistic),
            "none" | "plain" | "off" => Some(Self::None),
            _ => None,
        }
    }

    /// The mode a port implies when `SMTP_TLS` is not set.
    pub fn for_port(port: u16) -> Self {
        match port {
            465 => Self::Tls,
            587 => Self::Starttls,
            _ => Self::Opportunistic,
        }
    }
}

/// `EMAIL_*`, `SMTP_*`, `TEAMS_*`, `NOTIFY_*`.
#[derive(Debug, Clone)]
pub struct NotifyEnv {
    pub email_enabled: bool,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<SecretString>,
    pub smtp_from: Option<String>,
    /// `None`: chosen by the port (`SmtpTls::for_port`).
    pub smtp_tls: Option<SmtpTls>,
    /// `SMTP_CA_FILE`: PEM certificates trusted besides the system's (an internal CA).
    pub smtp_ca_file: Option<PathBuf>,
    pub email_recipients: Vec<String>,
    pub teams_enabled: bool,
    pub teams_webhook_url: Option<SecretString>,
    /// `NOTIFY_WEBHOOK_URL`: one more webhook for every notification.
    pub webhook_url: Option<SecretString>,
    /// `NOTIFY_WEBHOOK_FORMAT`; `None` is chosen by the URL's host.
    pub webhook_format: Option<WebhookFormat>,
    /// `NOTIFY_ON`: the events told for pipelines that name none.
    pub notify_on: Vec<NotifyEvent>,
    /// `FRONTEND_URL` (1.x): where the links in a notification point; else `BASE_URL`.
    pub frontend_url: Option<String>,
    /// `NOTIFY_ALLOW_LOOPBACK_WEBHOOKS`: a pipeline's own webhook may post to
    /// this host's loopback (tests, single-host chat servers).
    pub allow_loopback_webhooks: bool,
}

impl Default for NotifyEnv {
    fn default() -> Self {
        Self {
            email_enabled: false,
            smtp_host: None,
            smtp_port: 587,
            smtp_user: None,
            smtp_password: None,
            smtp_from: None,
            smtp_tls: None,
            smtp_ca_file: None,
            email_recipients: Vec::new(),
            teams_enabled: false,
            teams_webhook_url: None,
            webhook_url: None,
            webhook_format: None,
            notify_on: NotifyEvent::DEFAULT_ON.to_vec(),
            frontend_url: None,
            allow_loopback_webhooks: false,
        }
    }
}

/// The events named in a comma-separated list, each checked.
pub fn parse_events(raw: &str) -> Result<Vec<NotifyEvent>, String> {
    let mut events = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let e = NotifyEvent::parse(part).ok_or_else(|| {
            format!("unknown event `{part}` (expected failure, timeout, oom, recovery, success)")
        })?;
        if !events.contains(&e) {
            events.push(e);
        }
    }
    Ok(events)
}

impl NotifyEnv {
    pub(super) fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let url = |var: &'static str| -> Result<Option<SecretString>, ConfigError> {
            match get(var) {
                None => Ok(None),
                Some(u) => match check_webhook_url(&u) {
                    Ok(()) => Ok(Some(SecretString::new(u))),
                    Err(why) => Err(err(var, "(hidden)", why)),
                },
            }
        };
        let smtp_ca_file = get("SMTP_CA_FILE").map(PathBuf::from);
        if let Some(path) = &smtp_ca_file
            && !path.is_file()
        {
            return Err(err(
                "SMTP_CA_FILE",
                &path.display().to_string(),
                "no such file (expected PEM certificates)",
            ));
        }
        Ok(Self {
            email_enabled: parse_bool(get("EMAIL_ENABLED"), "EMAIL_ENABLED")?,
            smtp_host: get("SMTP_HOST"),
            smtp_port: in_range::<u16>(get("SMTP_PORT"), "SMTP_PORT", 587, 1, 65535, "TCP port")?,
            smtp_user: get("SMTP_USER"),
            smtp_password: vars
                .get("SMTP_PASSWORD")
                .filter(|p| !p.is_empty())
                .map(|p| SecretString::new(p.clone())),
            smtp_from: match get("SMTP_FROM") {
                Some(f) => Some(
                    crate::pipelines::notify_spec::check_address(&f)
                        .map_err(|why| err("SMTP_FROM", &f, why))?,
                ),
                None => None,
            },
            smtp_tls: match get("SMTP_TLS") {
                None => None,
                Some(t) => Some(SmtpTls::parse(&t).ok_or_else(|| {
                    err(
                        "SMTP_TLS",
                        &t,
                        "expected tls, starttls, opportunistic or none",
                    )
                })?),
            },
            smtp_ca_file,
            email_recipients: match get("EMAIL_RECIPIENTS") {
                None => Vec::new(),
                Some(list) => {
                    parse_address_list(&list).map_err(|why| err("EMAIL_RECIPIENTS", &list, why))?
                }
            },
            teams_enabled: parse_bool(get("TEAMS_ENABLED"), "TEAMS_ENABLED")?,
            teams_webhook_url: url("TEAMS_WEBHOOK_URL")?,
            webhook_url: url("NOTIFY_WEBHOOK_URL")?,
            webhook_format: match get("NOTIFY_WEBHOOK_FORMAT") {
                None => None,
                Some(f) => Some(WebhookFormat::parse(&f).ok_or_else(|| {
                    err("NOTIFY_WEBHOOK_FORMAT", &f, "expected json, slack or teams")
                })?),
            },
            notify_on: match get("NOTIFY_ON") {
                None => NotifyEvent::DEFAULT_ON.to_vec(),
                Some(list) => parse_events(&list).map_err(|why| err("NOTIFY_ON", &list, why))?,
            },
            frontend_url: get("FRONTEND_URL").map(|u| u.trim_end_matches('/').to_string()),
            allow_loopback_webhooks: parse_bool(
                get("NOTIFY_ALLOW_LOOPBACK_WEBHOOKS"),
                "NOTIFY_ALLOW_LOOPBACK_WEBHOOKS",
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fastflow_names_and_defaults() {
        let n = NotifyEnv::from_vars(&vars(&[
            ("EMAIL_ENABLED", "true"),
            ("SMTP_HOST", "mail.example.com"),
            ("SMTP_PORT", "465"),
            ("EMAIL_RECIPIENTS", "a@example.com, b@example.com"),
            ("TEAMS_ENABLED", "true"),
            (
                "TEAMS_WEBHOOK_URL",
                "https://x.webhook.office.com/webhookb2/secret",
            ),
        ]))
        .unwrap();
        assert!(n.email_enabled && n.teams_enabled);
        assert_eq!(n.smtp_port, 465);
        assert_eq!(n.email_recipients.len(), 2);
        assert_eq!(n.notify_on, NotifyEvent::DEFAULT_ON.to_vec());
        assert_eq!(SmtpTls::for_port(465), SmtpTls::Tls);
        assert_eq!(SmtpTls::for_port(587), SmtpTls::Starttls);
        assert_eq!(SmtpTls::for_port(25), SmtpTls::Opportunistic);
    }

    #[test]
    fn bad_values_name_their_variable_and_hide_urls() {
        for (var, value) in [
            ("SMTP_PORT", "70000"),
            ("SMTP_TLS", "maybe"),
            ("EMAIL_RECIPIENTS", "a@example.com, nobody"),
            ("SMTP_FROM", "fastflow"),
            ("NOTIFY_ON", "failure,always"),
            ("NOTIFY_WEBHOOK_FORMAT", "xml"),
            ("SMTP_CA_FILE", "/nonexistent/ca.pem"),
        ] {
            let e = NotifyEnv::from_vars(&vars(&[(var, value)])).unwrap_err();
            assert_eq!(e.var, var);
        }
        let e = NotifyEnv::from_vars(&vars(&[("NOTIFY_WEBHOOK_URL", "ftp://h/secret-token")]))
            .unwrap_err();
        assert_eq!(e.var, "NOTIFY_WEBHOOK_URL");
        assert!(!e.to_string().contains("secret-token"), "{e}");
    }
}
