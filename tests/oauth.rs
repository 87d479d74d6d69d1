//! OAuth sign-in against a stand-in provider on loopback (real HTTP, real
//! codes, tokens and PKCE; the generic provider's settings point at it):
//! each branch of the decision order, an unverified e-mail that must not link,
//! a wrong or foreign `state`, a code injected into another browser's flow
//! (PKCE), a provider's error, and linking / unlinking accounts.

mod common;

use common::TestApp;
use common::oidc::StandInIdp;
use common::session::{browser, csrf, free_port, location};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start(idp: &StandInIdp, extra: &[(&str, &str)]) -> TestApp {
    let port = free_port().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let mut env: Vec<(String, String)> = idp.env();
    env.push(("PORT".into(), port));
    env.push(("BASE_URL".into(), base));
    env.push(("LOCAL_LOGIN_ENABLED".into(), "true".into()));
    env.push(("OAUTH_RATE_LIMIT".into(), "1000".into()));
    for (k, v) in extra {
        env.push((k.to_string(), v.to_string()));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::start_with(&[("p/main.py", "print(1)\n")], &env).await
}

/// Follows our app's redirect to the provider and the provider's back; returns
/// the callback URL, not yet opened.
async fn to_callback(b: &reqwest::Client, app: &TestApp, start: &str) -> String {
    let r = b.get(app.url(start)).send().await.expect("start");
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{start}: {:?}",
        r.text().await
    );
    let at_idp = location(&r);
    let r = b.get(&at_idp).send().await.expect("provider");
    assert!(
        r.status().is_redirection(),
        "provider answered {}",
        r.status()
    );
    location(&r)
}

/// Signs in as `profile` through the whole flow; the callback's answer.
async fn sign_in(
    b: &reqwest::Client,
    app: &TestApp,
    idp: &StandInIdp,
    profile: Value,
    start: &str,
) -> reqwest::Response {
    idp.sign_in_as(profile);
    let callback = to_callback(b, app, start).await;
    b.get(&callback).send().await.expect("callback")
}

async fn me(b: &reqwest::Client, app: &TestApp) -> (StatusCode, Value) {
    let r = b.get(app.url("/api/auth/me")).send().await.expect("me");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn person(sub: &str, email: &str, verified: bool) -> Value {
    json!({"sub": sub, "email": email, "email_verified": verified, "name": sub})
}

async fn user_named(app: &TestApp, name: &str) -> Value {
    let (_, users) = app.get_json("/api/users").await;
    users
        .as_array()
        .expect("a list")
        .iter()
        .find(|u| u["username"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no user {name} in {users}"))
}

const LOGIN: &str = "/api/auth/custom/authorize?next=/runs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_branch_of_the_decision_order() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[("INITIAL_ADMIN_EMAIL", "boss@example.com")]).await;

    // The login page offers the provider; the providers API says so in Fast-Flow's shape.
    let (_, providers) = app.get_json("/api/auth/providers").await;
    assert_eq!(providers["custom"], true);
    assert_eq!(providers["github"], false);
    assert_eq!(providers["custom_display_name"], "Stand-in IdP");
    let page = browser()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Stand-in IdP"), "{page}");

    // INITIAL_ADMIN_EMAIL, verified: a new admin, signed in, sent on to `next`.
    let boss = browser();
    let r = sign_in(
        &boss,
        &app,
        &idp,
        person("boss-sub", "Boss@Example.com", true),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/runs");
    let (status, who) = me(&boss, &app).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["role"], "ADMIN");
    // The PKCE challenge was S256, as the provider was asked.
    let asked = idp.authorize_requests();
    assert_eq!(asked[0]["code_challenge_method"], "S256");
    assert_eq!(asked[0]["scope"], "openid email profile");
    assert!(asked[0]["redirect_uri"].ends_with("/api/auth/custom/callback"));

    // Known provider id: the same subject signs in directly, whatever its e-mail now.
    let again = browser();
    let r = sign_in(
        &again,
        &app,
        &idp,
        person("boss-sub", "renamed@example.com", false),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&again, &app).await.1["username"], who["username"]);

    // A verified e-mail links to the existing local account with that e-mail.
    let (s, _) = app
        .post_json(
            "/api/users",
            r#"{"username": "carol", "password": "carol-password-1", "email": "carol@example.com", "role": "WRITE"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let carol = browser();
    let r = sign_in(
        &carol,
        &app,
        &idp,
        person("carol-sub", "CAROL@example.com", true),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, who) = me(&carol, &app).await;
    assert_eq!(
        (who["username"].as_str(), who["role"].as_str()),
        (Some("carol"), Some("WRITE"))
    );
    assert_eq!(
        user_named(&app, "carol").await["custom_oauth_id"],
        "carol-sub"
    );

    // The same e-mail, unverified: no link, no match — a join request without the e-mail.
    let mallory = browser();
    let r = sign_in(
        &mallory,
        &app,
        &idp,
        person("mallory-sub", "carol@example.com", false),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.text().await.unwrap().contains("Request sent"));
    assert_eq!(me(&mallory, &app).await.0, StatusCode::UNAUTHORIZED);
    let (_, users) = app.get_json("/api/users").await;
    let pending: Vec<&Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["custom_oauth_id"] == "mallory-sub")
        .collect();
    assert_eq!(pending.len(), 1, "{users}");
    assert_eq!(pending[0]["status"], "pending");
    assert_eq!(
        pending[0]["email"],
        Value::Null,
        "an unverified e-mail is not stored"
    );
    assert_eq!(
        user_named(&app, "carol").await["custom_oauth_id"],
        "carol-sub"
    );

    // Signing in again while pending: its own page; approved as WRITE: signed in.
    let r = sign_in(
        &mallory,
        &app,
        &idp,
        person("mallory-sub", "carol@example.com", false),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Waiting for approval"));
    let id = pending[0]["id"].as_str().unwrap().to_string();
    let (s, approved) = app
        .post_json(&format!("/api/users/{id}/approve"), r#"{"role": "WRITE"}"#)
        .await;
    assert_eq!(s, 200, "{approved}");
    assert_eq!(
        (approved["status"].as_str(), approved["role"].as_str()),
        (Some("active"), Some("WRITE"))
    );
    let r = sign_in(
        &mallory,
        &app,
        &idp,
        person("mallory-sub", "x@example.com", false),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&mallory, &app).await.1["role"], "WRITE");

    // A rejected request gets its page, and no session.
    let stranger = browser();
    let r = sign_in(
        &stranger,
        &app,
        &idp,
        person("stranger-sub", "s@example.com", true),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = user_named(&app, "stranger-sub").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = app.post_json(&format!("/api/users/{id}/reject"), "").await;
    assert_eq!(s, 200);
    let r = sign_in(
        &stranger,
        &app,
        &idp,
        person("stranger-sub", "s@example.com", true),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Request rejected"));
    assert_eq!(me(&stranger, &app).await.0, StatusCode::UNAUTHORIZED);

    // An invitation: the invited, verified e-mail gets the invitation's role, once.
    let (s, inv) = app
        .post_json(
            "/api/users/invite",
            r#"{"email": "dave@example.com", "role": "WRITE", "expires_hours": 2}"#,
        )
        .await;
    assert_eq!(s, 201, "{inv}");
    let link = inv["link"].as_str().unwrap();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let invite_page = browser()
        .get(link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        invite_page.contains("dave@example.com")
            && invite_page.contains("Sign in with Stand-in IdP")
    );
    let start_invited = format!("/api/auth/custom/authorize?invitation={token}");
    // The wrong e-mail is told which one the invitation is for, and uses nothing up.
    let wrong = browser();
    let r = sign_in(
        &wrong,
        &app,
        &idp,
        person("eve-sub", "eve@example.com", true),
        &start_invited,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("this invitation is for dave@example.com")
            || text.contains("This invitation is for dave@example.com"),
        "{text}"
    );
    // Nor does the right e-mail unverified.
    let r = sign_in(
        &wrong,
        &app,
        &idp,
        person("eve-sub", "dave@example.com", false),
        &start_invited,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let dave = browser();
    let r = sign_in(
        &dave,
        &app,
        &idp,
        person("dave-sub", "dave@example.com", true),
        &start_invited,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&dave, &app).await.1["role"], "WRITE");
    let (_, invites) = app.get_json("/api/users/invites").await;
    assert_eq!(invites[0]["is_used"], true);
    let r = sign_in(
        &browser(),
        &app,
        &idp,
        person("frank-sub", "dave@example.com", true),
        &start_invited,
    )
    .await;
    // dave@ is now a user who signs in with dave-sub: another account at the
    // provider with his e-mail does not take his place.
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("signs in with another"));
    let other = browser();
    let r = sign_in(
        &other,
        &app,
        &idp,
        person("gus-sub", "gus@example.com", true),
        &start_invited,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("used, revoked or has expired")
    );

    // Blocked: the provider's word is not enough, and the open session ends.
    let id = user_named(&app, "dave-sub").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = app.post_json(&format!("/api/users/{id}/block"), "").await;
    assert_eq!(s, 200);
    assert_eq!(me(&dave, &app).await.0, StatusCode::UNAUTHORIZED);
    let r = sign_in(
        &dave,
        &app,
        &idp,
        person("dave-sub", "dave@example.com", true),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Account blocked"));
    assert_eq!(me(&dave, &app).await.0, StatusCode::UNAUTHORIZED);

    // Every decision is in the audit log with its match.
    let (s, audit) = app.get_json("/api/audit?action=login&limit=100").await;
    assert_eq!(s, 200, "{audit}");
    let details: Vec<String> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .collect();
    for m in [
        "match=initial_admin",
        "match=direct",
        "match=email",
        "match=invitation",
    ] {
        assert!(
            details.iter().any(|d| d.contains(m)),
            "{m} not in {details:?}"
        );
    }
    let (_, joins) = app.get_json("/api/audit?action=join_request").await;
    assert_eq!(joins["entries"].as_array().unwrap().len(), 2, "{joins}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_bound_to_the_browser_and_pkce_stops_an_injected_code() {
    let idp = StandInIdp::start().await;
    let app = start(
        &idp,
        &[
            ("OAUTH_RATE_LIMIT", "24"),
            ("INITIAL_ADMIN_EMAIL", "alice@example.com"),
        ],
    )
    .await;
    let alice = person("alice-sub", "alice@example.com", true);

    // A wrong state is refused, and the flow is used up: the right one fails after.
    let b = browser();
    idp.sign_in_as(alice.clone());
    let callback = to_callback(&b, &app, LOGIN).await;
    let state = callback.split("state=").nth(1).unwrap().to_string();
    let forged = callback.replace(&format!("state={state}"), "state=forged-state");
    let r = b.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("wrong state"));
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a flow is answered once"
    );
    assert_eq!(me(&b, &app).await.0, StatusCode::UNAUTHORIZED);

    // The answer to one browser's flow, opened in another browser: refused.
    let victim = browser();
    idp.sign_in_as(alice.clone());
    let callback = to_callback(&victim, &app, LOGIN).await;
    let attacker = browser();
    let r = attacker.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not belong to a sign-in started in this browser")
    );
    assert_eq!(me(&attacker, &app).await.0, StatusCode::UNAUTHORIZED);

    // A code stolen from one flow, put into another browser's own flow (its
    // state is right): the token endpoint sees the wrong PKCE verifier.
    let stolen_code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    idp.sign_in_as(person("attacker-sub", "attacker@example.com", true));
    let own = to_callback(&attacker, &app, LOGIN).await;
    let own_code = own
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let injected = own.replace(&own_code, &stolen_code);
    let r = attacker.get(&injected).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let text = r.text().await.unwrap();
    assert!(text.contains("PKCE verification failed"), "{text}");
    assert!(
        idp.refused()
            .contains(&"PKCE verification failed".to_string())
    );
    assert_eq!(me(&attacker, &app).await.0, StatusCode::UNAUTHORIZED);
    assert!(
        !text.contains(common::oidc::CLIENT_SECRET),
        "no secret on the page"
    );

    // The provider's own refusal is shown, and no session results.
    let b = browser();
    idp.sign_in_as(alice.clone());
    let callback = to_callback(&b, &app, LOGIN).await;
    let state = callback.split("state=").nth(1).unwrap();
    let denied = format!(
        "{}?error=access_denied&error_description=The+user+said+no&state={state}",
        app.url("/api/auth/custom/callback")
    );
    let r = b.get(&denied).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("The user said no"));

    // An unknown provider is a clear 404; the sign-in redirect never goes off-site.
    let r = b
        .get(app.url("/api/auth/nope/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    idp.sign_in_as(alice.clone());
    let callback = to_callback(
        &b,
        &app,
        "/api/auth/custom/authorize?next=//evil.example.com/",
    )
    .await;
    let r = b.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/");

    // OAUTH_RATE_LIMIT counts authorize and callback requests per client:
    // at 24 a minute, this test's dozen steps leave a dozen, then 429 with Retry-After.
    let mut last = StatusCode::OK;
    for _ in 0..24 {
        let r = b
            .get(app.url("/api/auth/custom/authorize"))
            .send()
            .await
            .unwrap();
        last = r.status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(r.headers()["retry-after"], "60");
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);

    // Failed attempts are audited without any code or secret.
    let (_, audit) = app.get_json("/api/audit?action=login.failed").await;
    let all = audit.to_string();
    assert!(
        all.contains("wrong state") || all.contains("state does not match"),
        "{all}"
    );
    assert!(all.contains("PKCE"), "{all}");
    assert!(!all.contains(&stolen_code) && !all.contains(common::oidc::CLIENT_SECRET));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_link_and_unlink_but_never_lose_their_last_sign_in() {
    let idp = StandInIdp::start().await;
    let app = start(&idp, &[("INITIAL_ADMIN_EMAIL", "root@example.com")]).await;
    // A local account signs in with its password, then links the provider.
    let (s, _) = app
        .post_json(
            "/api/users",
            r#"{"username": "gina", "password": "gina-password-12"}"#,
        )
        .await;
    assert_eq!(s, 201);
    let gina = browser();
    let r = gina
        .post(app.url("/login"))
        .form(&[
            ("username", "gina"),
            ("password", "gina-password-12"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = sign_in(
        &gina,
        &app,
        &idp,
        person("gina-sub", "gina@elsewhere.example", false),
        "/api/auth/link/custom",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/settings?linked=custom");
    assert_eq!(
        user_named(&app, "gina").await["custom_oauth_id"],
        "gina-sub"
    );
    // Now the provider alone signs her in (a linked identity needs no verified e-mail).
    let fresh = browser();
    let r = sign_in(
        &fresh,
        &app,
        &idp,
        person("gina-sub", "gina@elsewhere.example", false),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&fresh, &app).await.1["username"], "gina");

    // An identity another user holds cannot be linked.
    let root = browser();
    let r = sign_in(
        &root,
        &app,
        &idp,
        person("root-sub", "root@example.com", true),
        LOGIN,
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = sign_in(
        &gina,
        &app,
        &idp,
        person("root-sub", "root@example.com", true),
        "/api/auth/link/custom",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("already linked to another user")
    );
    assert_eq!(
        user_named(&app, "gina").await["custom_oauth_id"],
        "gina-sub"
    );

    // Unlinking: refused without CSRF, done with it (gina keeps her password)…
    let r = gina
        .delete(app.url("/api/auth/link/custom"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let token = csrf(&gina, &app).await;
    let r = gina
        .delete(app.url("/api/auth/link/custom"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    assert_eq!(
        user_named(&app, "gina").await["custom_oauth_id"],
        Value::Null
    );
    // …but root's provider is root's only way in.
    let token = csrf(&root, &app).await;
    let r = root
        .delete(app.url("/api/auth/link/custom"))
        .header("X-CSRF-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("only way to sign in"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_counts_only_a_verified_primary_email() {
    let idp = StandInIdp::start().await;
    let port = free_port().to_string();
    let mut env = idp.github_env();
    env.push(("PORT".into(), port.clone()));
    env.push(("BASE_URL".into(), format!("http://127.0.0.1:{port}")));
    env.push(("OAUTH_RATE_LIMIT".into(), "1000".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let app = TestApp::start_with(&[("p/main.py", "print(1)\n")], &env).await;
    // With a provider and no LOCAL_LOGIN_ENABLED, the login page has no password form.
    let page = browser()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Sign in with GitHub") && !page.contains("name=\"password\""),
        "{page}"
    );
    let r = browser()
        .post(app.url("/login"))
        .form(&[("username", "x"), ("password", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, _) = app
        .post_json("/api/users", r#"{"username": "octo", "password": "octo-password-12", "email": "octo@example.com", "role": "WRITE"}"#)
        .await;
    assert_eq!(s, 201);
    const START: &str = "/api/auth/github/authorize";
    // The public profile e-mail matches, but GitHub has not verified the primary one: no link.
    let b = browser();
    let unverified = json!({"id": 583231, "login": "octocat", "name": "The Octocat", "email": "octo@example.com",
        "emails": [{"email": "octo@example.com", "primary": true, "verified": false}]});
    let r = sign_in(&b, &app, &idp, unverified, START).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "a join request");
    let asked = idp.authorize_requests();
    assert_eq!(asked[0]["scope"], "read:user user:email");
    // A verified primary e-mail links the numeric GitHub id to the existing account.
    let b = browser();
    let verified = json!({"id": 99, "login": "octo-real", "email": null,
        "emails": [{"email": "old@example.com", "primary": false, "verified": true},
                   {"email": "OCTO@example.com", "primary": true, "verified": true}]});
    let r = sign_in(&b, &app, &idp, verified, START).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me(&b, &app).await.1["username"], "octo");
    let octo = user_named(&app, "octo").await;
    assert_eq!(
        (octo["github_id"].as_str(), octo["github_login"].as_str()),
        (Some("99"), Some("octo-real"))
    );
    let pending = user_named(&app, "octocat").await;
    assert_eq!(
        (pending["status"].as_str(), pending["github_id"].as_str()),
        (Some("pending"), Some("583231"))
    );
    app.stop().await;
}
