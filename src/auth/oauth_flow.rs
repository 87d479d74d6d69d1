//! The OAuth 2 authorization-code flow with PKCE, against one configured
//! provider: the address the browser is sent to, the code exchanged for an
//! access token, and the user's profile read from the provider (GitHub's
//! verified primary e-mail from `/user/emails`).

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::config::auth::{OAuthProvider, ProviderId};

/// Largest answer read from a provider (a profile or e-mail list).
const MAX_PROVIDER_ANSWER: usize = 1024 * 1024;
/// A provider must answer within this time.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// What went wrong talking to the provider; safe to show (no secret, no code).
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the sign-in settings of {0} are not usable: {1}")]
    Settings(&'static str, String),
    #[error("{0} refused the sign-in: {1}")]
    Exchange(&'static str, String),
    #[error("{0} did not give the user's profile: {1}")]
    Profile(&'static str, String),
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub struct Profile {
    pub provider: ProviderId,
    /// The provider's stable id of the user (`sub`, GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider vouches for the e-mail; an unverified one never
    /// links to, or matches, anything.
    pub email_verified: bool,
    /// A username to start from (GitHub login, name or e-mail's local part).
    pub login: String,
}

/// Where to send the browser, and what the callback must see again.
pub struct Started {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(p: &OAuthProvider, callback: &str) -> Result<Client, FlowError> {
    let bad = |e: oauth2::url::ParseError| FlowError::Settings(p.id.as_str(), e.to_string());
    let c = BasicClient::new(ClientId::new(p.client_id.clone()))
        .set_client_secret(ClientSecret::new(p.client_secret.expose().to_string()))
        .set_auth_uri(AuthUrl::new(p.authorize_url.clone()).map_err(bad)?)
        .set_token_uri(TokenUrl::new(p.token_url.clone()).map_err(bad)?)
        .set_redirect_uri(RedirectUrl::new(callback.to_string()).map_err(bad)?);
    // GitHub reads the client's credentials from the form; the others from
    // HTTP Basic, RFC 6749's default.
    Ok(match p.id {
        ProviderId::Github => c.set_auth_type(AuthType::RequestBody),
        _ => c,
    })
}

/// The callback address registered with the provider.
pub fn callback_url(base_url: &str, provider: ProviderId) -> String {
    format!(
        "{}/api/auth/{}/callback",
        base_url.trim_end_matches('/'),
        provider.as_str()
    )
}

/// Starts a flow: a fresh `state` and PKCE verifier (S256).
pub fn start(p: &OAuthProvider, callback: &str) -> Result<Started, FlowError> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = client(p, callback)?;
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for scope in &p.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state) = request.url();
    Ok(Started {
        url: url.to_string(),
        state: state.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

fn http_client() -> Result<reqwest::Client, FlowError> {
    reqwest::Client::builder()
        // A token endpoint that redirects could send the code elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("fastflow/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FlowError::Settings("http", e.to_string()))
}

/// Exchanges the code (with the PKCE verifier) and reads the profile.
pub async fn finish(
    p: &OAuthProvider,
    callback: &str,
    code: &str,
    pkce_verifier: &str,
) -> Result<Profile, FlowError> {
    let name = p.id.as_str();
    let http = http_client()?;
    let token = client(p, callback)?
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
        .request_async(&http)
        .await
        .map_err(|e| {
            // A provider that echoes the request must not put our secrets on a page.
            let said = exchange_problem(&e)
                .replace(p.client_secret.expose(), "***")
                .replace(pkce_verifier, "***");
            FlowError::Exchange(name, said)
        })?;
    let access = token.access_token().secret();
    let info = get_json(&http, &p.userinfo_url, access, name).await?;
    let mut profile = profile_from(p, &info)?;
    if let Some(emails_url) = &p.emails_url {
        // Without the list (scope not granted, API down) no e-mail counts as verified.
        let emails = match get_json(&http, emails_url, access, name).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "GitHub's e-mail list could not be read: no verified e-mail");
                Value::Null
            }
        };
        let (email, verified) = github_email(&emails, profile.email.take());
        profile.email = email;
        profile.email_verified = verified;
    }
    Ok(profile)
}

/// The reason a code exchange failed, without the provider's raw body.
fn exchange_problem<RE: std::error::Error + 'static>(
    e: &oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            let mut s = r.error().to_string();
            if let Some(d) = r.error_description() {
                s.push_str(": ");
                s.extend(d.chars().take(300));
            }
            s
        }
        oauth2::RequestTokenError::Request(e) => {
            format!("could not reach the token endpoint ({e})")
        }
        oauth2::RequestTokenError::Parse(_, _) => {
            "the token endpoint's answer is not OAuth JSON".into()
        }
        oauth2::RequestTokenError::Other(s) => s.chars().take(300).collect(),
    }
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
    name: &'static str,
) -> Result<Value, FlowError> {
    let problem = |m: String| FlowError::Profile(name, m);
    let mut response = http
        .get(url)
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| problem(format!("could not reach {url} ({e})")))?;
    if !response.status().is_success() {
        return Err(problem(format!("{url} answered {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| problem(format!("reading {url}: {e}")))?
    {
        if body.len() + chunk.len() > MAX_PROVIDER_ANSWER {
            return Err(problem(format!("{url} answered more than 1 MiB")));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| problem(format!("{url} did not answer JSON ({e})")))
}

/// A claim as text: strings as they are, numbers (GitHub's id) written out.
fn claim_text(info: &Value, claim: &str) -> Option<String> {
    match info.get(claim)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads the profile with the provider's claim names.
pub fn profile_from(p: &OAuthProvider, info: &Value) -> Result<Profile, FlowError> {
    let subject = claim_text(info, &p.claims.id).ok_or_else(|| {
        FlowError::Profile(
            p.id.as_str(),
            format!("the answer has no `{}` claim (the user's id)", p.claims.id),
        )
    })?;
    if subject.len() > 255 {
        return Err(FlowError::Profile(
            p.id.as_str(),
            "the user's id is over 255 characters".into(),
        ));
    }
    let email =
        claim_text(info, &p.claims.email).filter(|e| crate::config::auth::looks_like_email(e));
    let email_verified = match info.get(&p.claims.email_verified) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        None => p.verified_without_claim,
        Some(_) => false,
    };
    let login = claim_text(info, "login")
        .or_else(|| claim_text(info, "preferred_username"))
        .or_else(|| claim_text(info, &p.claims.name))
        .or_else(|| {
            email
                .as_ref()
                .and_then(|e| e.split('@').next().map(String::from))
        })
        .map(|l| shown_name(&l))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "user".into());
    Ok(Profile {
        provider: p.id,
        subject,
        email,
        email_verified,
        login,
    })
}

/// A provider's name for a person as it may be shown: at most 100
/// characters, without control or invisible format characters (a
/// right-to-left override could make one name look like another).
fn shown_name(raw: &str) -> String {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    raw.chars()
        .filter(|c| !c.is_control() && c.general_category() != GeneralCategory::Format)
        .take(100)
        .collect::<String>()
        .trim()
        .to_string()
}

/// GitHub's primary e-mail if it is verified; otherwise the profile's public
/// e-mail, unverified.
fn github_email(emails: &Value, public: Option<String>) -> (Option<String>, bool) {
    let primary = emails.as_array().and_then(|list| {
        list.iter().find(|e| {
            e.get("primary").and_then(Value::as_bool) == Some(true)
                && e.get("verified").and_then(Value::as_bool) == Some(true)
        })
    });
    match primary.and_then(|e| e.get("email")).and_then(Value::as_str) {
        Some(email) if crate::config::auth::looks_like_email(email) => {
            (Some(email.to_string()), true)
        }
        _ => (public, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_lose_invisible_characters_and_length() {
        assert_eq!(shown_name("ad\u{202E}min\u{200B}"), "admin");
        assert_eq!(shown_name(&"x".repeat(5000)).len(), 100);
        assert_eq!(shown_name("\u{7}"), "");
    }

    #[test]
    fn only_a_verified_primary_github_email_counts() {
        let list = json!([
            {"email": "old@example.com", "primary": false, "verified": true},
            {"email": "me@example.com", "primary": true, "verified": true}
        ]);
        assert_eq!(
            github_email(&list, None),
            (Some("me@example.com".into()), true)
        );
        let unverified = json!([{"email": "me@example.com", "primary": true, "verified": false}]);
        assert_eq!(
            github_email(&unverified, Some("pub@example.com".into())),
            (Some("pub@example.com".into()), false)
        );
        assert_eq!(
            github_email(&json!({"message": "nope"}), None),
            (None, false)
        );
    }
}
