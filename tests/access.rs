//! The access layer over real HTTP: every route of the access table with an
//! anonymous caller and READONLY / WRITE / ADMIN tokens (401 or the login
//! redirect, 403 below the role, through at or above it — and every listed
//! route is served by the router); the first-run setup link printed at start;
//! a local account's cookie session with CSRF (refused without the token,
//! accepted with it as header or form field); and a blocked user's open
//! session ending at the next request.

mod common;

use std::time::Duration;

use common::TestApp;
use fastflow::auth::Role;
use fastflow::web::access_table::{Access, TABLE};
use reqwest::{Method, StatusCode, redirect::Policy};

fn no_redirects(headers: reqwest::header::HeaderMap) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// A concrete path for a route pattern (`{id}` → `x1`, `{*path}` → `style.css`).
fn concrete(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|seg| match seg {
            s if s.starts_with("{*") => "style.css".to_string(),
            s if s.starts_with('{') => "x1".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_requires_the_role_the_table_says() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let pool = app.state().pool.clone();
    let tokens = [
        (
            Role::Readonly,
            common::make_token(&pool, "ro", "READONLY").await,
        ),
        (Role::Write, common::make_token(&pool, "rw", "WRITE").await),
        (Role::Admin, app.token.clone()),
    ];
    let anonymous = no_redirects(Default::default());
    let mut checked = 0;
    for (pattern, methods) in TABLE {
        let path = concrete(pattern);
        let url = app.url(&path);
        for (method, access) in methods.iter() {
            let method = Method::from_bytes(method.as_str().as_bytes()).expect("method");
            let anon = anonymous
                .request(method.clone(), &url)
                .send()
                .await
                .expect("request");
            let code = anon.status();
            match access {
                Access::Open => assert!(
                    code != StatusCode::UNAUTHORIZED || pattern.starts_with("/api/webhooks"),
                    "{method} {path} is open, got {code}"
                ),
                _ if path.starts_with("/api/") || path == "/metrics" => {
                    assert_eq!(code, StatusCode::UNAUTHORIZED, "{method} {path}")
                }
                _ => {
                    assert_eq!(code, StatusCode::SEE_OTHER, "{method} {path}");
                    let to = anon.headers()["location"].to_str().unwrap_or_default();
                    assert!(to.starts_with("/login?next="), "{method} {path} -> {to}");
                }
            }
            for (role, token) in &tokens {
                let client = no_redirects(common::auth_headers(token));
                let resp = client
                    .request(method.clone(), &url)
                    .send()
                    .await
                    .expect("request");
                let code = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let allowed = match access {
                    Access::Open | Access::SignedIn => true,
                    // Account changes need a browser session, whatever the token's role.
                    Access::Session => false,
                    Access::AtLeast(needed) => role >= needed,
                    Access::MetricsScrape => true,
                };
                // The layer's refusal names the role (or the session); a handler's own
                // 403 (a used setup link, say) does not.
                let refused_by_layer = code == StatusCode::FORBIDDEN
                    && (body.contains("this needs the")
                        || body.contains("this needs a signed-in browser session"));
                if allowed {
                    assert!(
                        !refused_by_layer && code != StatusCode::UNAUTHORIZED,
                        "{role} may {method} {path}: {code} {body}"
                    );
                    // Served by a handler, not refused as an unknown route.
                    assert!(
                        code != StatusCode::METHOD_NOT_ALLOWED
                            && !(code == StatusCode::NOT_FOUND && body.is_empty()),
                        "{method} {path} is in the table but not routed: {code}"
                    );
                } else {
                    assert!(
                        refused_by_layer,
                        "{role} must not {method} {path}: {code} {body}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 80, "{checked} routes checked");
    // A route nobody listed is refused by the layer, whoever asks.
    let admin = no_redirects(common::auth_headers(&app.token));
    let resp = admin
        .get(app.url("/not/a/route"))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A route with another method: 405 and the methods it has.
    let resp = admin
        .delete(app.url("/api/runs"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET");
    let resp = admin.put(app.url("/secrets")).send().await.expect("PUT");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_live_stream_ends_when_its_access_does() {
    let app = TestApp::start(&[(
        "slow/main.py",
        "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.2)\n",
    )])
    .await;
    let run = app.trigger("slow", "{}").await;
    app.wait_status(&run, "RUNNING").await;
    // A token's stream: revoked while it reads.
    let reader = common::make_token(&app.state().pool, "reader", "READONLY").await;
    let resp = common::client_with_token(&reader)
        .get(app.url(&format!("/api/runs/{run}/logs/stream")))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    let pool = app.state().pool.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        fastflow::db::api_tokens::revoke(&pool, None, "reader")
            .await
            .expect("revoke");
    });
    let events = common::read_sse(resp, Duration::from_secs(60)).await;
    let last = events.last().expect("events");
    assert_eq!(last.event.as_deref(), Some("end"), "{events:?}");
    assert!(last.data.contains("access revoked"), "{last:?}");
    assert!(events.len() > 2, "lines came first: {events:?}");

    // A session's stream: the user is blocked while it reads.
    let (s, user) = app
        .post_json(
            "/api/users",
            r#"{"username": "viewer", "password": "viewer-password-1"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client");
    let r = browser
        .post(app.url("/login"))
        .form(&[("username", "viewer"), ("password", "viewer-password-1")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let resp = browser
        .get(app.url(&format!("/runs/{run}/log/stream")))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), 200);
    let id = user["id"].as_str().expect("id").to_string();
    let admin = app.client.clone();
    let block = app.url(&format!("/api/users/{id}/block"));
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        admin.post(block).send().await.expect("block");
    });
    let events = common::read_sse(resp, Duration::from_secs(60)).await;
    assert_eq!(
        events.last().and_then(|e| e.event.as_deref()),
        Some("end"),
        "{events:?}"
    );
    let (s, _) = app.post_json(&format!("/api/runs/{run}/cancel"), "").await;
    assert_eq!(s, 200);
    app.stop().await;
}

/// The setup link of a fresh install (as printed at start; made again here).
async fn setup_link(app: &TestApp) -> String {
    fastflow::auth::setup_link::issue_if_no_user(&app.state().pool)
        .await
        .expect("database")
        .expect("no user yet")
}

fn csrf_of(page: &str) -> String {
    page.split(r#""X-CSRF-Token": ""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in the page:\n{page}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_account_session_needs_its_csrf_token_and_ends_when_blocked() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client");
    let link = setup_link(&app).await;
    let token = link.trim_start_matches("/setup?token=").to_string();
    let page = browser.get(app.url(&link)).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap_or_default()
            .contains("Create the first admin")
    );
    // Too short a password: said, nothing made, the link still works.
    let short = browser
        .post(app.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("username", "ada"),
            ("password", "short"),
            ("password2", "short"),
        ])
        .send()
        .await
        .expect("POST");
    assert!(
        short
            .text()
            .await
            .unwrap_or_default()
            .contains("at least 12 characters")
    );
    let password = "correct horse battery";
    let made = browser
        .post(app.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("username", "ada"),
            ("password", password),
            ("password2", password),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    // Used once: a second admin cannot be made with it.
    let again = browser.get(app.url(&link)).send().await.expect("GET");
    assert_eq!(again.status(), StatusCode::FORBIDDEN);

    let home = browser
        .get(app.url("/pipelines"))
        .send()
        .await
        .expect("GET");
    assert_eq!(home.status(), 200);
    let csrf = csrf_of(&home.text().await.unwrap_or_default());
    let (_, me) = {
        let r = browser
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .expect("GET");
        (
            r.status(),
            r.json::<serde_json::Value>().await.expect("JSON"),
        )
    };
    assert_eq!(me["username"], "ada");
    assert_eq!(me["role"], "ADMIN");
    assert_eq!(me["via"], "session");

    // A state change with the cookie alone is refused; with the token it passes.
    let bare = browser
        .post(app.url("/pipelines/refresh"))
        .send()
        .await
        .expect("POST");
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    assert!(bare.text().await.unwrap_or_default().contains("CSRF"));
    let wrong = browser
        .post(app.url("/pipelines/refresh"))
        .header("X-CSRF-Token", "not-the-token")
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let with_header = browser
        .post(app.url("/pipelines/refresh"))
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .expect("POST");
    assert!(with_header.status().is_success() || with_header.status().is_redirection());
    let with_field = browser
        .post(app.url("/pipelines/refresh"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert!(with_field.status().is_success() || with_field.status().is_redirection());

    // Wrong password: refused, same message as an unknown user.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client");
    for (user, pass) in [("ada", "wrong password!!"), ("nobody", password)] {
        let r = other
            .post(app.url("/login"))
            .form(&[("username", user), ("password", pass)])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(
            r.text()
                .await
                .unwrap_or_default()
                .contains("Wrong username or password.")
        );
    }
    let ok = other
        .post(app.url("/login"))
        .form(&[
            ("username", "ADA"),
            ("password", password),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(ok.headers()["location"], "/", "never off-site after login");

    // Blocking ends both open sessions at their next request (another admin
    // exists first: the last one cannot be blocked).
    let (s, _) = app
        .post_json(
            "/api/users",
            r#"{"username": "grace", "password": "grace-password-1", "role": "ADMIN"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let user = fastflow::db::users::by_username(&app.state().pool, "ada")
        .await
        .expect("db")
        .expect("user");
    assert_eq!(
        fastflow::db::users::set_blocked(&app.state().pool, &user.id, true)
            .await
            .expect("db"),
        fastflow::db::users::Guarded::Done
    );
    for client in [&browser, &other] {
        let r = client.get(app.url("/pipelines")).send().await.expect("GET");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "the session ended");
        let r = client
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = other
        .post(app.url("/login"))
        .form(&[("username", "ada"), ("password", password)])
        .send()
        .await
        .expect("POST");
    assert!(blocked.text().await.unwrap_or_default().contains("blocked"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_install_prints_its_setup_link_and_a_token_works_while_it_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_files(
        &dir.path().join("pipelines"),
        &[("p/main.py", "print(1)\n")],
    );
    let server = common::ServerProcess::spawn(dir.path(), &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let link = loop {
        if let Some(line) = server
            .log()
            .lines()
            .find(|l| l.contains("/setup?token=ff_"))
        {
            break line.trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no setup link in:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(link.starts_with(&server.base), "{link}");
    let page = reqwest::get(&link).await.expect("GET");
    assert_eq!(page.status(), 200);
    // `fastflow token create`, run while the server runs, gives a working token.
    let (code, runs) = common::get_json_at(&server.base, "/api/runs").await;
    assert_eq!(code, 200, "{runs}");
    let anonymous = reqwest::get(format!("{}/api/runs", server.base))
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // The command line's token change is in the audit log, as `cli`.
    let (_, audit) = common::get_json_at(&server.base, "/api/audit?action=token.create").await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["actor"], "cli", "{audit}");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("role ADMIN")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_rate_limited_per_client() {
    let app = TestApp::start(&[]).await;
    let client = reqwest::Client::new();
    let limit = fastflow::web::login_attempts_per_minute() as usize;
    // All at once: the limit is checked before the (slow) password check, so a
    // burst is answered at once, whatever the machine's speed.
    let attempts = (0..limit + 5).map(|_| {
        client
            .post(app.url("/login"))
            .form(&[("username", "nobody"), ("password", "wrong password!!")])
            .send()
    });
    let answers = futures_util::future::join_all(attempts).await;
    let codes: Vec<u16> = answers
        .iter()
        .map(|r| r.as_ref().expect("POST").status().as_u16())
        .collect();
    let limited = codes.iter().filter(|c| **c == 429).count();
    let refused = codes.iter().filter(|c| **c == 401).count();
    assert!(limited >= 5 && refused <= limit, "{codes:?}");
    let retry = answers
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .map(|r| r.headers()["retry-after"].clone());
    assert_eq!(
        retry.as_ref().map(|v| v.to_str().unwrap_or_default()),
        Some("60")
    );
    // The setup page counts against the same budget. The budget refills one
    // attempt every 60 s / limit, so on a slow machine one or two may pass again:
    // of a burst as large as the limit, most are refused.
    let setups = (0..limit).map(|_| client.get(app.url("/setup?token=ff_guess")).send());
    let setup_codes: Vec<u16> = futures_util::future::join_all(setups)
        .await
        .iter()
        .map(|r| r.as_ref().expect("GET").status().as_u16())
        .collect();
    let limited = setup_codes.iter().filter(|c| **c == 429).count();
    assert!(limited >= limit / 2, "{setup_codes:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_api_tokens_is_rate_limited_and_good_tokens_are_not() {
    let app = TestApp::start(&[]).await;
    let limit = fastflow::web::access_layer::TOKEN_ATTEMPTS_PER_MINUTE as usize;
    let guesser = common::client_with_token("ff_guessguessguessguessguessguessguessguessgue");
    let mut codes = Vec::new();
    for _ in 0..limit + 3 {
        let r = guesser.get(app.url("/api/runs")).send().await.expect("GET");
        codes.push(r.status().as_u16());
    }
    assert_eq!(
        codes.iter().filter(|c| **c == 401).count(),
        limit,
        "{codes:?}"
    );
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    // A valid token from the same address is not slowed down.
    let (status, _) = app.get_json("/api/runs").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_are_shown_only_to_those_who_may_start_runs() {
    let key = "s3cretWebhookKey1234567890";
    let app = TestApp::start(&[
        ("wh/main.py", "print(1)\n"),
        (
            "wh/pipeline.json",
            &format!(r#"{{"webhook_key": "{key}"}}"#),
        ),
    ])
    .await;
    let ro = common::make_token(&app.state().pool, "ro", "READONLY").await;
    let reader = common::client_with_token(&ro);
    let page = reader
        .get(app.url("/pipelines/wh?tab=configuration"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        page.headers()["cache-control"],
        "no-store",
        "signed-in pages are not cached"
    );
    let page = page.text().await.unwrap_or_default();
    assert!(!page.contains(key), "a READONLY caller never sees the key");
    assert!(
        page.contains("shown to the WRITE and ADMIN roles only"),
        "{page}"
    );
    for tab in ["overview", "runs", "source"] {
        let other = reader
            .get(app.url(&format!("/pipelines/wh?tab={tab}")))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .unwrap_or_default();
        assert!(
            !other.contains(key),
            "the {tab} tab shows no key to READONLY"
        );
    }
    let (_, admin_page) = app.get_text("/pipelines/wh?tab=configuration").await;
    assert!(admin_page.contains(&format!("/api/webhooks/wh/{key}")));
    // After signing in, `next` never leads off the site, control characters included.
    let login = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    for next in ["/\t/evil.example", "/\n", "//evil.example"] {
        let page = login
            .get(app.url("/login"))
            .query(&[("next", next)])
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .unwrap_or_default();
        assert!(
            page.contains(r#"name="next" value="/""#),
            "{next:?}: {page}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_local_accounts_and_every_change_ends_sessions() {
    let app = TestApp::start(&[]).await;
    let password = "correct horse battery";
    let (code, made) = app
        .post_json(
            "/api/users",
            &serde_json::json!({"username": "bob", "password": password, "role": "write"})
                .to_string(),
        )
        .await;
    assert_eq!(code, 201, "{made}");
    assert_eq!(made["role"], "WRITE");
    assert!(made.get("password_hash").is_none() && !made.to_string().contains("argon2"));
    let id = made["id"].as_str().expect("id").to_string();
    for (body, wanted) in [
        (
            serde_json::json!({"username": "bob", "password": password}),
            409,
        ),
        (
            serde_json::json!({"username": "b b", "password": password}),
            400,
        ),
        (
            serde_json::json!({"username": "carl", "password": "short"}),
            400,
        ),
        (
            serde_json::json!({"username": "carl", "password": password, "role": "root"}),
            400,
        ),
    ] {
        let (code, answer) = app.post_json("/api/users", &body.to_string()).await;
        assert_eq!(code, wanted, "{body}: {answer}");
    }
    let sign_in = || async {
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .expect("client");
        let r = c
            .post(app.url("/login"))
            .form(&[("username", "bob"), ("password", password)])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        c
    };
    let me_url = app.url("/api/auth/me");
    let me = |c: reqwest::Client| {
        let url = me_url.clone();
        async move {
            let r = c.get(url).send().await.expect("GET");
            (
                r.status(),
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    let bob = sign_in().await;
    assert_eq!(me(bob.clone()).await.1["role"], "WRITE");
    // A role change ends bob's session; signing in again gives the new role.
    let resp = app
        .client
        .put(app.url(&format!("/api/users/{id}")))
        .json(&serde_json::json!({"role": "READONLY"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(resp.status(), 200);
    assert_eq!(me(bob.clone()).await.0, StatusCode::UNAUTHORIZED);
    let bob = sign_in().await;
    assert_eq!(me(bob.clone()).await.1["role"], "READONLY");
    // Blocked through the API: the open session ends; unblocked, bob can sign in again.
    let resp = app
        .client
        .post(app.url(&format!("/api/users/{id}/block")))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    assert_eq!(me(bob.clone()).await.0, StatusCode::UNAUTHORIZED);
    let resp = app
        .client
        .post(app.url(&format!("/api/users/{id}/unblock")))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    let bob = sign_in().await;
    assert_eq!(me(bob).await.0, StatusCode::OK);
    let (_, listed) = app.get_json("/api/users").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // The last active admin cannot be demoted, blocked or deleted.
    let (code, admin) = app
        .post_json(
            "/api/users",
            &serde_json::json!({"username": "ada", "password": password, "role": "admin"})
                .to_string(),
        )
        .await;
    assert_eq!(code, 201);
    let admin_id = admin["id"].as_str().expect("id").to_string();
    let demote = app
        .client
        .put(app.url(&format!("/api/users/{admin_id}")))
        .json(&serde_json::json!({"role": "WRITE"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(demote.status(), StatusCode::CONFLICT);
    let blocked = app
        .client
        .post(app.url(&format!("/api/users/{admin_id}/block")))
        .send()
        .await
        .expect("POST");
    assert_eq!(blocked.status(), StatusCode::CONFLICT);
    let deleted = app
        .client
        .delete(app.url(&format!("/api/users/{admin_id}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), StatusCode::CONFLICT);
    // Bob goes, and his sessions with him.
    let gone = app
        .client
        .delete(app.url(&format!("/api/users/{id}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(gone.status(), 200);
    let (code, _) = app.get_json(&format!("/api/users/{id}")).await;
    assert_eq!(code, 404);
    app.stop().await;
}
