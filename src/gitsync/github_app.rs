//! GitHub App authentication: the server signs a short RS256 app JWT with the
//! app's private key, exchanges it for an installation access token
//! (`POST {GITHUB_API_URL}/app/installations/{id}/access_tokens`), fetches with
//! that token over HTTPS, and renews it before it expires. No personal token.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::SyncError;
use crate::secrets::SecretString;

/// GitHub's API, unless `GITHUB_API_URL` says otherwise (GitHub Enterprise).
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// A token is renewed when it has less than this left.
const RENEW_BEFORE: Duration = Duration::minutes(5);
/// Longest answer read from the token endpoint.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An app installation's credentials and its current token.
pub struct GitHubApp {
    app_id: String,
    installation_id: String,
    api_url: String,
    key: EncodingKey,
    client: reqwest::Client,
    token: tokio::sync::Mutex<Option<(SecretString, DateTime<Utc>)>>,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    iat: i64,
    exp: i64,
    iss: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    expires_at: DateTime<Utc>,
}

impl GitHubApp {
    /// Checks the ids and the key (PEM, PKCS#1 or PKCS#8) without contacting GitHub.
    pub fn new(
        app_id: &str,
        private_key_pem: &SecretString,
        installation_id: &str,
        api_url: Option<&str>,
    ) -> Result<Self, SyncError> {
        let digits =
            |v: &str| !v.is_empty() && v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit());
        if !digits(app_id) {
            return Err(SyncError::Config(
                "GITHUB_APP_ID must be the app's numeric id".into(),
            ));
        }
        if !digits(installation_id) {
            return Err(SyncError::Config(
                "GITHUB_APP_INSTALLATION_ID must be the installation's numeric id".into(),
            ));
        }
        let pem = private_key_pem.expose().replace("\\n", "\n");
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| {
            SyncError::Config("GITHUB_APP_PRIVATE_KEY is not an RSA private key in PEM form".into())
        })?;
        let api_url = api_url
            .unwrap_or(DEFAULT_API_URL)
            .trim_end_matches('/')
            .to_string();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(SyncError::Config(
                "GITHUB_API_URL must be an http(s) URL".into(),
            ));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("fastflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            app_id: app_id.to_string(),
            installation_id: installation_id.to_string(),
            api_url,
            key,
            client,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The app JWT: valid from a minute ago (clock drift) for nine minutes (GitHub allows ten).
    fn app_jwt(&self) -> Result<String, SyncError> {
        let now = Utc::now().timestamp();
        let claims = AppClaims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: &self.app_id,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| SyncError::Auth(format!("signing the GitHub App JWT failed: {e}")))
    }

    /// An installation token with more than five minutes left, renewed when needed.
    pub async fn token(&self) -> Result<SecretString, SyncError> {
        let mut cached = self.token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && *expires - Utc::now() > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.api_url, self.installation_id
        );
        let response = self
            .client
            .post(&url)
            .bearer_auth(self.app_jwt()?)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .send()
            .await
            .map_err(|e| SyncError::Auth(format!("asking {url} for an installation token: {e}")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SyncError::Auth(format!("reading the token answer of {url}: {e}")))?;
        let body = &body[..body.len().min(MAX_RESPONSE_BYTES)];
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Refusal {
                message: Option<String>,
            }
            let why = serde_json::from_slice::<Refusal>(body)
                .ok()
                .and_then(|r| r.message)
                .unwrap_or_default();
            return Err(SyncError::Auth(format!(
                "GitHub refused the app's token request ({status}{}{why}); check GITHUB_APP_ID, the key and GITHUB_APP_INSTALLATION_ID",
                if why.is_empty() { "" } else { ": " }
            )));
        }
        let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
            SyncError::Auth(format!("the token answer of {url} is not understood: {e}"))
        })?;
        let token = SecretString::new(answer.token);
        *cached = Some((token.clone(), answer.expires_at));
        Ok(token)
    }
}
