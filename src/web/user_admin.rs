//! What an admin may do to users, shared by `/api/users` and the Users page:
//! create a local account, change a role, block, unblock, delete, answer a
//! join request, invite. Every change that affects what a user may do ends
//! their sessions at once, and none leaves the install without an active admin.

use crate::auth::{Role, invitation, password};
use crate::config::auth::looks_like_email;
use crate::db::{self, users::User};
use crate::web::identity::Identity;
use crate::web::sign_in_checks::{check_username, password_work};
use crate::web::{AppError, AppState};

pub async fn find(state: &AppState, id: &str) -> Result<User, AppError> {
    db::users::by_id(&state.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound("no such user".into()))
}

pub fn parse_role(raw: &str) -> Result<Role, AppError> {
    raw.parse()
        .map_err(|e: crate::auth::role::UnknownRole| AppError::BadRequest(e.to_string()))
}

/// A local account (username, password, optional e-mail).
pub async fn create_local(
    state: &AppState,
    username: &str,
    typed_password: String,
    email: Option<&str>,
    role: Role,
) -> Result<User, AppError> {
    let username = username.trim();
    check_username(username).map_err(AppError::BadRequest)?;
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = email
        && !looks_like_email(e)
    {
        return Err(AppError::BadRequest(format!(
            "`email`: {:?} is not an e-mail address",
            crate::pipelines::fields::shown(e)
        )));
    }
    if let Some(e) = email {
        e_mail_free(state, e).await?;
    }
    let hash = password_work(move || password::hash(&typed_password))
        .await
        .ok_or_else(|| AppError::internal("hashing a password", "the worker stopped"))?
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let made = db::users::insert(
        &state.pool,
        &db::users::NewUser {
            username,
            email,
            role: role.as_str(),
            password_hash: Some(&hash),
            status: "active",
        },
    )
    .await?
    .ok_or_else(|| AppError::Conflict("that username is taken".into()))?;
    tracing::info!(user = %made.username, role = %role, "local account created");
    Ok(made)
}

/// The answer to a change the last-admin rule guards.
fn kept(user: &User, done: db::users::Guarded) -> Result<(), AppError> {
    match done {
        db::users::Guarded::Done => Ok(()),
        db::users::Guarded::NotFound => Err(AppError::NotFound("no such user".into())),
        db::users::Guarded::LastAdmin => Err(AppError::Conflict(format!(
            "{} is the last active admin: make another user admin first",
            user.username
        ))),
    }
}

pub async fn change_role(state: &AppState, user: &User, role: Role) -> Result<(), AppError> {
    kept(
        user,
        db::users::set_role(&state.pool, &user.id, role.as_str()).await?,
    )?;
    tracing::info!(user = %user.username, role = %role, "role changed; their sessions ended");
    Ok(())
}

pub async fn set_blocked(state: &AppState, user: &User, blocked: bool) -> Result<(), AppError> {
    kept(
        user,
        db::users::set_blocked(&state.pool, &user.id, blocked).await?,
    )?;
    tracing::info!(user = %user.username, blocked, "user blocked or unblocked");
    Ok(())
}

pub async fn delete(state: &AppState, user: &User) -> Result<(), AppError> {
    kept(user, db::users::delete(&state.pool, &user.id).await?)?;
    tracing::info!(user = %user.username, "user deleted");
    Ok(())
}

/// Approve (`active`, with a role) or reject a join request. Only a request
/// still waiting (or rejected before) can be answered, so an active user is
/// never changed this way.
pub async fn answer(
    state: &AppState,
    user: &User,
    status: &str,
    role: Role,
) -> Result<(), AppError> {
    if user.status == "active" {
        return Err(AppError::Conflict(format!(
            "{} is already active; change the role instead",
            user.username
        )));
    }
    db::users::set_status(&state.pool, &user.id, status, role.as_str()).await?;
    tracing::info!(user = %user.username, status, role = %role, "join request answered");
    Ok(())
}

/// Refuses an e-mail another account already has: a provider's verified
/// e-mail links to one account, so two with the same e-mail would be a guess.
async fn e_mail_free(state: &AppState, email: &str) -> Result<(), AppError> {
    if let Some(holder) = db::users::by_email(&state.pool, email.trim())
        .await?
        .first()
    {
        return Err(AppError::Conflict(format!(
            "{} already has an account with the e-mail {}",
            holder.username,
            email.trim()
        )));
    }
    Ok(())
}

pub async fn invite(
    state: &AppState,
    who: &Identity,
    email: &str,
    role: Role,
    hours: i64,
) -> Result<invitation::Made, AppError> {
    e_mail_free(state, email).await?;
    let made = invitation::create(
        &state.pool,
        &state.config.base_url,
        email,
        role,
        hours,
        Some(&who.name),
        who.user_id.as_deref(),
    )
    .await
    .map_err(|e| match e {
        invitation::InviteError::Db(db) => AppError::from(db),
        other => AppError::BadRequest(other.to_string()),
    })?;
    tracing::info!(email = %made.invitation.recipient_email, role = %role, "invitation made");
    Ok(made)
}
