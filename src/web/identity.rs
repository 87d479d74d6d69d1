//! Who a request comes from: a bearer API token, or the user of its session
//! cookie — checked against the database on every request, so a revoked
//! token, a blocked user or a role change counts at once.

use axum::http::HeaderMap;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::auth::{Role, api_token};
use crate::db;
use crate::web::AppState;

/// Where the session keeps its user.
pub const SESSION_KEY: &str = "user";
/// A session ends this long after its login, however active (idle expiry is
/// the cookie's, in `sessions`).
pub const ABSOLUTE_SESSION_HOURS: i64 = 7 * 24;

/// What a session holds about its user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: String,
    /// The user's session epoch at login; a newer one in the database ends it.
    pub epoch: i64,
    /// The CSRF token of this session.
    pub csrf: String,
    /// Unix seconds of the login.
    pub login_at: i64,
    /// Unix seconds when the session was last saved: saving it again (at most
    /// every `REFRESH_SECONDS`) moves its idle expiry on.
    #[serde(default)]
    pub seen_at: i64,
}

/// How often an active session is saved again to keep it alive.
pub const REFRESH_SECONDS: i64 = 10 * 60;

/// A known caller.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: Option<String>,
    /// The username, or `token:NAME` for a token without owner.
    pub name: String,
    pub role: Role,
    /// The session's CSRF token (`None` for a bearer token, which needs none).
    pub csrf: Option<String>,
    /// The name of the API token used, if one was (shown in the audit log).
    pub token_name: Option<String>,
}

pub enum Caller {
    Anonymous,
    /// A bearer token was sent but opens nothing (unknown, revoked, expired,
    /// or its owner cannot sign in); the reason, safe to show.
    Refused(&'static str),
    Known(Identity),
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether a user may sign in at all.
fn can_sign_in(user: &db::users::User) -> bool {
    !user.blocked && user.status == "active"
}

pub async fn resolve(state: &AppState, headers: &HeaderMap, session: Option<&Session>) -> Caller {
    if let Some(token) = bearer(headers) {
        return from_token(state, token).await;
    }
    match session {
        Some(s) => from_session(state, s).await,
        None => Caller::Anonymous,
    }
}

async fn from_token(state: &AppState, token: &str) -> Caller {
    let Ok(Some(stored)) = db::api_tokens::find_live(&state.pool, &api_token::hash(token)).await
    else {
        return Caller::Refused("the API token is not known or was revoked");
    };
    if stored.expires_at.is_some_and(|e| e <= Utc::now()) {
        return Caller::Refused("the API token has expired");
    }
    let Ok(token_role) = stored.role.parse::<Role>() else {
        return Caller::Refused("the API token has no valid role");
    };
    let (role, name) = match &stored.user_id {
        None => (token_role, format!("token:{}", stored.name)),
        Some(id) => match db::users::by_id(&state.pool, id).await {
            Ok(Some(user)) if can_sign_in(&user) => {
                // Never more than its owner may do now.
                let owner = user.role.parse::<Role>().unwrap_or(Role::Readonly);
                (token_role.min(owner), user.username)
            }
            _ => return Caller::Refused("the API token's user cannot sign in"),
        },
    };
    // The last use is written at most once a minute: not a write per request.
    let stale = stored
        .last_used_at
        .is_none_or(|t| Utc::now() - t > chrono::Duration::minutes(1));
    if stale {
        let pool = state.pool.clone();
        let id = stored.id.clone();
        tokio::spawn(async move {
            let _ = db::api_tokens::touch(&pool, &id).await;
        });
    }
    Caller::Known(Identity {
        user_id: stored.user_id,
        name,
        role,
        csrf: None,
        token_name: Some(stored.name),
    })
}

async fn from_session(state: &AppState, session: &Session) -> Caller {
    let Ok(Some(held)) = session.get::<SessionUser>(SESSION_KEY).await else {
        return Caller::Anonymous;
    };
    let fresh = Utc::now().timestamp() - held.login_at < ABSOLUTE_SESSION_HOURS * 3600;
    let user = match db::users::by_id(&state.pool, &held.id).await {
        Ok(Some(u)) if fresh && can_sign_in(&u) && u.session_epoch == held.epoch => u,
        _ => {
            // Ended: blocked, role changed, deleted or too old. Forget it.
            let _ = session.flush().await;
            return Caller::Anonymous;
        }
    };
    let now = Utc::now().timestamp();
    if now - held.seen_at > REFRESH_SECONDS {
        let refreshed = SessionUser {
            seen_at: now,
            ..held.clone()
        };
        let _ = session.insert(SESSION_KEY, refreshed).await;
    }
    Caller::Known(Identity {
        role: user.role.parse().unwrap_or(Role::Readonly),
        user_id: Some(user.id),
        name: user.username,
        csrf: Some(held.csrf),
        token_name: None,
    })
}
