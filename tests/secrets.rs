//! Secrets and parameters through the JSON API: created, listed (a secret's
//! value never comes back, a parameter's does), changed, deleted with a warning
//! naming the pipelines that list it, the keys pipelines ask for, a value
//! encrypted for `encrypted_env` that Python's `cryptography` opens, and no
//! plaintext secret in the database file.

mod common;

use std::process::Command;

use common::TestApp;
use serde_json::json;

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let resp = app
        .client
        .clone()
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let code = resp.status().as_u16();
    (code, resp.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_write_only_parameters_visible_and_nothing_is_stored_in_plain_text() {
    let mut app = TestApp::start_with(
        &[
            ("etl/main.py", "print(1)\n"),
            (
                "etl/pipeline.json",
                r#"{"secrets": ["API_KEY", "MISSING_ONE"], "default_env": {"LOG_LEVEL": "INFO"},
                    "schedules": [{"id": "nightly", "default_env": {"NIGHTLY_ONLY": "1"}}]}"#,
            ),
        ],
        &[],
    )
    .await;
    let secret = "sk_live_plain_secret_value_77";
    let (code, made) = app
        .post_json(
            "/api/secrets",
            &json!({"key": "API_KEY", "value": secret}).to_string(),
        )
        .await;
    assert_eq!(code, 201, "{made}");
    let (code, _) = app
        .post_json(
            "/api/secrets",
            &json!({"key": "REGION", "value": "eu-west-1", "is_parameter": true}).to_string(),
        )
        .await;
    assert_eq!(code, 201);
    for (body, code_wanted, expected) in [
        (json!({"key": "API_KEY", "value": "again"}), 409, "exists"),
        (
            json!({"key": "9BAD", "value": "x"}),
            400,
            "not a valid environment variable name",
        ),
        (
            json!({"key": "FASTFLOW_RUN_ID", "value": "x"}),
            400,
            "`FASTFLOW_RUN_ID` is reserved",
        ),
        (
            json!({"key": "NUL", "value": "a\u{0}b"}),
            400,
            "contains a NUL character",
        ),
        (
            json!({"key": "OK", "value": "x", "extra": 1}),
            400,
            "unknown field",
        ),
    ] {
        let (code, refused) = app.post_json("/api/secrets", &body.to_string()).await;
        assert_eq!(code, code_wanted, "{body}: {refused}");
        let detail = refused["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(expected), "{body}: {detail}");
    }

    // Stored secrets are configuration, like default_env: a private index URL with
    // its token is what a pipeline's requirements need (a run-time override may not set it).
    let (code, made) = app
        .post_json(
            "/api/secrets",
            &json!({"key": "UV_INDEX_URL", "value": "https://u:t@pypi.example/simple"}).to_string(),
        )
        .await;
    assert_eq!(code, 201, "{made}");
    let (code, _) = send(
        &app,
        reqwest::Method::DELETE,
        "/api/secrets/UV_INDEX_URL",
        "",
    )
    .await;
    assert_eq!(code, 200);

    let (_, body) = app.get_json("/api/secrets").await;
    assert!(!body.to_string().contains(secret), "{body}");
    // Fast-Flow's shape: {"secrets": [...], "total": N}, paged by limit / offset.
    assert_eq!(body["total"], 2, "{body}");
    let list = &body["secrets"];
    assert_eq!(list[0]["key"], "API_KEY");
    assert!(list[0]["value"].is_null());
    assert_eq!(list[0]["pipelines"], json!(["etl"]));
    assert_eq!(list[1]["key"], "REGION");
    assert_eq!(list[1]["value"], "eu-west-1");

    let (_, page) = app.get_json("/api/secrets?limit=1&offset=1").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["secrets"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["secrets"][0]["key"], "REGION");
    let (code, _) = app.get_json("/api/secrets?limit=0").await;
    assert_eq!(code, 400);

    // Fast-Flow's fields (key, pipeline, source, run_config_id) for every key a
    // pipeline names, and for `secrets` entries whether each is defined.
    let (_, asked) = app.get_json("/api/secrets/from-pipelines").await;
    assert_eq!(
        asked,
        json!([
            {"key": "LOG_LEVEL", "pipeline": "etl", "source": "default_env", "run_config_id": null},
            {"key": "NIGHTLY_ONLY", "pipeline": "etl", "source": "default_env", "run_config_id": "nightly"},
            {"key": "API_KEY", "pipeline": "etl", "source": "secrets", "run_config_id": null,
             "defined": true, "is_parameter": false},
            {"key": "MISSING_ONE", "pipeline": "etl", "source": "secrets", "run_config_id": null,
             "defined": false, "is_parameter": null},
        ])
    );

    let rotated = "sk_live_rotated_value_88";
    let (code, _) = send(
        &app,
        reqwest::Method::PUT,
        "/api/secrets/API_KEY",
        &json!({"value": rotated}).to_string(),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = send(
        &app,
        reqwest::Method::PUT,
        "/api/secrets/NOPE",
        r#"{"value": "x"}"#,
    )
    .await;
    assert_eq!(code, 404);

    let (code, enc) = app
        .post_json(
            "/api/secrets/encrypt-for-pipeline",
            r#"{"value": "for encrypted_env"}"#,
        )
        .await;
    assert_eq!(code, 200);
    let token = enc["encrypted"].as_str().unwrap_or_default().to_string();
    assert!(token.starts_with("gAAAAA"), "{enc}");

    let (code, deleted) = send(&app, reqwest::Method::DELETE, "/api/secrets/API_KEY", "").await;
    assert_eq!(code, 200, "{deleted}");
    assert!(
        deleted["warning"]
            .as_str()
            .is_some_and(|w| w.contains("etl")),
        "{deleted}"
    );
    let (code, _) = send(&app, reqwest::Method::DELETE, "/api/secrets/API_KEY", "").await;
    assert_eq!(code, 404);
    let (code, _) = app
        .post_json(
            "/api/secrets",
            &json!({"key": "API_KEY", "value": rotated}).to_string(),
        )
        .await;
    assert_eq!(code, 201);

    let data_dir = app.state().config.data_dir.clone();
    app.stop_only().await;
    let mut read_db = false;
    for entry in std::fs::read_dir(&data_dir).expect("data dir").flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("fastflow.db") {
            let bytes = std::fs::read(entry.path()).expect("read");
            read_db |= name == "fastflow.db" && !bytes.is_empty();
            for plain in [secret, rotated] {
                assert!(
                    !bytes.windows(plain.len()).any(|w| w == plain.as_bytes()),
                    "{name} holds a secret in plain text"
                );
            }
        }
    }
    assert!(read_db, "the database file was read");
    let key = std::fs::read_to_string(data_dir.join("encryption.key")).expect("key");
    assert_eq!(
        common::python_fernet_decrypt(&key, &token),
        "for encrypted_env"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_re_encrypts_what_older_keys_made() {
    let (old, new) = (
        fernet::Fernet::generate_key(),
        fernet::Fernet::generate_key(),
    );
    let mut app = TestApp::start_with(&[], &[("ENCRYPTION_KEY", &old)]).await;
    let (code, _) = app
        .post_json(
            "/api/secrets",
            r#"{"key": "API_KEY", "value": "rotate-me"}"#,
        )
        .await;
    assert_eq!(code, 201);
    let (code, _) = app
        .post_json(
            "/api/secrets",
            r#"{"key": "REGION", "value": "plain", "is_parameter": true}"#,
        )
        .await;
    assert_eq!(code, 201);
    let pool = app.state().pool.clone();
    let old_cipher =
        fastflow::secrets::Cipher::new(&fastflow::secrets::SecretString::new(&old)).expect("key");
    fastflow::db::git_repo_config::put(
        &pool,
        &fastflow::db::git_repo_config::StoredRepoConfig {
            repo_url: Some("https://example.com/r.git".into()),
            webhook_secret_encrypted: Some(old_cipher.encrypt("hook")),
            ..Default::default()
        },
    )
    .await
    .expect("store");
    let db_url = app.state().config.database_url.clone();
    let data_dir = app.state().config.data_dir.clone();
    app.stop_only().await;

    let rotate = || {
        Command::new(env!("CARGO_BIN_EXE_fastflow"))
            .arg("rotate-key")
            .env_clear()
            .env("DATA_DIR", &data_dir)
            .env("DATABASE_URL", &db_url)
            .env("ENCRYPTION_KEYS", format!("{new},{old}"))
            .output()
            .expect("fastflow rotate-key")
    };
    let out = rotate();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 2 value(s)"));
    let again = rotate();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("re-encrypted 0 value(s)"),
        "a second run has nothing to do"
    );

    // The newest key alone now opens everything.
    let only_new =
        fastflow::secrets::Cipher::new(&fastflow::secrets::SecretString::new(&new)).expect("key");
    let pool = fastflow::db::connect(&db_url).await.expect("db");
    let secret = fastflow::db::secrets::get(&pool, "API_KEY")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        only_new.decrypt(&secret.value).expect("new key").expose(),
        "rotate-me"
    );
    let param = fastflow::db::secrets::get(&pool, "REGION")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(param.value, "plain", "parameters are not encrypted");
    let repo = fastflow::db::git_repo_config::get(&pool)
        .await
        .expect("read")
        .expect("row");
    let hook = repo.webhook_secret_encrypted.expect("secret");
    assert_eq!(only_new.decrypt(&hook).expect("new key").expose(), "hook");
}
