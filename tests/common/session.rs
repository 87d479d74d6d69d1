//! A browser as the sign-in tests need one: its own cookie jar, redirects
//! not followed (each step is looked at), the CSRF token of its session, and
//! a free port to put into `BASE_URL` before the app starts.

use super::TestApp;

/// A client with its own cookie jar that does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A port free now (for `PORT` and `BASE_URL`, which OAuth callbacks need known).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The `Location` of a redirect.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_string()
}

/// The CSRF token of the browser's session, read from a signed-in page.
pub async fn csrf(b: &reqwest::Client, app: &TestApp) -> String {
    let page = b
        .get(app.url("/settings"))
        .send()
        .await
        .expect("GET /settings")
        .text()
        .await
        .unwrap_or_default();
    page.split(r#""X-CSRF-Token": ""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in:\n{page}"))
        .to_string()
}
