//! Posting one notification to a webhook: JSON, a bounded time, no redirects
//! (a redirect could carry the body elsewhere), and errors that never show the
//! URL, whose path is often the webhook's credential.

use std::time::Duration;

use serde_json::Value;

use super::SendError;

/// The whole request, from connecting to the answer's status.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// The settings every webhook client shares.
pub fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fastflow/", env!("CARGO_PKG_VERSION")))
}

/// The client for the webhooks an admin configured.
pub fn client() -> reqwest::Client {
    builder().build().unwrap_or_default()
}

/// Posts `body` to `url`; `shown` names the target in errors.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    shown: &str,
    body: &Value,
) -> Result<(), SendError> {
    let response = client.post(url).json(body).send().await.map_err(|e| {
        let e = e.without_url();
        // The guard's refusal (webhook_guard) is a cause of the connect error: say it.
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let text = c.to_string();
            if text.contains("may not post to") {
                return SendError::permanent(text);
            }
            cause = c.source();
        }
        let what = if e.is_timeout() {
            format!("no answer within {} s", WEBHOOK_TIMEOUT.as_secs())
        } else if e.is_connect() {
            "cannot connect".to_string()
        } else {
            e.to_string()
        };
        SendError::retry(format!("webhook {shown}: {what}"))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = format!("webhook {shown} answered HTTP {}", status.as_u16());
    // Rate limits and server trouble pass; a wrong URL or body does not.
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(SendError::retry(text))
    } else if status.is_redirection() {
        Err(SendError::permanent(format!(
            "{text} (a redirect, not followed: give the final URL)"
        )))
    } else {
        Err(SendError::permanent(text))
    }
}
