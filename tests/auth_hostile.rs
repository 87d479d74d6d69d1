//! The attacks found against sign-in, each kept as a test: two admins blocking
//! each other at once, a token turning itself into a session, a half-done
//! link flow finished by another user, a verified e-mail swapping a user's
//! identity, an initial admin recreated after deletion, an invitation whose
//! maker lost the admin role, a join request ending first-run setup, and a
//! client naming its own address in `X-Forwarded-For`.

mod common;

use common::TestApp;
use common::oidc::StandInIdp;
use common::session::{browser, free_port, location};
use reqwest::{StatusCode, redirect::Policy};
use serde_json::{Value, json};

async fn start(idp: &StandInIdp, extra: &[(&str, &str)]) -> TestApp {
    let port = free_port().to_string();
    let mut env: Vec<(String, String)> = idp.env();
    env.push(("BASE_URL".into(), format!("http://127.0.0.1:{port}")));
    env.push(("PORT".into(), port));
    env.push(("LOCAL_LOGIN_ENABLED".into(), "true".into()));
    env.push(("OAUTH_RATE_LIMIT".into(), "1000".into()));
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::start_with(&[("p/main.py", "print(1)\n")], &env).await
}

async fn to_callback(b: &reqwest::Client, app: &TestApp, start: &str) -> String {
    let r = b.get(app.url(start)).send().await.expect("start");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{start}");
    let r = b.get(location(&r)).send().await.expect("provider");
    location(&r)
}

async fn oauth(
    b: &reqwest::Client,
    app: &TestApp,
    idp: &StandInIdp,
    who: Value,
    start: &str,
) -> reqwest::Response {
    idp.sign_in_as(who);
    let callback = to_callback(b, app, start).await;
    b.get(&callback).send().await.expect("callback")
}

async fn me(b: &reqwest::Client, app: &TestApp) -> Value {
    let r = b.get(app.url("/api/auth/me")).send().await.expect("me");
    r.json().await.unwrap_or(Value::Null)
}

async fn password_sign_in(b: &reqwest::Client, app: &TestApp, user: &str, password: &str) {
    let r = b
        .post(app.url("/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{user} signs in");
}

async fn make_user(app: &TestApp, name: &str, role: &str) -> String {
    let body = json!({"username": name, "password": format!("{name}-password-1"), "role": role});
    let (s, user) = app.post_json("/api/users", &body.to_string()).await;
    assert_eq!(s, 201, "{user}");
    user["id"].as_str().expect("id").to_string()
}

/// A personal token of `user` with `role`, made as Settings makes one.
async fn personal_token(app: &TestApp, user_id: &str, role: &str) -> String {
    let made = fastflow::auth::api_token::generate().expect("random");
    let name = made.hash[..12].to_string();
    let new = fastflow::db::api_tokens::NewApiToken {
        name: &name,
        user_id: Some(user_id),
        role,
        token_hash: &made.hash,
        expires_at: None,
    };
    assert!(
        fastflow::db::api_tokens::insert(&app.state().pool, &new)
            .await
            .expect("db")
    );
    made.token.expose().to_string()
}

async fn active_admins(app: &TestApp) -> i64 {
    fastflow::db::users::count_admins(&app.state().pool)
        .await
        .expect("db")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_admins_blocking_or_demoting_each_other_never_leave_none() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[]).await;
    for round in 0..10 {
        let a = make_user(&app, &format!("a{round}"), "ADMIN").await;
        let b = make_user(&app, &format!("b{round}"), "ADMIN").await;
        let ta = common::client_with_token(&personal_token(&app, &a, "ADMIN").await);
        let tb = common::client_with_token(&personal_token(&app, &b, "ADMIN").await);
        let body = if round % 2 == 0 {
            r#"{"blocked": true}"#
        } else {
            r#"{"role": "READONLY"}"#
        };
        let send = |c: reqwest::Client, target: String| {
            let url = app.url(&format!("/api/users/{target}"));
            async move {
                c.put(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("PUT")
                    .status()
            }
        };
        let (x, y) = tokio::join!(send(ta, b.clone()), send(tb, a.clone()));
        assert!(active_admins(&app).await >= 1, "round {round}: {x} {y}");
        // Clean up for the next round: delete whichever is still an admin's to delete.
        for id in [&a, &b] {
            let _ = app
                .client
                .delete(app.url(&format!("/api/users/{id}")))
                .send()
                .await;
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_cannot_become_a_session_or_change_the_account() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[]).await;
    let id = make_user(&app, "olga", "ADMIN").await;
    let ro = common::client_with_token(&personal_token(&app, &id, "READONLY").await);
    let no_redirect = reqwest::Client::builder()
        .redirect(Policy::none())
        .default_headers(common::auth_headers(
            &personal_token(&app, &id, "READONLY").await,
        ))
        .build()
        .expect("client");
    for (method, path, form) in [
        (
            "POST",
            "/settings/password",
            vec![
                ("password", "attacker-password-2"),
                ("password2", "attacker-password-2"),
            ],
        ),
        (
            "POST",
            "/settings/tokens",
            vec![("name", "forever"), ("role", "READONLY")],
        ),
        ("GET", "/api/auth/link/custom", vec![]),
        ("DELETE", "/api/auth/link/custom", vec![]),
    ] {
        let req = match method {
            "POST" => ro.post(app.url(path)).form(&form),
            "DELETE" => ro.delete(app.url(path)),
            _ => no_redirect.get(app.url(path)),
        };
        let r = req.send().await.expect("request");
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "{method} {path} made a session"
        );
        assert!(
            r.text()
                .await
                .unwrap_or_default()
                .contains("browser session")
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_done_link_is_not_finished_for_the_next_user_of_the_browser() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[]).await;
    make_user(&app, "boss", "ADMIN").await;
    make_user(&app, "rudi", "READONLY").await;
    let shared = browser();
    password_sign_in(&shared, &app, "boss", "boss-password-1").await;
    idp.sign_in_as(
        json!({"sub": "rudi-at-idp", "email": "rudi@example.com", "email_verified": false}),
    );
    let callback = to_callback(&shared, &app, "/api/auth/link/custom").await;
    // Boss walks away; rudi signs in on the same browser and completes the flow.
    password_sign_in(&shared, &app, "rudi", "rudi-password-1").await;
    let r = shared.get(&callback).send().await.expect("callback");
    assert!(r.status().is_client_error(), "{}", r.status());
    let (_, users) = app.get_json("/api/users").await;
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["custom_oauth_id"].is_null()),
        "{users}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e_mail_matching_keeps_identities_and_the_initial_admin_is_made_once() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[("INITIAL_ADMIN_EMAIL", "root@example.com")]).await;
    let root = browser();
    let r = oauth(
        &root,
        &app,
        &idp,
        json!({"sub": "root-1", "email": "root@example.com", "email_verified": true}),
        "/api/auth/custom/authorize",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&root, &app).await["role"], "ADMIN");
    // Another account at the provider with the same verified e-mail: refused, root keeps root-1.
    let r = oauth(
        &browser(),
        &app,
        &idp,
        json!({"sub": "root-2", "email": "ROOT@example.com", "email_verified": true}),
        "/api/auth/custom/authorize",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("signs in with another"));
    let (_, users) = app.get_json("/api/users").await;
    let root_user = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "root@example.com")
        .cloned()
        .unwrap();
    assert_eq!(root_user["custom_oauth_id"], "root-1");
    // With another admin in charge, deleting root and signing in again is a join request.
    make_user(&app, "second", "ADMIN").await;
    let (s, _) = app
        .post_json(
            &format!("/api/users/{}", root_user["id"].as_str().unwrap()),
            "",
        )
        .await;
    assert_eq!(s, 405, "DELETE, not POST");
    let r = app
        .client
        .delete(app.url(&format!("/api/users/{}", root_user["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again = browser();
    let r = oauth(
        &again,
        &app,
        &idp,
        json!({"sub": "root-1", "email": "root@example.com", "email_verified": true}),
        "/api/auth/custom/authorize",
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "a join request, not a new admin"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_end_with_their_makers_role_and_join_requests_do_not_end_setup() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[]).await;
    // A join request before any admin: the setup link still works.
    let r = oauth(
        &browser(),
        &app,
        &idp,
        json!({"sub": "early", "email": "e@example.com", "email_verified": true}),
        "/api/auth/custom/authorize",
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let link = fastflow::auth::setup_link::issue_if_no_user(&app.state().pool)
        .await
        .expect("db")
        .expect("still offered");
    assert!(link.starts_with("/setup?token="));
    // An admin's invitation stops working once they are no longer admin.
    let maker = make_user(&app, "maker", "ADMIN").await;
    make_user(&app, "keeper", "ADMIN").await;
    let admin = browser();
    password_sign_in(&admin, &app, "maker", "maker-password-1").await;
    let page = admin
        .get(app.url("/settings"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split(r#""X-CSRF-Token": ""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let r = admin
        .post(app.url("/users/invite"))
        .form(&[
            ("email", "sleeper@example.com"),
            ("role", "ADMIN"),
            ("hours", "8760"),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    let invite = page
        .split(r#"id="new-link" class="wide" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(browser().get(&invite).send().await.unwrap().status(), 200);
    let (s, _) = app
        .post_json(&format!("/api/users/{maker}/block"), "")
        .await;
    assert_eq!(s, 200);
    let r = browser().get(&invite).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("can no longer invite"));
    // A link cut short is told apart from a used one.
    let cut = &invite[..invite.len() - 5];
    let r = browser().get(cut).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not a whole invitation link")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let idp = StandInIdp::start().await;
    // Without TRUSTED_PROXIES a client cannot escape its limit by naming addresses.
    let app = start(&idp, &[]).await;
    let mut codes = Vec::new();
    for i in 0..12 {
        let r = reqwest::Client::new()
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("10.9.0.{i}"))
            .form(&[("username", "x"), ("password", "wrong-password")])
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
    app.stop().await;
    // Behind a trusted proxy (loopback here), each forwarded client has its own.
    let app = start(&idp, &[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    for i in 0..12 {
        let r = reqwest::Client::new()
            .post(app.url("/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .form(&[("username", "x"), ("password", "wrong-password")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, audit) = app
        .get_json("/api/audit?action=login.failed&limit=500")
        .await;
    let addrs: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["client_addr"].as_str())
        .collect();
    assert!(addrs.contains(&"198.51.100.3"), "{addrs:?}");
    app.stop().await;
}
