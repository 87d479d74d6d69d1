//! The sign-in settings as the environment gives them (Fast-Flow's names):
//! which OAuth providers are configured, whether local accounts may sign in,
//! and the e-mail of the initial admin.

use std::collections::HashMap;

use super::ConfigError;
use super::values::{err, in_range, parse_bool};
use crate::secrets::SecretString;

/// The providers Fast-Flow knows, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderId {
    Github,
    Google,
    Microsoft,
    Custom,
}

impl ProviderId {
    pub const ALL: [ProviderId; 4] = [Self::Github, Self::Google, Self::Microsoft, Self::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Google => "google",
            Self::Microsoft => "microsoft",
            Self::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Which userinfo claims hold what (the generic provider makes them settable).
#[derive(Debug, Clone)]
pub struct Claims {
    pub id: String,
    pub email: String,
    pub name: String,
    pub email_verified: String,
}

impl Default for Claims {
    fn default() -> Self {
        Self {
            id: "sub".into(),
            email: "email".into(),
            name: "name".into(),
            email_verified: "email_verified".into(),
        }
    }
}

/// One configured OAuth 2 / OIDC provider.
#[derive(Debug, Clone)]
pub struct OAuthProvider {
    pub id: ProviderId,
    /// The button's text ("GitHub", or `CUSTOM_OAUTH_NAME`).
    pub label: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    /// GitHub only: where the user's e-mails and their verification are listed.
    pub emails_url: Option<String>,
    pub scopes: Vec<String>,
    pub claims: Claims,
    /// Whether an e-mail counts as verified when the provider sends no claim
    /// about it: only for a single-tenant Microsoft Entra ID app, whose
    /// directory is the install's own.
    pub verified_without_claim: bool,
}

/// `GITHUB_*`, `GOOGLE_*`, `MICROSOFT_*`, `CUSTOM_OAUTH_*`, `LOCAL_LOGIN_ENABLED`,
/// `INITIAL_ADMIN_EMAIL`.
#[derive(Debug, Clone, Default)]
pub struct AuthEnv {
    pub providers: Vec<OAuthProvider>,
    /// Username + password sign-in (default: on while no provider is configured).
    pub local_login: bool,
    pub initial_admin_email: Option<String>,
    /// OAuth authorize and callback requests per minute and client address
    /// (`OAUTH_RATE_LIMIT`, 1–100000, default 30: 15 sign-ins).
    pub oauth_rate_limit: u32,
}

impl AuthEnv {
    pub fn provider(&self, id: ProviderId) -> Option<&OAuthProvider> {
        self.providers.iter().find(|p| p.id == id)
    }

    pub(super) fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let pair = |id: &'static str, secret: &'static str| -> Result<_, ConfigError> {
            match (get(id), get(secret)) {
                (Some(i), Some(s)) => Ok(Some((i, SecretString::new(s)))),
                (None, None) => Ok(None),
                (Some(i), None) => Err(err(id, &i, format!("{secret} is missing"))),
                (None, Some(_)) => Err(err(secret, "<redacted>", format!("{id} is missing"))),
            }
        };
        let url = |var: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = get(var).unwrap_or_else(|| default.to_string());
            check_url(var, &value)?;
            Ok(value.trim_end_matches('/').to_string())
        };
        let words = |raw: String| raw.split_whitespace().map(String::from).collect::<Vec<_>>();
        let mut providers = Vec::new();
        if let Some((client_id, client_secret)) = pair("GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET")?
        {
            // GitHub Enterprise Server: its own sign-in and API addresses.
            let web = url("GITHUB_OAUTH_URL", "https://github.com")?;
            let api = url("GITHUB_API_URL", "https://api.github.com")?;
            providers.push(OAuthProvider {
                id: ProviderId::Github,
                label: "GitHub".into(),
                client_id,
                client_secret,
                authorize_url: format!("{web}/login/oauth/authorize"),
                token_url: format!("{web}/login/oauth/access_token"),
                userinfo_url: format!("{api}/user"),
                emails_url: Some(format!("{api}/user/emails")),
                scopes: words("read:user user:email".into()),
                claims: Claims {
                    id: "id".into(),
                    email: "email".into(),
                    name: "name".into(),
                    email_verified: "email_verified".into(),
                },
                verified_without_claim: false,
            });
        }
        if let Some((client_id, client_secret)) = pair("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET")?
        {
            providers.push(OAuthProvider {
                id: ProviderId::Google,
                label: "Google".into(),
                client_id,
                client_secret,
                authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
                token_url: "https://oauth2.googleapis.com/token".into(),
                userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
                emails_url: None,
                scopes: words("openid email profile".into()),
                claims: Claims::default(),
                verified_without_claim: false,
            });
        }
        if let Some((client_id, client_secret)) =
            pair("MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET")?
        {
            let tenant = get("MICROSOFT_TENANT_ID").unwrap_or_else(|| "common".into());
            if !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
            {
                return Err(err(
                    "MICROSOFT_TENANT_ID",
                    &tenant,
                    "a tenant id (GUID), a domain, or common / organizations / consumers",
                ));
            }
            let multi_tenant = matches!(
                tenant.to_ascii_lowercase().as_str(),
                "common" | "organizations" | "consumers"
            );
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            providers.push(OAuthProvider {
                id: ProviderId::Microsoft,
                label: "Microsoft".into(),
                client_id,
                client_secret,
                authorize_url: format!("{base}/authorize"),
                token_url: format!("{base}/token"),
                userinfo_url: "https://graph.microsoft.com/oidc/userinfo".into(),
                emails_url: None,
                scopes: words("openid email profile".into()),
                claims: Claims::default(),
                verified_without_claim: !multi_tenant,
            });
        }
        if let Some((client_id, client_secret)) =
            pair("CUSTOM_OAUTH_CLIENT_ID", "CUSTOM_OAUTH_CLIENT_SECRET")?
        {
            let need = |var: &'static str| -> Result<String, ConfigError> {
                let value = get(var).ok_or_else(|| {
                    err(
                        var,
                        "",
                        "needed with CUSTOM_OAUTH_CLIENT_ID (the provider's URL)",
                    )
                })?;
                check_url(var, &value)?;
                Ok(value)
            };
            let claim = |var: &str, default: &str| get(var).unwrap_or_else(|| default.into());
            providers.push(OAuthProvider {
                id: ProviderId::Custom,
                label: get("CUSTOM_OAUTH_NAME").unwrap_or_else(|| "Custom".into()),
                client_id,
                client_secret,
                authorize_url: need("CUSTOM_OAUTH_AUTHORIZE_URL")?,
                token_url: need("CUSTOM_OAUTH_TOKEN_URL")?,
                userinfo_url: need("CUSTOM_OAUTH_USERINFO_URL")?,
                emails_url: None,
                scopes: words(claim("CUSTOM_OAUTH_SCOPES", "openid email profile")),
                claims: Claims {
                    id: claim("CUSTOM_OAUTH_CLAIM_ID", "sub"),
                    email: claim("CUSTOM_OAUTH_CLAIM_EMAIL", "email"),
                    name: claim("CUSTOM_OAUTH_CLAIM_NAME", "name"),
                    email_verified: claim("CUSTOM_OAUTH_CLAIM_EMAIL_VERIFIED", "email_verified"),
                },
                verified_without_claim: false,
            });
        }
        let local_login = match get("LOCAL_LOGIN_ENABLED") {
            None => providers.is_empty(),
            raw => parse_bool(raw, "LOCAL_LOGIN_ENABLED")?,
        };
        let initial_admin_email = get("INITIAL_ADMIN_EMAIL");
        if let Some(e) = &initial_admin_email
            && !looks_like_email(e)
        {
            return Err(err("INITIAL_ADMIN_EMAIL", e, "expected an e-mail address"));
        }
        let oauth_rate_limit = in_range(
            get("OAUTH_RATE_LIMIT"),
            "OAUTH_RATE_LIMIT",
            30,
            1,
            100_000,
            "requests per minute per client",
        )?;
        Ok(Self {
            providers,
            local_login,
            initial_admin_email,
            oauth_rate_limit,
        })
    }
}

/// `name@domain`, no spaces, at most 254 characters.
pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An http(s) URL; plain http only to a loopback address (a provider on this
/// machine), since a code or token sent in the clear could be read on the way.
/// No user or password inside it (`http://127.0.0.1@elsewhere` is elsewhere).
fn check_url(var: &'static str, value: &str) -> Result<(), ConfigError> {
    use oauth2::url::{Host, Url};
    let bad = |why: &str| err(var, value, why);
    let url = Url::parse(value).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("a URL with a user or password in it"));
    }
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(bad(
            "expected an https:// URL (http:// only to this machine)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<AuthEnv, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AuthEnv::from_vars(&vars)
    }

    #[test]
    fn local_login_defaults_to_on_without_providers() {
        let none = env(&[]).unwrap();
        assert!(none.local_login && none.providers.is_empty());
        let gh = env(&[("GITHUB_CLIENT_ID", "i"), ("GITHUB_CLIENT_SECRET", "s")]).unwrap();
        assert!(!gh.local_login);
        assert_eq!(gh.providers[0].userinfo_url, "https://api.github.com/user");
        let both = env(&[
            ("GITHUB_CLIENT_ID", "i"),
            ("GITHUB_CLIENT_SECRET", "s"),
            ("LOCAL_LOGIN_ENABLED", "true"),
        ])
        .unwrap();
        assert!(both.local_login);
    }

    #[test]
    fn half_configured_providers_and_bad_urls_are_named() {
        let e = env(&[("GOOGLE_CLIENT_ID", "i")]).unwrap_err();
        assert_eq!(e.var, "GOOGLE_CLIENT_ID");
        assert!(e.reason.contains("GOOGLE_CLIENT_SECRET"));
        let e = env(&[
            ("CUSTOM_OAUTH_CLIENT_ID", "i"),
            ("CUSTOM_OAUTH_CLIENT_SECRET", "s"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "CUSTOM_OAUTH_AUTHORIZE_URL");
        let e = env(&[
            ("CUSTOM_OAUTH_CLIENT_ID", "i"),
            ("CUSTOM_OAUTH_CLIENT_SECRET", "s"),
            ("CUSTOM_OAUTH_AUTHORIZE_URL", "http://idp.example.com/auth"),
        ])
        .unwrap_err();
        assert!(e.reason.contains("https"), "{e}");
        // A loopback address as the user part of the URL is not loopback.
        let e = env(&[
            ("CUSTOM_OAUTH_CLIENT_ID", "i"),
            ("CUSTOM_OAUTH_CLIENT_SECRET", "s"),
            (
                "CUSTOM_OAUTH_AUTHORIZE_URL",
                "http://127.0.0.1:80@idp.example.com/authorize",
            ),
        ])
        .unwrap_err();
        assert_eq!(e.var, "CUSTOM_OAUTH_AUTHORIZE_URL");
        assert!(super::check_url("X", "http://localhost:9000/auth").is_ok());
        assert!(super::check_url("X", "http://[::1]/auth").is_ok());
        assert!(super::check_url("X", "http://127.0.0.2.example.com/auth").is_err());
        let e = env(&[
            ("MICROSOFT_CLIENT_ID", "i"),
            ("MICROSOFT_CLIENT_SECRET", "s"),
            ("MICROSOFT_TENANT_ID", "x/../y"),
        ])
        .unwrap_err();
        assert_eq!(e.var, "MICROSOFT_TENANT_ID");
        assert!(env(&[("INITIAL_ADMIN_EMAIL", "not an email")]).is_err());
        // The secret itself is never in an error.
        let e = env(&[("GITHUB_CLIENT_SECRET", "hunter2-very-secret")]).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn only_a_single_tenant_microsoft_app_trusts_a_missing_verified_claim() {
        let ms = |tenant: &str| {
            env(&[
                ("MICROSOFT_CLIENT_ID", "i"),
                ("MICROSOFT_CLIENT_SECRET", "s"),
                ("MICROSOFT_TENANT_ID", tenant),
            ])
            .unwrap()
            .providers[0]
                .verified_without_claim
        };
        assert!(!ms("common"));
        assert!(!ms("Organizations"));
        assert!(ms("0b1c7a9e-1111-2222-3333-444455556666"));
    }
}
