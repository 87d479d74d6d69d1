//! A stand-in OAuth 2 / OIDC provider on loopback, faithful where our client
//! depends on it: `/authorize` takes a code challenge (S256 only) and
//! redirects back with a one-time code and the state it was sent; `/token`
//! checks the client's credentials (HTTP Basic or form), the code (once), the
//! redirect URI and the PKCE verifier against the challenge, as RFC 7636
//! says; `/userinfo` answers the profile the test chose for that sign-in.
//! Every refused token request is kept with its reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "fastflow-test-client";
pub const CLIENT_SECRET: &str = "stand-in-client-secret-9f3k";

struct Grant {
    redirect_uri: String,
    challenge: String,
    profile: Value,
}

#[derive(Default)]
struct Inner {
    /// The profile the next `/authorize` signs in as.
    next_profile: Value,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Value>,
    /// Why token requests were refused.
    refused: Vec<String>,
    /// Query strings of the authorization requests seen.
    authorize_requests: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct StandInIdp {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl StandInIdp {
    pub async fn start() -> StandInIdp {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            // GitHub's paths (GitHub Enterprise Server: GITHUB_OAUTH_URL, GITHUB_API_URL).
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(token))
            .route("/api/user", get(userinfo))
            .route("/api/user/emails", get(github_emails))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stand-in provider");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandInIdp { base, inner }
    }

    /// The generic provider's settings (`CUSTOM_OAUTH_*`) pointing here.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CUSTOM_OAUTH_CLIENT_ID".into(), CLIENT_ID.into()),
            ("CUSTOM_OAUTH_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            (
                "CUSTOM_OAUTH_AUTHORIZE_URL".into(),
                format!("{}/authorize", self.base),
            ),
            (
                "CUSTOM_OAUTH_TOKEN_URL".into(),
                format!("{}/token", self.base),
            ),
            (
                "CUSTOM_OAUTH_USERINFO_URL".into(),
                format!("{}/userinfo", self.base),
            ),
            ("CUSTOM_OAUTH_NAME".into(), "Stand-in IdP".into()),
        ]
    }

    /// The GitHub provider's settings pointing here.
    pub fn github_env(&self) -> Vec<(String, String)> {
        vec![
            ("GITHUB_CLIENT_ID".into(), CLIENT_ID.into()),
            ("GITHUB_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            ("GITHUB_OAUTH_URL".into(), self.base.clone()),
            ("GITHUB_API_URL".into(), format!("{}/api", self.base)),
        ]
    }

    /// Who signs in at the next authorization (for GitHub, the `/user`
    /// answer plus an `emails` list that `/user/emails` answers).
    pub fn sign_in_as(&self, profile: Value) {
        self.lock().next_profile = profile;
    }

    pub fn refused(&self) -> Vec<String> {
        self.lock().refused.clone()
    }

    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.lock().authorize_requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn random() -> String {
    uuid::Uuid::now_v7().simple().to_string() + &uuid::Uuid::now_v7().simple().to_string()[16..]
}

type Shared = State<Arc<Mutex<Inner>>>;

async fn authorize(State(inner): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.authorize_requests.push(q.clone());
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code" || get("client_id") != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "unknown client or response type").into_response();
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() != 43 {
        return (StatusCode::BAD_REQUEST, "PKCE with S256 is required").into_response();
    }
    let code = random();
    let grant = Grant {
        redirect_uri: get("redirect_uri"),
        challenge: get("code_challenge"),
        profile: inner.next_profile.clone(),
    };
    inner.codes.insert(code.clone(), grant);
    let sep = if get("redirect_uri").contains('?') {
        '&'
    } else {
        '?'
    };
    let back = format!(
        "{}{sep}code={code}&state={}",
        get("redirect_uri"),
        urlencoding(&get("state"))
    );
    Redirect::to(&back).into_response()
}

fn urlencoding(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let expected = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    basic.as_deref() == Some(expected.as_str())
        || (form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET))
}

async fn token(
    State(inner): Shared,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let refuse = |inner: &mut Inner, error: &str, why: &str| {
        inner.refused.push(why.to_string());
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": why})),
        )
            .into_response()
    };
    if !client_ok(&headers, &form) {
        return refuse(&mut inner, "invalid_client", "wrong client credentials");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse(
            &mut inner,
            "unsupported_grant_type",
            "expected authorization_code",
        );
    }
    let code = form.get("code").cloned().unwrap_or_default();
    // A code is used once, whatever happens next.
    let Some(grant) = inner.codes.remove(&code) else {
        return refuse(&mut inner, "invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse(&mut inner, "invalid_grant", "redirect_uri differs");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    if verifier.len() < 43 || computed != grant.challenge {
        return refuse(&mut inner, "invalid_grant", "PKCE verification failed");
    }
    let access = random();
    inner.tokens.insert(access.clone(), grant.profile);
    Json(json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600}))
        .into_response()
}

async fn userinfo(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match inner.tokens.get(token) {
        Some(profile) => Json(profile.clone()).into_response(),
        None => (StatusCode::UNAUTHORIZED, "unknown access token").into_response(),
    }
}

/// GitHub's `/user/emails`: the `emails` list of the profile signed in.
async fn github_emails(State(inner): Shared, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match inner.tokens.get(token) {
        Some(profile) => Json(profile.get("emails").cloned().unwrap_or(json!([]))).into_response(),
        None => (StatusCode::UNAUTHORIZED, "unknown access token").into_response(),
    }
}
