//! Cookie sessions: `ff_session`, HttpOnly, SameSite=Lax (an OAuth callback
//! comes back from another site), `Secure` when `BASE_URL` is https, ending
//! after 12 hours without a request (and 7 days after login, see `identity`).

use tower_sessions::cookie::SameSite;
use tower_sessions::cookie::time::Duration;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use super::AppState;

pub const COOKIE: &str = "ff_session";
pub const IDLE_HOURS: i64 = 12;

pub fn layer(state: &AppState) -> SessionManagerLayer<SqliteStore> {
    let https = state.config.base_url.starts_with("https://");
    SessionManagerLayer::new(crate::db::sessions::store(&state.pool))
        .with_name(COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(https)
        .with_expiry(Expiry::OnInactivity(Duration::hours(IDLE_HOURS)))
}

/// Deletes expired sessions at start and then hourly, until shutdown.
pub async fn delete_expired_hourly(
    pool: crate::db::Pool,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = crate::db::sessions::delete_expired(&pool).await {
            tracing::warn!(error = %e, "expired sessions were not deleted; trying again in an hour");
        }
    }
}
