//! `fastflow import-fastflow` against a database with the Python Fast-Flow
//! 1.x's own schema (tests/fixtures/fastflow-1x-schema.sql, made by its models),
//! rows written the way 1.x writes them (32-hex ids, naive UTC times, plain
//! secret values in env_vars, `_fastflow_*` markers) and a secret encrypted by
//! Python's `cryptography`: history, retry chain, masking, counters, secrets
//! that open with the same key, and a second import that changes nothing.

mod common;

use std::process::Command;

use common::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_fastflow");

fn python(code: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", code])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An empty database with the 1.x schema.
async fn schema_db(path: &std::path::Path) -> sqlx::SqlitePool {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(include_str!("fixtures/fastflow-1x-schema.sql"))
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn source_db(path: &std::path::Path, token: &str) {
    let pool = schema_db(path).await;
    let runs = [
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
            "SUCCESS",
            Some(0),
            r#"{"DB_PASSWORD": "hunter2", "LOG_LEVEL": "DEBUG"}"#,
            Some("2026-01-05 10:00:07.250000"),
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2",
            "FAILED",
            Some(1),
            r#"{"_fastflow_error_type": "infrastructure_error", "_fastflow_error_message": "docker went away", "_fastflow_retry_count": "0"}"#,
            Some("2026-01-05 11:00:03"),
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa3",
            "FAILED",
            Some(1),
            r#"{"_fastflow_retry_count": "1", "_fastflow_previous_run_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2"}"#,
            Some("2026-01-05 11:01:00"),
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa4",
            "RUNNING",
            None,
            "{}",
            None,
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa5",
            "WARNING",
            None,
            "{}",
            Some("2026-01-06 09:00:00"),
        ),
    ];
    for (i, (id, status, exit, env, finished)) in runs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO pipeline_runs (id, pipeline_name, status, log_file, env_vars, parameters,
                 started_at, finished_at, exit_code, triggered_by, git_sha)
             VALUES (?, 'etl', ?, ?, ?, '{\"DAY\": \"2026-01-05\"}', ?, ?, ?, ?, 'abc123')",
        )
        .bind(id)
        .bind(status)
        .bind(format!("/app/logs/etl_{i}.log"))
        .bind(env)
        .bind(format!("2026-01-05 1{i}:00:00.000001"))
        .bind(finished)
        .bind(exit)
        .bind(if i == 2 { "webhook_retry" } else { "webhook" })
        .execute(&pool)
        .await
        .unwrap();
    }
    for (key, value, is_parameter) in [("API_TOKEN", token, 1 == 0), ("REGION", "eu-west-1", true)]
    {
        sqlx::query(
            r#"INSERT INTO secrets (id, "key", value, is_parameter, created_at, updated_at)
               VALUES (lower(hex(randomblob(16))), ?, ?, ?, '2025-12-01 08:00:00.5', '2025-12-02 08:00:00')"#,
        )
        .bind(key)
        .bind(value)
        .bind(is_parameter)
        .execute(&pool)
        .await
        .unwrap();
    }
    let users = [
        (
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb1",
            "alice",
            "ADMIN",
            0,
            "active",
            Some("12345"),
            None,
            None,
        ),
        (
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2",
            "bob",
            "READONLY",
            0,
            "pending",
            None,
            Some("google-sub-9"),
            None,
        ),
        (
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb3",
            "carol",
            "WRITE",
            1,
            "active",
            None,
            None,
            Some("oidc|carol"),
        ),
    ];
    for (id, name, role, blocked, status, github, google, custom) in users {
        sqlx::query(
            "INSERT INTO users (id, username, email, role, blocked, status, github_id, github_login,
                 google_id, custom_oauth_id, created_at, last_login_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '2025-11-01 12:00:00', '2026-01-04 09:30:00.5')",
        )
        .bind(id)
        .bind(name)
        .bind(format!("{name}@example.com"))
        .bind(role)
        .bind(blocked)
        .bind(status)
        .bind(github)
        .bind(github.map(|_| name))
        .bind(google)
        .bind(custom)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Scheduler jobs as 1.x kept them: one from a pipeline.json switched off,
    // one on, one made through its API.
    for (id, trigger, value, enabled, source, config) in [
        ("c1", "CRON", "0 6 * * *", false, "pipeline_json", None),
        (
            "c2",
            "INTERVAL",
            "300",
            true,
            "pipeline_json",
            Some("hourly"),
        ),
        (
            "c3",
            "CRON",
            "*/5 * * * *",
            false,
            "pipeline_json",
            Some("nightly"),
        ),
        ("c4", "CRON", "30 2 * * 1", true, "api", None),
    ] {
        sqlx::query(
            "INSERT INTO scheduled_jobs (id, pipeline_name, trigger_type, trigger_value, enabled,
                 source, run_config_id, created_at)
             VALUES (?, 'etl', ?, ?, ?, ?, ?, '2025-12-01 08:00:00')",
        )
        .bind(format!("{id:0>32}"))
        .bind(trigger)
        .bind(value)
        .bind(enabled)
        .bind(source)
        .bind(config)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO orchestrator_settings (id, email_enabled, smtp_host, smtp_port, smtp_user,
             smtp_password_encrypted, smtp_from, email_recipients, teams_enabled, teams_webhook_url)
         VALUES (1, 1, 'mail.example.com', 465, 'mailer', ?, 'ff@example.com',
                 'ops@example.com,dev@example.com', 1, 'https://x.webhook.office.com/webhookb2/t0ken')",
    )
    .bind(token)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fastflow_1x_database_is_imported_once_and_fully() {
    let key =
        python("from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())");
    let token = python(&format!(
        "from cryptography.fernet import Fernet; print(Fernet(b'{key}').encrypt(b's3cret-value').decode())"
    ));
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("fastflow.db");
    source_db(&src, &token).await;
    let data = dir.path().join("data");
    let import = || {
        Command::new(BIN)
            .args(["import-fastflow", src.to_str().unwrap()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", &data)
            .env("ENCRYPTION_KEY", &key)
            .output()
            .unwrap()
    };
    let first = import();
    let said = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(said.contains("040_add_user_last_login"), "{said}");
    assert!(
        said.contains(": 5 runs (0 already here, 1 unfinished"),
        "{said}"
    );
    assert!(
        said.contains("2 secrets and parameters (0 already here)"),
        "{said}"
    );
    assert!(
        !said.contains("do not open"),
        "the Python-made token opens here: {said}"
    );
    assert!(
        said.contains("scheduler: 2 jobs switched off in 1.x are off here too (0 already had an override); notification settings: imported"),
        "{said}"
    );
    assert!(
        said.contains("etl (cron 30 2 * * 1)"),
        "the API job is named: {said}"
    );
    let again = String::from_utf8_lossy(&import().stdout).to_string();
    assert!(
        again.contains(": 0 runs (5 already here") && again.contains("(2 already here)"),
        "{again}"
    );
    assert!(
        again.contains("0 jobs switched off in 1.x are off here too (2 already had an override); notification settings: already set here"),
        "{again}"
    );

    let app = TestApp::start_with(
        &[],
        &[
            ("DATA_DIR", data.to_str().unwrap()),
            ("ENCRYPTION_KEY", &key),
        ],
    )
    .await;
    let pool = &app.state().pool;
    let ok = fastflow::db::runs::get(pool, "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa1")
        .await
        .unwrap()
        .expect("dashed id");
    assert_eq!(ok.status.as_str(), "SUCCESS");
    assert_eq!(ok.exit_code, Some(0));
    assert_eq!(
        ok.env_vars.0["DB_PASSWORD"], "***",
        "1.x's plain secret values are masked"
    );
    assert_eq!(ok.parameters.0["DAY"], "2026-01-05");
    assert_eq!(ok.git_sha.as_deref(), Some("abc123"));
    assert_eq!(
        ok.started_at.to_rfc3339(),
        "2026-01-05T10:00:00.000001+00:00"
    );
    assert_eq!(
        ok.finished_at.map(|t| t.to_rfc3339()).as_deref(),
        Some("2026-01-05T10:00:07.250+00:00")
    );
    let infra = fastflow::db::runs::get(pool, "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        infra.error_type.map(|e| e.as_str()),
        Some("infrastructure_error")
    );
    assert_eq!(infra.error_message.as_deref(), Some("docker went away"));
    assert!(
        !infra.env_vars.0.contains_key("_fastflow_error_message"),
        "markers become columns"
    );
    let retry = fastflow::db::runs::get(pool, "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retry.attempt, 2);
    assert_eq!(
        retry.previous_run_id.as_deref(),
        Some("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa2")
    );
    assert_eq!(retry.triggered_by, "webhook_retry");
    for (id, why) in [
        (
            "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa4",
            "left this run RUNNING",
        ),
        ("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa5", "WARNING"),
    ] {
        let run = fastflow::db::runs::get(pool, id).await.unwrap().unwrap();
        assert_eq!(run.status.as_str(), "INTERRUPTED", "{id}");
        assert!(
            run.error_message
                .as_deref()
                .unwrap_or_default()
                .contains(why),
            "{id}: {:?}",
            run.error_message
        );
    }
    // Counted like runs that ended here: the daily counters have them.
    let (_, daily) = app.get_json("/api/stats/daily?days=3650").await;
    let total: i64 = daily
        .as_array()
        .unwrap_or_else(|| panic!("{daily}"))
        .iter()
        .map(|d| {
            d["total_runs"]
                .as_i64()
                .or_else(|| d["total"].as_i64())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 5, "{daily}");
    // The secret opens with the key it was made with, the parameter stays plain.
    let stored = fastflow::db::secrets::get(pool, "API_TOKEN")
        .await
        .unwrap()
        .unwrap();
    let cipher =
        fastflow::secrets::Cipher::new(&fastflow::secrets::SecretString::new(key.clone())).unwrap();
    assert_eq!(
        cipher.decrypt(&stored.value).unwrap().expose(),
        "s3cret-value"
    );
    let region = fastflow::db::secrets::get(pool, "REGION")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(region.value, "eu-west-1");
    // Users keep their role, status, block and provider accounts.
    let alice = fastflow::db::users::by_username(pool, "alice")
        .await
        .unwrap()
        .expect("alice");
    assert_eq!(
        (alice.role.as_str(), alice.status.as_str()),
        ("ADMIN", "active")
    );
    assert_eq!(
        fastflow::db::identities::owner(pool, "github", "12345")
            .await
            .unwrap(),
        Some(alice.id.clone())
    );
    let bob = fastflow::db::users::by_username(pool, "bob")
        .await
        .unwrap()
        .expect("bob");
    assert_eq!(bob.status.as_str(), "pending");
    assert_eq!(
        fastflow::db::identities::owner(pool, "google", "google-sub-9")
            .await
            .unwrap(),
        Some(bob.id)
    );
    let carol = fastflow::db::users::by_username(pool, "carol")
        .await
        .unwrap()
        .expect("carol");
    assert!(carol.blocked, "carol stays blocked");
    assert_eq!(
        fastflow::db::identities::owner(pool, "custom", "oidc|carol")
            .await
            .unwrap(),
        Some(carol.id)
    );
    // The switched-off jobs are off here, the other follows pipeline.json.
    use fastflow::scheduler::jobs::{JobKind, job_id};
    let rows = fastflow::db::schedule::all_jobs(pool).await.unwrap();
    for (config, want) in [(None, Some(false)), (Some("nightly"), Some(false))] {
        let id = job_id("etl", config, JobKind::Schedule);
        assert_eq!(
            rows.get(&id).and_then(|r| r.enabled_override),
            want,
            "{config:?}"
        );
    }
    assert!(!rows.contains_key(&job_id("etl", Some("hourly"), JobKind::Schedule)));
    // The notification settings, the Fernet password opening with the same key.
    let (_, n) = app.get_json("/api/settings/notifications").await;
    assert_eq!(n["smtp_host"], "mail.example.com", "{n}");
    assert_eq!(n["smtp_port"], 465);
    assert_eq!(n["smtp_tls"], "tls", "port 465 means TLS");
    assert_eq!(
        n["email_recipients"],
        serde_json::json!(["ops@example.com", "dev@example.com"])
    );
    assert_eq!(n["smtp_password_configured"], true);
    assert_eq!(n["teams_webhook_url"], "https://x.webhook.office.com/…");
    assert_eq!(n["source"]["smtp_host"], "settings");
    let stored = fastflow::db::notify_settings::get(pool).await.unwrap();
    assert_eq!(
        cipher
            .decrypt(stored.smtp_password_encrypted.as_deref().unwrap())
            .unwrap()
            .expose(),
        "s3cret-value"
    );
    assert!(
        !stored
            .teams_webhook_url_encrypted
            .unwrap()
            .contains("t0ken"),
        "encrypted here"
    );
    app.stop().await;
}

#[test]
fn a_file_that_is_not_a_fastflow_database_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("notes.db");
    std::fs::write(&junk, b"not sqlite at all, just text").unwrap();
    let out = Command::new(BIN)
        .args(["import-fastflow", junk.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("notes.db"), "{err}");
    assert!(
        !dir.path().join("data/fastflow.db").exists(),
        "nothing was written before the source was read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_1x_settings_are_left_out_by_name_not_stored() {
    let key =
        python("from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("fastflow.db");
    let pool = schema_db(&src).await;
    for (id, name, enabled) in [
        ("d1", "../../etc", "0"),
        ("d2", "etl", "maybe"),
        ("d3", "etl", "0"),
    ] {
        sqlx::query(&format!(
            "INSERT INTO scheduled_jobs (id, pipeline_name, trigger_type, trigger_value, enabled, source, created_at)
             VALUES ('{id:0>32}', ?, 'CRON', '0 6 * * *', '{enabled}', 'pipeline_json', '2025-12-01 08:00:00')"
        ))
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO orchestrator_settings (id, email_enabled, smtp_host, smtp_port, smtp_password_encrypted,
             smtp_from, email_recipients, teams_webhook_url)
         VALUES (1, 1, 'mail host\r\nRCPT TO:<evil@x>', 99999999, 'not-a-fernet-token', 'bad from',
                 'ops@example.com,<script>', 'file:///etc/passwd')",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args(["import-fastflow", src.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", &data)
        .env("ENCRYPTION_KEY", &key)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("1 jobs switched off in 1.x are off here too"),
        "only etl's valid row: {said}"
    );
    assert!(
        said.contains("scheduler job of `../../etc` left out"),
        "{said}"
    );
    assert!(
        said.contains("1 scheduler jobs left out: a value of the wrong type"),
        "{said}"
    );
    for field in [
        "smtp_host",
        "smtp_port",
        "smtp_from",
        "email_recipients",
        "teams_webhook_url",
        "smtp_password",
    ] {
        assert!(said.contains(field), "{field} is named as left out: {said}");
    }
    let pool = fastflow::db::connect(&format!("sqlite://{}", data.join("fastflow.db").display()))
        .await
        .unwrap();
    let stored = fastflow::db::notify_settings::get(&pool).await.unwrap();
    assert_eq!(stored.smtp_host, None, "a host with CR/LF is not stored");
    assert_eq!(stored.smtp_password_encrypted, None);
    assert_eq!(stored.email_enabled, Some(true), "valid fields come over");
}
