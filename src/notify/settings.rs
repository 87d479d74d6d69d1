//! The notification settings in force: the environment's (`config::notify`),
//! each one overridden by what the Settings page stored, and the checked
//! changes the page and `PUT /api/settings/notifications` make to them.

use std::path::PathBuf;

use crate::config::Config;
use crate::config::notify::{SmtpTls, parse_events};
use crate::db::notify_settings::NotifySettingsRow;
use crate::db::{self, DbError, Pool};
use crate::pipelines::notify_spec::{
    NotifyEvent, WebhookFormat, check_address, check_webhook_url, parse_address_list,
};
use crate::secrets::{Cipher, SecretString};

/// The fields the page and the API can set, by their Fast-Flow 1.x names.
pub const FIELDS: [&str; 13] = [
    "email_enabled",
    "smtp_host",
    "smtp_port",
    "smtp_user",
    "smtp_password",
    "smtp_from",
    "smtp_tls",
    "email_recipients",
    "teams_enabled",
    "teams_webhook_url",
    "webhook_url",
    "webhook_format",
    "notify_on",
];

/// Longest host or user name accepted.
const MAX_NAME_CHARS: usize = 255;

#[derive(Debug, Clone)]
pub struct Effective {
    pub email_enabled: bool,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<SecretString>,
    pub smtp_from: Option<String>,
    pub smtp_tls: SmtpTls,
    pub smtp_ca_file: Option<PathBuf>,
    pub email_recipients: Vec<String>,
    pub teams_enabled: bool,
    pub teams_webhook_url: Option<SecretString>,
    pub webhook_url: Option<SecretString>,
    /// `None`: chosen by the URL's host.
    pub webhook_format: Option<WebhookFormat>,
    pub notify_on: Vec<NotifyEvent>,
    /// Where a notification's links point (`FRONTEND_URL`, else `BASE_URL`).
    pub link_base: String,
    /// The fields the Settings page set (the rest come from the environment).
    pub overridden: Vec<&'static str>,
    /// Stored values that could not be used (a token no key opens), said on the page.
    pub problems: Vec<String>,
}

impl Effective {
    /// Why e-mail cannot be sent now, if it cannot.
    pub fn email_unready(&self) -> Option<String> {
        if !self.email_enabled {
            return Some("e-mail notifications are off (EMAIL_ENABLED)".into());
        }
        if self.smtp_host.is_none() {
            return Some("no SMTP server is set (SMTP_HOST)".into());
        }
        if self.smtp_from.is_none() {
            return Some("no sender address is set (SMTP_FROM)".into());
        }
        None
    }

    pub fn is_overridden(&self, field: &str) -> bool {
        self.overridden.contains(&field)
    }
}

/// The settings in force now.
pub async fn load(pool: &Pool, config: &Config, cipher: &Cipher) -> Result<Effective, DbError> {
    let row = db::notify_settings::get(pool).await?;
    Ok(resolve(config, &row, cipher))
}

fn resolve(config: &Config, row: &NotifySettingsRow, cipher: &Cipher) -> Effective {
    let env = &config.notify;
    let mut problems = Vec::new();
    let mut secret =
        |field: &'static str, token: &Option<String>, env: &Option<SecretString>| match token {
            Some(t) => match cipher.decrypt(t) {
                Ok(v) => Some(v),
                Err(_) => {
                    problems.push(format!(
                        "the stored {field} cannot be decrypted with ENCRYPTION_KEY; set it again"
                    ));
                    env.clone()
                }
            },
            None => env.clone(),
        };
    let smtp_password = secret(
        "smtp_password",
        &row.smtp_password_encrypted,
        &env.smtp_password,
    );
    let teams_webhook_url = secret(
        "teams_webhook_url",
        &row.teams_webhook_url_encrypted,
        &env.teams_webhook_url,
    );
    let webhook_url = secret("webhook_url", &row.webhook_url_encrypted, &env.webhook_url);
    let port_set = row.smtp_port.and_then(|p| u16::try_from(p).ok());
    let smtp_port = port_set.unwrap_or(env.smtp_port);
    let tls_set = row.smtp_tls.as_deref().and_then(SmtpTls::parse);
    let smtp_tls = tls_set
        .or(env.smtp_tls)
        .unwrap_or_else(|| SmtpTls::for_port(smtp_port));
    let overridden = [
        ("email_enabled", row.email_enabled.is_some()),
        ("smtp_host", row.smtp_host.is_some()),
        ("smtp_port", port_set.is_some()),
        ("smtp_user", row.smtp_user.is_some()),
        ("smtp_password", row.smtp_password_encrypted.is_some()),
        ("smtp_from", row.smtp_from.is_some()),
        ("smtp_tls", tls_set.is_some()),
        ("email_recipients", row.email_recipients.is_some()),
        ("teams_enabled", row.teams_enabled.is_some()),
        (
            "teams_webhook_url",
            row.teams_webhook_url_encrypted.is_some(),
        ),
        ("webhook_url", row.webhook_url_encrypted.is_some()),
        ("webhook_format", row.webhook_format.is_some()),
        ("notify_on", row.notify_on.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    let text = |v: &Option<String>, env: &Option<String>| v.clone().or_else(|| env.clone());
    Effective {
        email_enabled: row.email_enabled.unwrap_or(env.email_enabled),
        smtp_host: text(&row.smtp_host, &env.smtp_host),
        smtp_port,
        smtp_user: text(&row.smtp_user, &env.smtp_user),
        smtp_password,
        smtp_from: text(&row.smtp_from, &env.smtp_from),
        smtp_tls,
        smtp_ca_file: env.smtp_ca_file.clone(),
        email_recipients: match &row.email_recipients {
            Some(list) => parse_address_list(list).unwrap_or_default(),
            None => env.email_recipients.clone(),
        },
        teams_enabled: row.teams_enabled.unwrap_or(env.teams_enabled),
        teams_webhook_url,
        webhook_url,
        webhook_format: row
            .webhook_format
            .as_deref()
            .and_then(WebhookFormat::parse)
            .or(env.webhook_format),
        notify_on: match &row.notify_on {
            Some(list) => parse_events(list).unwrap_or_else(|_| env.notify_on.clone()),
            None => env.notify_on.clone(),
        },
        link_base: env
            .frontend_url
            .clone()
            .unwrap_or_else(|| config.base_url.clone()),
        overridden,
        problems,
    }
}

/// Sets one field of the stored overrides: `Some(value)` checked and stored
/// (credentials encrypted), `None` back to the environment's value. The error
/// names the field and why, never the value of a credential.
pub fn apply_change(
    row: &mut NotifySettingsRow,
    field: &str,
    value: Option<&str>,
    cipher: &Cipher,
) -> Result<(), String> {
    // A password keeps its spaces; every other value is trimmed.
    let raw = value.filter(|v| !v.is_empty());
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let why = |reason: String| format!("{field}: {reason}");
    match field {
        "email_enabled" => row.email_enabled = value.map(parse_switch).transpose().map_err(why)?,
        "teams_enabled" => row.teams_enabled = value.map(parse_switch).transpose().map_err(why)?,
        "smtp_host" => row.smtp_host = value.map(check_name).transpose().map_err(why)?,
        "smtp_user" => row.smtp_user = value.map(check_name).transpose().map_err(why)?,
        "smtp_port" => {
            row.smtp_port = value
                .map(|v| match v.parse::<u16>() {
                    Ok(p) if p > 0 => Ok(i64::from(p)),
                    _ => Err(format!(
                        "`{}` is not a TCP port from 1 to 65535",
                        crate::pipelines::fields::shown(v)
                    )),
                })
                .transpose()
                .map_err(why)?
        }
        "smtp_password" => row.smtp_password_encrypted = raw.map(|v| cipher.encrypt(v)),
        "smtp_from" => row.smtp_from = value.map(check_address).transpose().map_err(why)?,
        "smtp_tls" => {
            row.smtp_tls = value
                .map(|v| {
                    SmtpTls::parse(v)
                        .map(|t| t.as_str().to_string())
                        .ok_or_else(|| {
                            format!("`{v}`: expected tls, starttls, opportunistic or none")
                        })
                })
                .transpose()
                .map_err(why)?
        }
        "email_recipients" => {
            row.email_recipients = value
                .map(|v| parse_address_list(v).map(|list| list.join(", ")))
                .transpose()
                .map_err(why)?
        }
        "teams_webhook_url" | "webhook_url" => {
            let token = value
                .map(|v| check_webhook_url(v).map(|()| cipher.encrypt(v)))
                .transpose()
                .map_err(why)?;
            if field == "webhook_url" {
                row.webhook_url_encrypted = token;
            } else {
                row.teams_webhook_url_encrypted = token;
            }
        }
        "webhook_format" => {
            row.webhook_format = value
                .map(|v| {
                    WebhookFormat::parse(v)
                        .map(|f| f.as_str().to_string())
                        .ok_or_else(|| format!("`{v}`: expected json, slack or teams"))
                })
                .transpose()
                .map_err(why)?
        }
        "notify_on" => {
            row.notify_on = value
                .map(|v| {
                    parse_events(v).map(|list| {
                        list.iter()
                            .map(|e| e.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                })
                .transpose()
                .map_err(why)?
        }
        other => {
            return Err(format!(
                "unknown setting `{}` (known: {})",
                crate::pipelines::fields::shown(other),
                FIELDS.join(", ")
            ));
        }
    }
    Ok(())
}

fn parse_switch(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{v}`: expected true or false")),
    }
}

fn check_name(v: &str) -> Result<String, String> {
    if v.chars().count() > MAX_NAME_CHARS || v.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "must be at most {MAX_NAME_CHARS} characters without spaces or control characters"
        ));
    }
    Ok(v.to_string())
}

/// Applies `changes` (`field`, new value or `None` for the environment's) to
/// the stored overrides, all or nothing: the first bad one is the error.
pub async fn change(
    pool: &Pool,
    cipher: &Cipher,
    changes: &[(String, Option<String>)],
    by: &str,
) -> Result<Result<(), String>, DbError> {
    db::notify_settings::update(pool, |row| {
        for (field, value) in changes {
            apply_change(row, field, value.as_deref(), cipher)?;
        }
        row.updated_at = Some(chrono::Utc::now());
        row.updated_by = Some(by.to_string());
        Ok(())
    })
    .await
}
