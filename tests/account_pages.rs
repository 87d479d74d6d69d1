//! The Users, Settings and Audit pages over real HTTP with cookie sessions:
//! an invitation made on the page and accepted with a local account (once),
//! join requests answered, the last admin kept; personal API tokens made no
//! stronger than their owner, shown once, used, revoked; a password change
//! that keeps the current session; and the audit log of all of it, filtered,
//! paged and exported as CSV that a spreadsheet cannot run.

mod common;

use common::TestApp;
use common::session::{browser, csrf};
use reqwest::StatusCode;
use serde_json::Value;

/// Signs `username` in with a password; the session's CSRF token.
async fn sign_in(b: &reqwest::Client, app: &TestApp, username: &str, password: &str) -> String {
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{username} signs in");
    csrf(b, app).await
}

async fn post_form(
    b: &reqwest::Client,
    app: &TestApp,
    path: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", csrf));
    let r = b
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .expect("POST");
    (r.status(), r.text().await.unwrap_or_default())
}

/// The value of the read-only field `id` on a page.
fn shown_once(page: &str, id: &str) -> String {
    let marker = format!(r#"id="{id}" class="wide" value=""#);
    page.split(&marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {id} on the page"))
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

async fn user_id(app: &TestApp, name: &str) -> String {
    let (_, users) = app.get_json("/api/users").await;
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .and_then(|u| u["id"].as_str())
        .unwrap_or_else(|| panic!("no user {name}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_invite_answer_and_keep_an_admin_from_the_users_page() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let (s, _) = app
        .post_json(
            "/api/users",
            r#"{"username": "root", "password": "root-password-1", "role": "ADMIN"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let admin = browser();
    let token = sign_in(&admin, &app, "root", "root-password-1").await;

    // An invitation made on the page: its link is shown once.
    let (s, page) = post_form(
        &admin,
        &app,
        "/users/invite",
        &token,
        &[
            ("email", "ivy@example.com"),
            ("role", "WRITE"),
            ("hours", "24"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let link = shown_once(&page, "new-link");
    assert!(link.contains("/invite?token=ff_"), "{link}");
    let (_, again) = (
        0,
        admin
            .get(app.url("/users"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(!again.contains(&link), "the link is not shown again");
    assert!(again.contains("ivy@example.com") && again.contains(">open<"));
    // A bad e-mail or range is said, with its field.
    let (s, page) = post_form(
        &admin,
        &app,
        "/users/invite",
        &token,
        &[("email", "not-mail"), ("role", "WRITE")],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("is not an e-mail address"));
    let (s, page) = post_form(
        &admin,
        &app,
        "/users/invite",
        &token,
        &[
            ("email", "a@example.com"),
            ("role", "WRITE"),
            ("hours", "9000"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("expires_hours"));

    // Accepted with a local account: the invitation's role, signed in, used once.
    let ivy = browser();
    let invite_page = ivy.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(invite_page.contains("ivy@example.com") && invite_page.contains("WRITE"));
    let invite_token = link.split("token=").nth(1).unwrap();
    let accept = |who: &'static str| {
        let b = if who == "ivy" { ivy.clone() } else { browser() };
        let url = app.url("/invite");
        let token = invite_token.to_string();
        async move {
            b.post(url)
                .form(&[
                    ("token", token.as_str()),
                    ("username", who),
                    ("password", "ivy-password-12"),
                    ("password2", "ivy-password-12"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = accept("ivy").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let me: Value = ivy
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("ivy"), Some("WRITE"))
    );
    let r = accept("ivan").await;
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "an invitation works once"
    );
    let page = admin
        .get(app.url("/users"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">used<"));

    // A WRITE user cannot open the Users page.
    assert_eq!(
        ivy.get(app.url("/users")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // The last active admin cannot be blocked, demoted or deleted from the page.
    let root_id = user_id(&app, "root").await;
    let (s, page) = post_form(
        &admin,
        &app,
        &format!("/users/{root_id}/block"),
        &token,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(page.contains("last active admin"));
    let (s, _) = post_form(
        &admin,
        &app,
        &format!("/users/{root_id}/role"),
        &token,
        &[("role", "WRITE")],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Changing ivy's role on the page ends her session at once.
    let ivy_id = user_id(&app, "ivy").await;
    let (s, page) = post_form(
        &admin,
        &app,
        &format!("/users/{ivy_id}/role"),
        &token,
        &[("role", "READONLY")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(
        ivy.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // An invitation revoked on the page stops working.
    let (_, page) = post_form(
        &admin,
        &app,
        "/users/invite",
        &token,
        &[("email", "late@example.com"), ("role", "READONLY")],
    )
    .await;
    let late = shown_once(&page, "new-link");
    let (_, invites) = app.get_json("/api/users/invites").await;
    let id = invites
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["recipient_email"] == "late@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = post_form(
        &admin,
        &app,
        &format!("/users/invites/{id}/revoke"),
        &token,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        browser().get(&late).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_tokens_are_no_stronger_than_their_owner_and_passwords_change_in_place() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let (s, _) = app
        .post_json(
            "/api/users",
            r#"{"username": "wendy", "password": "wendy-password-1", "role": "WRITE"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let wendy = browser();
    let token = sign_in(&wendy, &app, "wendy", "wendy-password-1").await;
    let settings = wendy
        .get(app.url("/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        settings.contains("<option>WRITE</option>") && !settings.contains("<option>ADMIN</option>")
    );

    let (s, page) = post_form(
        &wendy,
        &app,
        "/settings/tokens",
        &token,
        &[("name", "ci"), ("role", "ADMIN"), ("days", "30")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(page.contains("cannot do more than you"));
    let (s, page) = post_form(
        &wendy,
        &app,
        "/settings/tokens",
        &token,
        &[("name", "ci"), ("role", "WRITE"), ("days", "0")],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("`days`"));
    let (s, page) = post_form(
        &wendy,
        &app,
        "/settings/tokens",
        &token,
        &[("name", "ci"), ("role", "WRITE"), ("days", "30")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let made = shown_once(&page, "new-token");
    assert!(made.starts_with("ff_"));
    let page = wendy
        .get(app.url("/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(&made), "shown once");
    assert!(
        page.contains(">ci<") && page.contains("never"),
        "listed, not used yet"
    );

    // It works as a bearer token, with wendy's role, and its use is noted.
    let api = common::client_with_token(&made);
    let me: Value = api
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            me["username"].as_str(),
            me["role"].as_str(),
            me["via"].as_str()
        ),
        (Some("wendy"), Some("WRITE"), Some("token"))
    );
    let mut noted = false;
    for _ in 0..50 {
        let page = wendy
            .get(app.url("/settings"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let row = page
            .split(">ci<")
            .nth(1)
            .unwrap_or_default()
            .split("</tr>")
            .next()
            .unwrap_or_default()
            .to_string();
        if row.matches("UTC").count() >= 3 {
            noted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(noted, "the last use is shown");
    // A name in use is refused; revoking stops the token at once.
    let (s, _) = post_form(
        &wendy,
        &app,
        "/settings/tokens",
        &token,
        &[("name", "ci"), ("role", "READONLY")],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let page = wendy
        .get(app.url("/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = page
        .split("/settings/tokens/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let (s, _) = post_form(
        &wendy,
        &app,
        &format!("/settings/tokens/{id}/revoke"),
        &token,
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        api.get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // A password change needs the current one, keeps this session and ends the others.
    let other = browser();
    sign_in(&other, &app, "wendy", "wendy-password-1").await;
    let (s, page) = post_form(
        &wendy,
        &app,
        "/settings/password",
        &token,
        &[
            ("current", "wrong-password-99"),
            ("password", "wendy-new-password"),
            ("password2", "wendy-new-password"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(page.contains("current password is wrong"));
    let (s, page) = post_form(
        &wendy,
        &app,
        "/settings/password",
        &token,
        &[
            ("current", "wendy-password-1"),
            ("password", "wendy-new-password"),
            ("password2", "wendy-new-password"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(
        wendy
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        other
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = browser()
        .post(app.url("/login"))
        .form(&[("username", "wendy"), ("password", "wendy-password-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old password is gone"
    );
    sign_in(&browser(), &app, "wendy", "wendy-new-password").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_did_what_and_exports_safely() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let (s, _) = app
        .post_json(
            "/api/users",
            r#"{"username": "rita", "password": "rita-password-12", "role": "READONLY"}"#,
        )
        .await;
    assert_eq!(s, 201);
    // Failed sign-ins: a name that cannot be a username is not kept; one that
    // can, and starts like a spreadsheet formula, is defused in the CSV.
    for name in ["=HYPERLINK(\"http://evil.example\",\"x\")", "-2-3@cmd"] {
        let r = browser()
            .post(app.url("/login"))
            .form(&[("username", name), ("password", "nope-nope-nope")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let rita = browser();
    let token = sign_in(&rita, &app, "rita", "rita-password-12").await;
    // A READONLY user's attempt to change something is refused and recorded as denied.
    let (s, _) = post_form(&rita, &app, "/pipelines/refresh", &token, &[]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A secret made through the API: its name is recorded, never its value.
    let (s, _) = app
        .post_json(
            "/api/secrets",
            r#"{"key": "DB_PASSWORD", "value": "hunter2-audit-value"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app.post_json("/api/pipelines/p/run", "{}").await;
    assert_eq!(s, 200);

    let (s, all) = app.get_json("/api/audit?limit=500").await;
    assert_eq!(s, 200);
    let entries = all["entries"].as_array().unwrap();
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {all}"))
    };
    assert_eq!(find("user.create")["actor"], "token:test-admin");
    assert_eq!(find("login")["actor"], "rita");
    assert_eq!(find("login")["client_addr"], "127.0.0.1");
    assert_eq!(find("login.failed")["outcome"], "failed");
    let denied = find("pipelines.refresh");
    assert_eq!(
        (denied["actor"].as_str(), denied["outcome"].as_str()),
        (Some("rita"), Some("denied"))
    );
    assert!(
        find("secret.create")["detail"]
            .as_str()
            .unwrap()
            .contains("DB_PASSWORD")
    );
    assert_eq!(find("run.start")["target"], "/api/pipelines/p/run");
    assert!(
        !all.to_string().contains("hunter2-audit-value"),
        "no secret value in the log"
    );

    // Filters, a family of actions, keyset pages.
    let (_, logins) = app.get_json("/api/audit?action=login.&limit=500").await;
    let actions: Vec<&str> = logins["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions
            .iter()
            .all(|a| *a == "login" || a.starts_with("login.")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"login") && actions.contains(&"login.failed"),
        "{actions:?}"
    );
    let (_, first) = app.get_json("/api/audit?limit=2").await;
    let before = first["next_before"].as_i64().expect("a next page");
    let (_, second) = app
        .get_json(&format!("/api/audit?limit=2&before={before}"))
        .await;
    let ids = |v: &Value| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert!(ids(&second).iter().all(|i| *i < before) && !ids(&second).is_empty());
    let (s, bad) = app.get_json("/api/audit?since=yesterday").await;
    assert_eq!(s, 400);
    assert!(bad["detail"].as_str().unwrap().contains("`since`"));
    let (_, none) = app.get_json("/api/audit?actor=nobody").await;
    assert!(none["entries"].as_array().unwrap().is_empty());

    // The CSV: every row, formulas defused.
    let csv = app
        .client
        .get(app.url("/api/audit/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("id,at_utc,actor,actor_id,"), "{csv}");
    assert!(csv.contains(",'-2-3@cmd,"), "{csv}");
    assert!(
        csv.contains("(not a valid username)") && !csv.contains("HYPERLINK"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().count(),
        entries.len() + 1,
        "the header and every entry"
    );

    // The page shows and filters the same, and is the admin's only.
    let page = app
        .client
        .get(app.url("/audit?outcome=denied"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let table = page.split("<tbody>").nth(1).expect("a table of entries");
    assert!(
        table.contains("pipelines.refresh") && !table.contains("secret.create"),
        "{table}"
    );
    assert_eq!(
        rita.get(app.url("/audit")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}
