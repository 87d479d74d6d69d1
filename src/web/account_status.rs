//! The pages a sign-in ends on when it gives no session: a refusal with its
//! reason, or a held account (join request sent, waiting, rejected, blocked),
//! each with the way back that fits (Settings for a link, the invitation).

use askama::Template;
use askama_web::WebTemplate;
use axum::response::{IntoResponse, Response};

use crate::auth::login_decision::{Held, Purpose};

#[derive(Template, WebTemplate)]
#[template(path = "pages/account_status.html")]
pub struct AccountStatusPage {
    pub title: String,
    pub message: String,
    pub error: bool,
    /// Where to go from here: `(href, text)`.
    pub back: (String, String),
}

pub fn status_page(code: u16, title: &str, message: String, error: bool) -> Response {
    let back = ("/login".to_string(), "Back to sign-in".to_string());
    status_page_to(code, title, message, error, back)
}

pub fn status_page_to(
    code: u16,
    title: &str,
    message: String,
    error: bool,
    back: (String, String),
) -> Response {
    let status = axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK);
    let page = AccountStatusPage {
        title: title.into(),
        message,
        error,
        back,
    };
    (status, page).into_response()
}

/// Where a refused flow leads back to: Settings for a link, the invitation
/// for an invited sign-in, else the sign-in page.
pub fn back_from(purpose: &Purpose) -> (String, String) {
    match purpose {
        Purpose::Link { .. } => ("/settings".into(), "Back to Settings".into()),
        Purpose::Login {
            invitation: Some(token),
        } => (
            format!("/invite?token={}", urlencoded(token)),
            "Back to the invitation".into(),
        ),
        Purpose::Login { invitation: None } => ("/login".into(), "Back to sign-in".into()),
    }
}

fn urlencoded(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

pub fn held_page(why: Held, username: &str) -> Response {
    let (code, title, message) = match why {
        Held::Requested => (
            202,
            "Request sent",
            format!(
                "You asked to join as {username}. An administrator will approve or reject the request; sign in again once they have."
            ),
        ),
        Held::Pending => (
            403,
            "Waiting for approval",
            format!(
                "Your request to join as {username} has not been answered yet. An administrator will approve or reject it."
            ),
        ),
        Held::Rejected => (
            403,
            "Request rejected",
            format!(
                "An administrator rejected the request to join as {username}. Ask them if you think this is a mistake."
            ),
        ),
        Held::Blocked => (
            403,
            "Account blocked",
            format!("The account {username} is blocked. Ask an administrator."),
        ),
    };
    status_page(code, title, message, why != Held::Requested)
}

pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}
