//! Who an OAuth identity is, in Fast-Flow's order: an account-linking flow in
//! progress → a known provider id → a user with the same **verified** e-mail
//! → `INITIAL_ADMIN_EMAIL` (verified) → a valid invitation for that e-mail →
//! otherwise a join request an admin answers. An unverified e-mail never
//! links to or matches anything, and is not stored on a user.

use serde::{Deserialize, Serialize};

use super::oauth_flow::Profile;
use super::{Role, invitation};
use crate::config::AuthEnv;
use crate::db::{self, DbError, Pool, identities::Linked, users::User};

/// Why a flow was started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Purpose {
    /// Signing in, perhaps with an invitation's token.
    Login { invitation: Option<String> },
    /// A signed-in user adds this provider to their account.
    Link { user_id: String },
}

/// How the user was found (logged and audited as `match=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Direct,
    Email,
    Link,
    InitialAdmin,
    Invitation,
    JoinRequest,
}

impl Match {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Email => "email",
            Self::Link => "link",
            Self::InitialAdmin => "initial_admin",
            Self::Invitation => "invitation",
            Self::JoinRequest => "join_request",
        }
    }
}

/// Why a known user gets no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A join request was made just now.
    Requested,
    Pending,
    Rejected,
    Blocked,
}

#[derive(Debug)]
pub enum Decision {
    SignIn {
        user: User,
        matched: Match,
    },
    /// The identity was added to the signed-in user's account.
    Linked {
        user: User,
    },
    Held {
        user: User,
        why: Held,
        matched: Match,
    },
    /// Not allowed; the reason, safe to show.
    Refused(String),
}

pub async fn decide(
    pool: &Pool,
    auth: &AuthEnv,
    label: &str,
    profile: &Profile,
    purpose: &Purpose,
) -> Result<Decision, DbError> {
    let provider = profile.provider.as_str();
    let verified_email = profile.email.as_deref().filter(|_| profile.email_verified);
    let link = |user_id: String, replace: bool| async move {
        db::identities::link(
            pool,
            &user_id,
            provider,
            &profile.subject,
            profile.email.as_deref(),
            Some(&profile.login),
            replace,
        )
        .await
    };

    if let Purpose::Link { user_id } = purpose {
        let user = match db::users::by_id(pool, user_id).await? {
            Some(u) if !u.blocked && u.status == "active" => u,
            _ => {
                return Ok(Decision::Refused(
                    "the account to link is gone, blocked or not active".into(),
                ));
            }
        };
        return Ok(match link(user.id.clone(), true).await? {
            Linked::Done => Decision::Linked { user },
            Linked::TakenByOther | Linked::UserHasAnother => Decision::Refused(format!(
                "this {label} account is already linked to another user; unlink it there first"
            )),
        });
    }

    if let Some(owner) = db::identities::owner(pool, provider, &profile.subject).await?
        && let Some(user) = db::users::by_id(pool, &owner).await?
    {
        db::identities::refresh(
            pool,
            provider,
            &profile.subject,
            profile.email.as_deref(),
            Some(&profile.login),
        )
        .await?;
        return Ok(by_status(user, Match::Direct));
    }

    if let Some(email) = verified_email
        && let Some(user) = db::users::by_email(pool, email).await?.into_iter().next()
    {
        match link(user.id.clone(), false).await? {
            Linked::Done => {}
            Linked::TakenByOther => {
                return Ok(Decision::Refused(format!(
                    "this {label} account is already linked to another user"
                )));
            }
            Linked::UserHasAnother => {
                return Ok(Decision::Refused(format!(
                    "the account with this e-mail signs in with another {label} account; use that one, or unlink it in Settings first"
                )));
            }
        }
        return Ok(by_status(user, Match::Email));
    }

    // Only while no active admin exists: once there is one, they decide who else is.
    if let (Some(email), Some(initial)) = (verified_email, &auth.initial_admin_email)
        && email.eq_ignore_ascii_case(initial)
        && db::users::count_admins(pool).await? == 0
    {
        let user = create_user(pool, &profile.login, Some(email), Role::Admin, "active").await?;
        link(user.id.clone(), false).await?;
        return Ok(Decision::SignIn {
            user,
            matched: Match::InitialAdmin,
        });
    }

    if let Purpose::Login {
        invitation: Some(token),
    } = purpose
    {
        let Some(inv) = invitation::find_usable(pool, token).await? else {
            return Ok(Decision::Refused(
                "this invitation link was used, revoked or has expired; ask for a new one".into(),
            ));
        };
        let Some(email) = verified_email.filter(|e| invitation::is_for(&inv, e)) else {
            let said = match (&profile.email, profile.email_verified) {
                (Some(e), true) => format!("{label} says your verified e-mail is {e}"),
                (Some(e), false) if invitation::is_for(&inv, e) => {
                    return Ok(Decision::Refused(format!(
                        "{label} has not verified your e-mail {e}: verify it at {label}, then open the invitation again"
                    )));
                }
                (Some(e), false) => format!("{label} has not verified your e-mail {e}"),
                (None, _) => format!("{label} gave no e-mail"),
            };
            return Ok(Decision::Refused(format!(
                "this invitation is for {}, but {said}; sign in with the invited account, or ask for an invitation to your address",
                inv.recipient_email
            )));
        };
        if !db::invitations::redeem(pool, &inv.id).await? {
            return Ok(Decision::Refused(
                "this invitation was just used; ask for a new one".into(),
            ));
        }
        let role = inv.role.parse().unwrap_or(Role::Readonly);
        let user = create_user(pool, &profile.login, Some(email), role, "active").await?;
        db::invitations::set_used_by(pool, &inv.id, &user.id).await?;
        link(user.id.clone(), false).await?;
        return Ok(Decision::SignIn {
            user,
            matched: Match::Invitation,
        });
    }

    let user = create_user(
        pool,
        &profile.login,
        verified_email,
        Role::Readonly,
        "pending",
    )
    .await?;
    link(user.id.clone(), false).await?;
    Ok(Decision::Held {
        user,
        why: Held::Requested,
        matched: Match::JoinRequest,
    })
}

fn by_status(user: User, matched: Match) -> Decision {
    let why = if user.blocked {
        Held::Blocked
    } else if user.status == "pending" {
        Held::Pending
    } else if user.status == "rejected" {
        Held::Rejected
    } else {
        return Decision::SignIn { user, matched };
    };
    Decision::Held { user, why, matched }
}

/// A username from the provider's login: allowed characters only, made
/// unique with a number.
fn username_base(login: &str) -> String {
    let cleaned: String = login
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@') {
                c
            } else {
                '_'
            }
        })
        .take(50)
        .collect();
    if cleaned.trim_matches('_').is_empty() {
        "user".into()
    } else {
        cleaned
    }
}

async fn create_user(
    pool: &Pool,
    login: &str,
    email: Option<&str>,
    role: Role,
    status: &str,
) -> Result<User, DbError> {
    let base = username_base(login);
    for n in 1..=50u32 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let new = db::users::NewUser {
            username: &name,
            email,
            role: role.as_str(),
            password_hash: None,
            status,
        };
        if let Some(user) = db::users::insert(pool, &new).await? {
            return Ok(user);
        }
    }
    // Fifty taken: a random suffix cannot collide in practice.
    let random = uuid::Uuid::now_v7().simple().to_string();
    let name = format!("{base}-{}", &random[24..]);
    let new = db::users::NewUser {
        username: &name,
        email,
        role: role.as_str(),
        password_hash: None,
        status,
    };
    db::users::insert(pool, &new)
        .await?
        .ok_or_else(|| DbError::Query(sqlx::Error::RowNotFound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_keep_allowed_characters_only() {
        assert_eq!(username_base("Ada Lovelace"), "Ada_Lovelace");
        assert_eq!(username_base("<script>"), "_script_");
        assert_eq!(username_base("   "), "user");
        assert_eq!(username_base(&"x".repeat(80)).len(), 50);
    }
}
