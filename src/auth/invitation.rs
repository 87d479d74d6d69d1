//! Invitations: an admin names an e-mail and a role; the link (a random
//! token, stored only as its SHA-256, like API tokens) lets that person create
//! their account once before it expires — by signing in with a provider that
//! vouches for the same e-mail, or by choosing a local username and password.

use chrono::{Duration, Utc};

use super::{Role, api_token};
use crate::config::auth::looks_like_email;
use crate::db::{self, DbError, Pool, invitations::Invitation};

/// Validity of a new invitation, hours (Fast-Flow's `expires_hours`).
pub const DEFAULT_HOURS: i64 = 168;
pub const MAX_HOURS: i64 = 8760;

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("The e-mail {0:?} is not an e-mail address (`email`)")]
    Email(String),
    #[error("An invitation is valid for 1 to 8760 hours, not {0} (`expires_hours`)")]
    Hours(i64),
    #[error("no random numbers for the invitation's token")]
    Random,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A made invitation and its link (shown once).
pub struct Made {
    pub invitation: Invitation,
    pub link: String,
}

pub async fn create(
    pool: &Pool,
    base_url: &str,
    email: &str,
    role: Role,
    hours: i64,
    created_by: Option<&str>,
    created_by_id: Option<&str>,
) -> Result<Made, InviteError> {
    let email = email.trim();
    if !looks_like_email(email) {
        return Err(InviteError::Email(email.chars().take(100).collect()));
    }
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(InviteError::Hours(hours));
    }
    let made = api_token::generate().map_err(|_| InviteError::Random)?;
    let invitation = db::invitations::insert(
        pool,
        &db::invitations::NewInvitation {
            recipient_email: email,
            token_hash: &made.hash,
            role: role.as_str(),
            expires_at: Utc::now() + Duration::hours(hours),
            created_by,
            created_by_id,
        },
    )
    .await?;
    let link = format!(
        "{}/invite?token={}",
        base_url.trim_end_matches('/'),
        made.token.expose()
    );
    Ok(Made { invitation, link })
}

/// The open invitation the link's token names.
pub async fn find(pool: &Pool, token: &str) -> Result<Option<Invitation>, DbError> {
    if token.is_empty() || token.len() > 200 {
        return Ok(None);
    }
    db::invitations::find_open(pool, &api_token::hash(token)).await
}

/// Whether the invitation's maker may still invite: an active, unblocked admin
/// (or the operator's command-line token). An admin removed or demoted takes
/// their open invitations with them.
pub async fn maker_may_invite(pool: &Pool, inv: &Invitation) -> Result<bool, DbError> {
    match &inv.created_by_id {
        None => Ok(inv
            .created_by
            .as_deref()
            .is_some_and(|b| b.starts_with("token:"))),
        Some(id) => Ok(db::users::by_id(pool, id)
            .await?
            .is_some_and(|u| u.role == Role::Admin.as_str() && u.status == "active" && !u.blocked)),
    }
}

/// The open invitation the link's token names, if its maker may still invite.
pub async fn find_usable(pool: &Pool, token: &str) -> Result<Option<Invitation>, DbError> {
    match find(pool, token).await? {
        Some(inv) if maker_may_invite(pool, &inv).await? => Ok(Some(inv)),
        _ => Ok(None),
    }
}

/// Whether `email` is the invitation's, ignoring case.
pub fn is_for(inv: &Invitation, email: &str) -> bool {
    inv.recipient_email.eq_ignore_ascii_case(email.trim())
}
