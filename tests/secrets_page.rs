//! The Secrets page through real HTTP form posts, with and without htmx: keys
//! pipelines list but nobody defined are shown with a link that fills the
//! form, a saved secret's value never comes back (not even after a refusal), a
//! parameter's does, a change can turn one into the other, a delete names the
//! pipelines still listing the key, a multi-line value keeps LF line ends (the
//! container sees exactly that), and the encrypt form's token opens in Python.

mod common;

use common::TestApp;

const KEY: &str = "SdBKKhID9WSqTSCSjORW43Mqv1SEbkZisnX3_nB5UQ4=";

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)], htmx: bool) -> (u16, String) {
    let mut req = app.client.post(app.url(path)).form(form);
    if htmx {
        req = req.header("HX-Request", "true");
    }
    let resp = req.send().await.expect("POST");
    let code = resp.status().as_u16();
    (code, resp.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secrets_page_manages_secrets_without_ever_showing_one() {
    let app = TestApp::start_with(
        &[
            (
                "etl/main.py",
                "import os\nk = os.environ['PEM']\nprint('lines', len(k.split(chr(10))), 'cr', chr(13) in k)\nprint('region', os.environ['REGION'])\n",
            ),
            ("etl/pipeline.json", r#"{"secrets": ["PEM", "REGION", "API_KEY"]}"#),
        ],
        &[("ENCRYPTION_KEY", KEY)],
    )
    .await;
    let (code, page) = app.get_text("/secrets").await;
    assert_eq!(code, 200);
    assert!(
        page.contains("Listed by pipelines but not defined"),
        "{page}"
    );
    assert!(page.contains("/secrets?key=API_KEY#new-secret"), "{page}");
    let (_, filled) = app.get_text("/secrets?key=API_KEY").await;
    assert!(filled.contains(r#"name="key" value="API_KEY""#), "{filled}");

    let secret = "sk_live_page_secret_42";
    let (code, body) = post_form(
        &app,
        "/secrets",
        &[("key", "API_KEY"), ("value", secret)],
        true,
    )
    .await;
    assert_eq!(code, 200);
    assert!(body.contains("Secret API_KEY saved."), "{body}");
    assert!(body.contains("set · hidden") && !body.contains(secret));
    // Refused: a bad key under htmx answers 200 with the error in the panel; without
    // htmx the whole page with the refusal's status. The typed value never returns.
    let bad_value = "typed-but-refused-99";
    for (htmx, wanted) in [(true, 200), (false, 400)] {
        let (code, body) = post_form(
            &app,
            "/secrets",
            &[("key", "BAD-KEY"), ("value", bad_value)],
            htmx,
        )
        .await;
        assert_eq!(code, wanted, "htmx {htmx}");
        assert!(
            body.contains("Nothing was saved") && body.contains("BAD-KEY"),
            "{body}"
        );
        assert!(!body.contains(bad_value), "{body}");
        assert_eq!(body.contains("<html"), !htmx, "htmx {htmx}: panel or page");
    }
    let (code, body) = post_form(
        &app,
        "/secrets",
        &[("key", "API_KEY"), ("value", "again")],
        false,
    )
    .await;
    assert_eq!(code, 409, "{body}");
    let (code, body) = post_form(
        &app,
        "/secrets",
        &[("key", "X1"), ("value", "a"), ("value_multiline", "b")],
        true,
    )
    .await;
    assert_eq!(code, 200);
    assert!(body.contains("one field only"), "{body}");

    let pem = "-----BEGIN KEY-----\r\nAAAA\r\nBBBB\r\n-----END KEY-----";
    let (_, body) = post_form(
        &app,
        "/secrets",
        &[("key", "PEM"), ("value_multiline", pem)],
        true,
    )
    .await;
    assert!(body.contains("Secret PEM saved."), "{body}");
    let (_, body) = post_form(
        &app,
        "/secrets",
        &[
            ("key", "REGION"),
            ("value", "eu-west-1"),
            ("is_parameter", "on"),
        ],
        true,
    )
    .await;
    assert!(
        body.contains("<code>eu-west-1</code>"),
        "a parameter is shown: {body}"
    );
    assert!(
        !body.contains("Listed by pipelines but not defined"),
        "{body}"
    );

    let (run, log) = app.run_to_end("etl", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}\n{log}");
    let texts = common::log_texts(&log);
    assert!(texts.contains(&"lines 4 cr False"), "{log}");
    assert!(texts.contains(&"region eu-west-1"), "{log}");

    // A change can make a parameter a secret: its value is then hidden.
    let (_, body) = post_form(
        &app,
        "/secrets/REGION/change",
        &[("value", "us-east-2"), ("kind", "secret")],
        true,
    )
    .await;
    assert!(body.contains("REGION changed (now a secret)."), "{body}");
    assert!(!body.contains("us-east-2"), "{body}");
    // Without a value only a parameter may change kind; a secret never turns visible.
    let (_, body) = post_form(
        &app,
        "/secrets",
        &[("key", "P2"), ("value", "plain-p2"), ("is_parameter", "on")],
        true,
    )
    .await;
    assert!(body.contains("<code>plain-p2</code>"), "{body}");
    let (_, body) = post_form(&app, "/secrets/P2/change", &[("kind", "secret")], true).await;
    assert!(body.contains("P2 changed (now a secret)."), "{body}");
    assert!(!body.contains("plain-p2"), "{body}");
    let (_, body) = post_form(&app, "/secrets/P2/change", &[("kind", "parameter")], true).await;
    assert!(
        body.contains("type the value again to make it a visible parameter"),
        "{body}"
    );
    let (code, _) = post_form(&app, "/secrets/NOPE/change", &[("value", "v")], false).await;
    assert_eq!(code, 404);

    let (_, body) = post_form(&app, "/secrets/API_KEY/delete", &[], true).await;
    assert!(
        body.contains("API_KEY deleted; it is still listed in the `secrets` of etl"),
        "{body}"
    );
    assert!(
        body.contains("/secrets?key=API_KEY#new-secret"),
        "missing again: {body}"
    );

    let (_, body) = post_form(
        &app,
        "/secrets/encrypt-for-pipeline",
        &[("name", "TOKEN"), ("value", "for-encrypted-env")],
        true,
    )
    .await;
    let token = body
        .split(r#"{"TOKEN": ""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no token snippet in {body}"));
    assert_eq!(
        common::python_fernet_decrypt(KEY, token),
        "for-encrypted-env"
    );
    assert!(
        !body.contains("for-encrypted-env"),
        "the value is not echoed"
    );

    // A secret stored with a key this server no longer has is flagged, with the way out.
    let foreign = fastflow::secrets::Cipher::new(&fastflow::secrets::SecretString::new(
        "oSd0JAasI6sWLaAa_YjUMUgQ12XMStp3wwfzVizFoD4=",
    ))
    .expect("key");
    fastflow::db::secrets::insert(&app.state().pool, "OLD_ONE", &foreign.encrypt("x"), false)
        .await
        .expect("insert");
    let (_, page) = app.get_text("/secrets").await;
    assert!(page.contains("cannot be decrypted"), "{page}");
    assert!(page.contains("List the key they were stored with after the current one"));

    let (code, fragment) = app.get_text("/fragments/secrets").await;
    assert_eq!(code, 200);
    assert!(
        fragment.starts_with("<section id=\"secrets-panel\">"),
        "{fragment}"
    );
    app.stop().await;
}
