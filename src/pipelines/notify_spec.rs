//! The words of failure notifications, shared by `pipeline.json`'s `notify` field
//! and the server's settings: the events, the webhook formats, and checks of an
//! e-mail address and a webhook URL. A webhook URL is a credential (Slack's and
//! Teams' carry their token in the path), so it is only ever shown as
//! `scheme://host/…`.

use serde::Serialize;
use serde_json::Value;

use super::fields::{FieldReader, kind, shown};

/// Recipients one pipeline may add, and the longest address (RFC 5321).
pub const MAX_PIPELINE_RECIPIENTS: usize = 20;
pub const MAX_ADDRESS_CHARS: usize = 254;
/// The longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// What a finished run can be told as. `Failure` covers every failed run
/// (timeouts and OOM kills included); `Timeout` and `Oom` name only those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    Failure,
    Timeout,
    Oom,
    Recovery,
    Success,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 5] = [
        Self::Failure,
        Self::Timeout,
        Self::Oom,
        Self::Recovery,
        Self::Success,
    ];
    /// Without a `NOTIFY_ON` or a pipeline's `notify.on`: every failure and the recovery.
    pub const DEFAULT_ON: [NotifyEvent; 4] =
        [Self::Failure, Self::Timeout, Self::Oom, Self::Recovery];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failure => "failure",
            Self::Timeout => "timeout",
            Self::Oom => "oom",
            Self::Recovery => "recovery",
            Self::Success => "success",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether a list of wanted events asks for this one (`failure` also asks
    /// for timeouts and OOM kills).
    pub fn wanted_by(self, on: &[NotifyEvent]) -> bool {
        on.contains(&self)
            || (matches!(self, Self::Timeout | Self::Oom) && on.contains(&Self::Failure))
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// Fast-Flow's own JSON object (every field of the run).
    #[default]
    Json,
    /// `{"text": …}` for Slack (and Mattermost, Rocket.Chat) incoming webhooks.
    Slack,
    /// A MessageCard, as Fast-Flow 1.x sent to Microsoft Teams.
    Teams,
}

impl WebhookFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Teams => "teams",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "slack" => Some(Self::Slack),
            "teams" => Some(Self::Teams),
            _ => None,
        }
    }

    /// The format a URL's host implies when none is named.
    pub fn for_url(url: &str) -> Self {
        let host = url_host(url).unwrap_or_default();
        if host == "hooks.slack.com" {
            Self::Slack
        } else if host.ends_with(".webhook.office.com")
            || host.ends_with(".logic.azure.com")
            || host.ends_with(".powerplatform.com")
        {
            Self::Teams
        } else {
            Self::Json
        }
    }
}

/// A pipeline's own `notify` settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NotifySpec {
    /// The events this pipeline is told about; `None` takes the server's.
    pub on: Option<Vec<NotifyEvent>>,
    /// Addresses told besides `EMAIL_RECIPIENTS`.
    pub email: Vec<String>,
    /// A webhook told besides the server's (never serialized in clear).
    #[serde(skip)]
    pub webhook: Option<String>,
    pub webhook_format: Option<WebhookFormat>,
    /// `scheme://host/…` of `webhook`, for pages and the API.
    pub webhook_shown: Option<String>,
}

impl NotifySpec {
    pub fn format(&self) -> WebhookFormat {
        match (&self.webhook_format, &self.webhook) {
            (Some(f), _) => *f,
            (None, Some(url)) => WebhookFormat::for_url(url),
            (None, None) => WebhookFormat::Json,
        }
    }
}

/// Reads `notify` (already taken out of the top-level object).
pub(super) fn read_notify(r: &mut FieldReader<'_>) -> Option<NotifySpec> {
    let obj = r.object("notify")?;
    let prefix = r.path("notify");
    let mut n = FieldReader::new(obj, &prefix, r.errors);
    let mut spec = NotifySpec::default();
    if let Some(value) = n.take("on") {
        spec.on = Some(read_events(&mut n, value));
    }
    for (i, address) in n
        .string_list("email", MAX_PIPELINE_RECIPIENTS)
        .into_iter()
        .enumerate()
    {
        match check_address(&address) {
            Ok(a) => spec.email.push(a),
            Err(why) => n.error(&format!("email[{i}]"), why),
        }
    }
    if let Some(url) = n.non_empty_string("webhook") {
        match check_webhook_url(&url) {
            Ok(()) => {
                spec.webhook_shown = Some(shown_url(&url));
                spec.webhook = Some(url);
            }
            Err(why) => n.error("webhook", why),
        }
    }
    spec.webhook_format = n.policy("webhook_format", |s| {
        WebhookFormat::parse(s).ok_or_else(|| {
            format!(
                "unknown format `{}` (expected json, slack or teams)",
                shown(s)
            )
        })
    });
    n.reject_leftovers("notify");
    Some(spec)
}

fn read_events(n: &mut FieldReader<'_>, value: Value) -> Vec<NotifyEvent> {
    let Value::Array(items) = value else {
        n.error(
            "on",
            format!(
                "must be a list of events (failure, timeout, oom, recovery, success), got {}",
                kind(&value)
            ),
        );
        return Vec::new();
    };
    let mut events = Vec::new();
    if !n.within("on", items.len(), NotifyEvent::ALL.len() * 2) {
        return events;
    }
    for (i, item) in items.iter().enumerate() {
        match item.as_str().and_then(NotifyEvent::parse) {
            Some(e) if !events.contains(&e) => events.push(e),
            Some(_) => {}
            None => n.error(
                &format!("on[{i}]"),
                format!(
                    "unknown event {} (expected failure, timeout, oom, recovery or success)",
                    shown(&item.to_string())
                ),
            ),
        }
    }
    events
}

/// An e-mail address as SMTP takes it, trimmed.
pub fn check_address(raw: &str) -> Result<String, String> {
    let a = raw.trim();
    if a.chars().count() > MAX_ADDRESS_CHARS {
        return Err(format!(
            "is longer than {MAX_ADDRESS_CHARS} characters, too long for an e-mail address"
        ));
    }
    // Plain addresses only: the mail is sent without SMTPUTF8, and a quoted local
    // part ("a, b"@x) would not survive the recipient list.
    if !a.is_ascii() || a.contains(['"', ',', ';', '<', '>', '(', ')', ' ']) {
        return Err(format!(
            "`{}` is not a plain e-mail address like name@example.com (ASCII, no quotes, spaces or brackets)",
            shown(a)
        ));
    }
    match a.parse::<lettre::message::Mailbox>() {
        Ok(_) => Ok(a.to_string()),
        Err(_) => Err(format!(
            "`{}` is not an e-mail address like name@example.com",
            shown(a)
        )),
    }
}

/// Recipients the server's own list (`EMAIL_RECIPIENTS`) may have.
pub const MAX_SERVER_RECIPIENTS: usize = 100;

/// Addresses separated by commas (or semicolons), each checked, at most
/// [`MAX_SERVER_RECIPIENTS`].
pub fn parse_address_list(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in raw
        .split([',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        if out.len() >= MAX_SERVER_RECIPIENTS {
            return Err(format!(
                "more than {MAX_SERVER_RECIPIENTS} recipients; use a mailing list address"
            ));
        }
        let a = check_address(part)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// An `http://` or `https://` URL with a host, without user or password.
pub fn check_webhook_url(raw: &str) -> Result<(), String> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(format!("is longer than {MAX_URL_CHARS} characters"));
    }
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| format!("is not a URL ({e}); expected https://host/path"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user or password (user:pass@host)".into());
    }
    Ok(())
}

/// `https://hooks.slack.com/…`: where a webhook goes, without the path and query
/// that often are its credential.
pub fn shown_url(raw: &str) -> String {
    match reqwest::Url::parse(raw.trim()) {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!(
                "{}://{}{port}/…",
                url.scheme(),
                url.host_str().unwrap_or("?")
            )
        }
        Err(_) => "(not a URL)".into(),
    }
}

fn url_host(raw: &str) -> Option<String> {
    reqwest::Url::parse(raw.trim())
        .ok()?
        .host_str()
        .map(str::to_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipelines::metadata::parse_metadata;

    #[test]
    fn reads_the_issue_example() {
        let p = parse_metadata(
            r#"{"notify": {"on": ["failure", "recovery"], "email": ["ops@example.com"], "webhook": "https://hooks.slack.com/services/T/B/secret"}}"#,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let n = p.metadata.notify.expect("notify read");
        assert_eq!(
            n.on,
            Some(vec![NotifyEvent::Failure, NotifyEvent::Recovery])
        );
        assert_eq!(n.email, vec!["ops@example.com"]);
        assert_eq!(n.format(), WebhookFormat::Slack);
        assert_eq!(
            n.webhook_shown.as_deref(),
            Some("https://hooks.slack.com/…")
        );
        let json = serde_json::to_string(&n).unwrap();
        assert!(!json.contains("secret"), "{json}");
    }

    #[test]
    fn names_each_bad_part() {
        let p = parse_metadata(
            r#"{"notify": {"on": ["failure", "sometimes"], "email": ["not an address"], "webhook": "ftp://x/y", "webhook_format": "xml", "extra": 1}}"#,
        );
        let fields: Vec<&str> = p.errors.iter().map(|e| e.field.as_str()).collect();
        for want in [
            "notify.on[1]",
            "notify.email[0]",
            "notify.webhook",
            "notify.webhook_format",
            "notify.extra",
        ] {
            assert!(fields.contains(&want), "{want} missing from {fields:?}");
        }
        let p = parse_metadata(r#"{"notify": {"webhook": "https://u:p@example.com/h"}}"#);
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert!(p.errors[0].message.contains("user or password"));
        let p = parse_metadata(r#"{"notify": "yes"}"#);
        assert_eq!(p.errors[0].field, "notify");
    }

    #[test]
    fn failure_covers_timeouts_and_oom() {
        let on = [NotifyEvent::Failure];
        assert!(NotifyEvent::Timeout.wanted_by(&on));
        assert!(NotifyEvent::Oom.wanted_by(&on));
        assert!(!NotifyEvent::Recovery.wanted_by(&on));
        assert!(!NotifyEvent::Failure.wanted_by(&[NotifyEvent::Timeout]));
        assert!(NotifyEvent::Timeout.wanted_by(&[NotifyEvent::Timeout]));
    }

    #[test]
    fn address_lists() {
        assert_eq!(
            parse_address_list("a@x.org, b@y.org;a@x.org").unwrap(),
            vec!["a@x.org", "b@y.org"]
        );
        assert!(parse_address_list("a@x.org, nope").is_err());
        assert_eq!(parse_address_list(" ").unwrap(), Vec::<String>::new());
    }
}
