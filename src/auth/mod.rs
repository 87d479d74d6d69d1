//! Who may do what: roles, passwords, personal API tokens, OAuth sign-in and
//! the decision who an OAuth identity is, invitations, and the checks every
//! request passes (host allow-list, cross-site writes, security headers).

pub mod api_token;
pub mod invitation;
pub mod login_decision;
pub mod oauth_flow;
pub mod password;
mod request_checks;
pub mod role;
pub mod setup_link;
pub mod token_command;

pub use request_checks::{access_guard, security_headers};
pub use role::Role;
