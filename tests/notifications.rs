//! Failure notifications end to end: real runs in Docker, a real SMTP server
//! (aiosmtpd) on loopback in plain, STARTTLS and TLS modes, and a webhook
//! receiver on loopback; the Settings overrides, the per-pipeline `notify`,
//! the test buttons, retries with backoff, and messages kept across a restart.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::TestApp;
use common::sinks::{HookReceiver, SmtpSink, self_signed_cert};
use serde_json::Value;

const FLAKY: &str = "import os, sys\nprint('exit', os.environ.get('CODE'), flush=True)\nsys.exit(int(os.environ.get('CODE', '1')))\n";

/// Waits until the run has `n` notifications, none pending, and returns them.
async fn settled(app: &TestApp, run_id: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app
            .get_json(&format!("/api/notifications?run_id={run_id}"))
            .await;
        assert_eq!(status, 200, "{body}");
        let list = body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if list.len() >= n && list.iter().all(|d| d["status"] != "pending") {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id}: notifications did not settle: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn subject(mail: &Value) -> &str {
    mail["subject"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failure_timeout_oom_and_recovery_reach_mail_webhook_and_teams() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(tmp.path(), "plain", None);
    let hooks = HookReceiver::start().await;
    let port = smtp.port.to_string();
    let webhook = hooks.url("/hook/secret-token-1");
    let teams = hooks.url("/teams/secret-token-2");
    let app = TestApp::start_with(
        &[
            ("flaky/main.py", FLAKY),
            ("slow/main.py", "import time\ntime.sleep(60)\n"),
            ("slow/pipeline.json", r#"{"timeout": 1}"#),
            (
                "hog/main.py",
                "chunks = []\nfor i in range(400):\n    chunks.append(bytearray(1024 * 1024))\n",
            ),
            ("hog/pipeline.json", r#"{"mem_hard_limit": "64m"}"#),
        ],
        &[
            ("EMAIL_ENABLED", "true"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("SMTP_TLS", "none"),
            ("SMTP_FROM", "fastflow@example.com"),
            ("EMAIL_RECIPIENTS", "ops@example.com"),
            ("NOTIFY_WEBHOOK_URL", &webhook),
            ("TEAMS_ENABLED", "true"),
            ("TEAMS_WEBHOOK_URL", &teams),
        ],
    )
    .await;

    // A failure: one e-mail, one JSON webhook, one Teams card.
    let (run, _) = app
        .run_to_end("flaky", r#"{"env_vars": {"CODE": "3"}}"#)
        .await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let id = run["id"].as_str().unwrap();
    let sent = settled(&app, id, 3).await;
    assert!(sent.iter().all(|d| d["status"] == "sent"), "{sent:?}");
    let mails = smtp.wait_messages(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0]["to"], serde_json::json!(["ops@example.com"]));
    assert_eq!(mails[0]["from"], "fastflow@example.com");
    assert_eq!(subject(&mails[0]), "[Fast-Flow] Pipeline flaky failed");
    let text = mails[0]["body"].as_str().unwrap();
    assert!(text.contains(&format!("Run: {id}")), "{text}");
    assert!(text.contains("Exit code: 3"), "{text}");
    assert!(text.contains(&format!("/runs/{id}")), "{text}");
    let json = &hooks
        .wait_for("/hook/secret-token-1", 1, Duration::from_secs(10))
        .await[0]
        .body;
    assert_eq!(json["event"], "failure");
    assert_eq!(json["pipeline"], "flaky");
    assert_eq!(json["run_id"], id);
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["status"], "FAILED");
    let card = &hooks
        .wait_for("/teams/secret-token-2", 1, Duration::from_secs(10))
        .await[0]
        .body;
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["title"], "Pipeline flaky failed");
    // Where a webhook went is shown without its path: that is its key.
    let (_, log) = app.get_json("/api/notifications").await;
    let shown = log.to_string();
    assert!(!shown.contains("secret-token"), "{shown}");
    assert!(
        shown.contains(&format!("http://{}/…", hooks.addr)),
        "{shown}"
    );

    // The next success is a recovery; the one after it tells nothing.
    let (ok, _) = app
        .run_to_end("flaky", r#"{"env_vars": {"CODE": "0"}}"#)
        .await;
    assert_eq!(ok["status"], "SUCCESS", "{ok}");
    let ok_id = ok["id"].as_str().unwrap();
    settled(&app, ok_id, 3).await;
    let json = &hooks
        .wait_for("/hook/secret-token-1", 2, Duration::from_secs(10))
        .await[1]
        .body;
    assert_eq!(json["event"], "recovery");
    assert_eq!(json["run_id"], ok_id);
    let mails = smtp.wait_messages(2, Duration::from_secs(10)).await;
    assert_eq!(subject(&mails[1]), "[Fast-Flow] Pipeline flaky recovered");
    let (again, _) = app
        .run_to_end("flaky", r#"{"env_vars": {"CODE": "0"}}"#)
        .await;
    let (_, none) = app
        .get_json(&format!(
            "/api/notifications?run_id={}",
            again["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(none["notifications"], serde_json::json!([]), "{none}");

    // A timeout and an OOM kill are told as such.
    let (slow, _) = app.run_to_end("slow", "").await;
    assert_eq!(slow["error_type"], "timeout", "{slow}");
    settled(&app, slow["id"].as_str().unwrap(), 3).await;
    let (hog, _) = app.run_to_end("hog", "").await;
    assert_eq!(hog["error_type"], "oom", "{hog}");
    settled(&app, hog["id"].as_str().unwrap(), 3).await;
    let events: Vec<Value> = hooks
        .wait_for("/hook/secret-token-1", 4, Duration::from_secs(10))
        .await
        .iter()
        .map(|h| h.body["event"].clone())
        .collect();
    assert_eq!(events, ["failure", "recovery", "timeout", "oom"]);
    let mails = smtp.wait_messages(4, Duration::from_secs(10)).await;
    assert_eq!(
        subject(&mails[2]),
        "[Fast-Flow] Pipeline slow failed: timed out"
    );
    assert_eq!(
        subject(&mails[3]),
        "[Fast-Flow] Pipeline hog failed: out of memory"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_chooses_its_events_recipients_and_webhook() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = SmtpSink::start(tmp.path(), "plain", None);
    let hooks = HookReceiver::start().await;
    let port = smtp.port.to_string();
    let own = format!(
        r#"{{"notify": {{"on": ["success"], "email": ["team@example.com", "ops@example.com"], "webhook": "{}", "webhook_format": "slack"}}}}"#,
        hooks.url("/own/tok")
    );
    let app = TestApp::start_with(
        &[
            ("mine/main.py", "print('done')\n"),
            ("mine/pipeline.json", &own),
            ("quiet/main.py", "raise SystemExit(1)\n"),
            ("quiet/pipeline.json", r#"{"notify": {"on": []}}"#),
        ],
        &[
            ("EMAIL_ENABLED", "true"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &port),
            ("SMTP_FROM", "fastflow@example.com"),
            ("EMAIL_RECIPIENTS", "ops@example.com"),
            // The receiver is on loopback, which a pipeline's webhook may not reach by default.
            ("NOTIFY_ALLOW_LOOPBACK_WEBHOOKS", "true"),
        ],
    )
    .await;
    let (run, _) = app.run_to_end("mine", "").await;
    let id = run["id"].as_str().unwrap();
    let sent = settled(&app, id, 2).await;
    assert!(sent.iter().all(|d| d["status"] == "sent"), "{sent:?}");
    // One e-mail to both, each address once.
    let mails = smtp.wait_messages(1, Duration::from_secs(10)).await;
    assert_eq!(
        mails[0]["to"],
        serde_json::json!(["ops@example.com", "team@example.com"])
    );
    assert_eq!(subject(&mails[0]), "[Fast-Flow] Pipeline mine succeeded");
    // SMTP_PORT other than 465/587 tries STARTTLS only when offered; this server offers none.
    assert_eq!(mails[0]["tls"], false);
    let slack = &hooks.wait_for("/own/tok", 1, Duration::from_secs(10)).await[0].body;
    let text = slack["text"].as_str().unwrap();
    assert!(text.starts_with("*Pipeline mine succeeded*"), "{text}");
    assert!(
        text.contains(&format!("/runs/{id}|Open the run>")),
        "{text}"
    );
    // The pipeline page and API never show the webhook URL in clear.
    let (_, p) = app.get_json("/api/pipelines/mine").await;
    assert!(!p.to_string().contains("/own/tok"), "{p}");
    let (_, page) = app.get_text("/pipelines/mine?tab=configuration").await;
    assert!(
        page.contains("Also e-mailed to") && page.contains("team@example.com"),
        "the tab says what is told"
    );
    assert!(
        page.contains("Own webhook") && !page.contains("/own/tok"),
        "its webhook only by host"
    );

    let (q, _) = app.run_to_end("quiet", "").await;
    assert_eq!(q["status"], "FAILED");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, none) = app
        .get_json(&format!(
            "/api/notifications?run_id={}",
            q["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(none["notifications"], serde_json::json!([]), "{none}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_tls_with_login_set_on_the_settings_page_and_tested() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_cert(tmp.path());
    let password = "p@ss word 5ecret";
    let starttls = SmtpSink::start(
        tmp.path(),
        "starttls",
        Some((&cert, &key, "mailer", password)),
    );
    let tls = SmtpSink::start(tmp.path(), "tls", Some((&cert, &key, "mailer", password)));
    let plain = SmtpSink::start(tmp.path(), "plain", None);
    let app = TestApp::start_with(
        &[("p/main.py", "print(1)\n")],
        &[("SMTP_CA_FILE", cert.to_str().unwrap())],
    )
    .await;
    // Nothing set: the test button says what is missing.
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("EMAIL_ENABLED"),
        "{body}"
    );

    let put = |fields: Value| {
        let client = app.client.clone();
        let url = app.url("/api/settings/notifications");
        async move {
            let r = client.put(url).json(&fields).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, s) = put(serde_json::json!({
        "email_enabled": true, "smtp_host": "localhost", "smtp_port": starttls.port,
        "smtp_tls": "starttls", "smtp_user": "mailer", "smtp_password": password,
        "smtp_from": "fastflow@example.com", "email_recipients": ["ops@example.com"],
    }))
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["source"]["smtp_host"], "settings");
    assert_eq!(s["smtp_password_configured"], true);
    assert!(!s.to_string().contains(password), "{s}");
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 200, "{body}");
    let mails = starttls.wait_messages(1, Duration::from_secs(10)).await;
    assert_eq!(mails[0]["tls"], true, "STARTTLS was used");
    assert_eq!(mails[0]["login"], "mailer");
    assert_eq!(
        subject(&mails[0]),
        "[Fast-Flow] Test notification from Fast-Flow"
    );

    // TLS from the first byte (what port 465 means).
    let (status, s) = put(serde_json::json!({"smtp_port": tls.port, "smtp_tls": "tls"})).await;
    assert_eq!(status, 200, "{s}");
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        tls.wait_messages(1, Duration::from_secs(10)).await[0]["login"],
        "mailer"
    );

    // A wrong password is refused by the server: said, not retried, never shown.
    let (_, _) = put(serde_json::json!({"smtp_password": "wrong-pass-77"})).await;
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 502, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("SMTP localhost"), "{detail}");
    assert!(!detail.contains("wrong-pass-77"), "{detail}");

    // STARTTLS required, a server that offers none: refused before any password is sent.
    let (_, _) = put(serde_json::json!({"smtp_port": plain.port, "smtp_tls": "starttls", "smtp_password": password})).await;
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 502, "{body}");
    assert!(plain.messages().is_empty());

    // Bad values name their field; nothing of the change is stored.
    let (status, body) = put(serde_json::json!({"smtp_port": 99999, "smtp_host": "other"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("smtp_port:"),
        "{body}"
    );
    let (_, s) = app.get_json("/api/settings/notifications").await;
    assert_eq!(s["smtp_host"], "localhost");
    // null gives a field back to the environment.
    let (status, s) = put(serde_json::json!({"smtp_host": null})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["source"]["smtp_host"], "environment");
    assert_eq!(s["smtp_host"], Value::Null);
    // The log shows each test with its result.
    let (_, log) = app.get_json("/api/notifications").await;
    let results: Vec<&str> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["failed", "failed", "sent", "sent"], "{log}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_retries_with_backoff_off_the_run_path_and_survives_a_restart() {
    let hooks = HookReceiver::start().await;
    let url = hooks.url("/hook/k");
    let mut app =
        TestApp::start_with(&[("flaky/main.py", FLAKY)], &[("NOTIFY_WEBHOOK_URL", &url)]).await;
    // The receiver stalls: the run still ends at once, its message waits.
    *hooks.stall.lock().unwrap() = Some(Duration::from_secs(40));
    let (run, _) = app.run_to_end("flaky", "").await;
    assert_eq!(run["status"], "FAILED");
    let id = run["id"].as_str().unwrap().to_string();
    let (_, list) = app
        .get_json(&format!("/api/notifications?run_id={id}"))
        .await;
    assert_eq!(list["notifications"][0]["status"], "pending", "{list}");
    // Stop while it waits; the next process sends it (after one 500).
    app.stop_only().await;
    *hooks.stall.lock().unwrap() = None;
    hooks.fail_first.store(1, Ordering::SeqCst);
    let before = hooks.attempts.load(Ordering::SeqCst);
    app.start_again().await;
    let got = hooks.wait_for("/hook/k", 1, Duration::from_secs(60)).await;
    assert_eq!(got[0].body["run_id"], id.as_str());
    let sent = settled(&app, &id, 1).await;
    assert_eq!(sent[0]["status"], "sent", "{sent:?}");
    // The 500 and the success: two attempts in this process, 5 s apart at least.
    assert!(hooks.attempts.load(Ordering::SeqCst) - before >= 2);
    assert!(sent[0]["attempts"].as_i64().unwrap() >= 2, "{sent:?}");
    assert_eq!(
        sent[0]["last_error"],
        Value::Null,
        "a sent message keeps no error: {sent:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_saves_settings_sends_tests_and_lists_deliveries() {
    let hooks = HookReceiver::start().await;
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let (status, html) = app.get_text("/settings/notifications").await;
    assert_eq!(status, 200);
    assert!(html.contains("No notifications yet"), "{html}");
    let form = [
        ("webhook_url", hooks.url("/page/secret-xyz")),
        ("webhook_format", "json".into()),
        ("on_failure", "on".into()),
        ("on_success", "on".into()),
    ];
    let resp = app
        .client
        .post(app.url("/settings/notifications"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    assert!(html.contains("Saved; in force"), "{html}");
    assert!(!html.contains("secret-xyz"), "the URL is never shown again");
    let (_, s) = app.get_json("/api/settings/notifications").await;
    assert_eq!(s["notify_on"], serde_json::json!(["failure", "success"]));
    // The test button (htmx answers only the result line).
    let resp = app
        .client
        .post(app.url("/settings/notifications/test"))
        .header("HX-Request", "true")
        .form(&[("channel", "webhook")])
        .send()
        .await
        .unwrap();
    let line = resp.text().await.unwrap();
    assert!(line.contains("Test webhook: sent to"), "{line}");
    let got = hooks
        .wait_for("/page/secret-xyz", 1, Duration::from_secs(10))
        .await;
    assert_eq!(got[0].body["event"], "test");
    let (_, frag) = app.get_text("/fragments/notifications").await;
    assert!(frag.contains(">sent<") && frag.contains("(test)"), "{frag}");
    // A WRITE caller may test, and gets the result line, not the admins' page.
    let write = common::make_token(&app.state().pool, "writer", "WRITE").await;
    let line = common::client_with_token(&write)
        .post(app.url("/settings/notifications/test"))
        .form(&[("channel", "webhook")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        line.contains("Test webhook: sent to") && !line.contains("Credentials"),
        "{line}"
    );
    // Ten test sends a minute, all callers together; the eleventh waits.
    for i in 0..8 {
        let (status, body) = app.post_json("/api/settings/test-webhook", "").await;
        assert_eq!(status, 200, "send {i}: {body}");
    }
    let (status, body) = app.post_json("/api/settings/test-webhook", "").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        hooks
            .wait_for("/page/secret-xyz", 10, Duration::from_secs(10))
            .await
            .len(),
        10
    );
    // A bad value is refused with its field; the stored one stays.
    let resp = app
        .client
        .post(app.url("/settings/notifications"))
        .form(&[("smtp_from", "not-an-address"), ("notify_on_env", "on")])
        .send()
        .await
        .unwrap();
    let html = resp.text().await.unwrap();
    assert!(html.contains("Not saved: smtp_from:"), "{html}");
    assert!(
        html.contains(r#"value="not-an-address""#),
        "what was typed stays in the form"
    );
    let (_, s) = app.get_json("/api/settings/notifications").await;
    assert_eq!(s["notify_on"], serde_json::json!(["failure", "success"]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_server_that_stalls_or_speaks_nonsense_gets_a_clear_answer_not_a_hang() {
    // One accepts and says nothing; the other answers like a web server.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let noise = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let noise_port = noise.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut s, _)) = noise.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let app = TestApp::start_with(
        &[("p/main.py", "print(1)\n")],
        &[
            ("EMAIL_ENABLED", "true"),
            ("SMTP_HOST", "127.0.0.1"),
            ("SMTP_PORT", &silent_port),
            ("SMTP_TLS", "none"),
            ("SMTP_FROM", "fastflow@example.com"),
            ("EMAIL_RECIPIENTS", "ops@example.com"),
        ],
    )
    .await;
    let started = Instant::now();
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("did not answer")
            || body["detail"].as_str().unwrap().contains("timed out"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(29),
        "answered before the request timeout"
    );
    let put = app
        .client
        .put(app.url("/api/settings/notifications"))
        .json(&serde_json::json!({"smtp_port": noise_port}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (status, body) = app.post_json("/api/settings/test-email", "").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("SMTP 127.0.0.1:"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_webhook_may_not_reach_loopback_metadata_or_the_engine() {
    let hooks = HookReceiver::start().await;
    let port = hooks.addr.port();
    // (The engine's own address, DOCKER_HOST, is refused as well: webhook_guard's unit test.)
    let targets = [
        ("by_ip", format!("http://127.0.0.1:{port}/ip")),
        ("by_name", format!("http://localhost:{port}/name")),
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/".to_string(),
        ),
    ];
    let mut files = Vec::new();
    for (name, url) in &targets {
        files.push((
            format!("{name}/main.py"),
            "raise SystemExit(1)\n".to_string(),
        ));
        files.push((
            format!("{name}/pipeline.json"),
            format!(r#"{{"notify": {{"webhook": "{url}"}}}}"#),
        ));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let app = TestApp::start_with(&files, &[]).await;
    for (name, _) in &targets {
        let (run, _) = app.run_to_end(name, "").await;
        let sent = settled(&app, run["id"].as_str().unwrap(), 1).await;
        assert_eq!(sent[0]["status"], "failed", "{name}: {sent:?}");
        let error = sent[0]["last_error"].as_str().unwrap();
        assert!(error.contains("may not post to"), "{name}: {error}");
        assert_eq!(sent[0]["attempts"], 1, "a refusal is not retried: {sent:?}");
    }
    assert!(
        hooks.hooks().is_empty(),
        "nothing reached loopback: {:?}",
        hooks.hooks()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_at_the_same_time_are_all_kept() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let fields = [
        ("smtp_host", serde_json::json!("mail.example.com")),
        ("smtp_user", serde_json::json!("mailer")),
        ("smtp_from", serde_json::json!("ff@example.com")),
        ("smtp_port", serde_json::json!(2525)),
        ("smtp_tls", serde_json::json!("starttls")),
        ("email_recipients", serde_json::json!("ops@example.com")),
        ("smtp_password", serde_json::json!("pw-1234567")),
    ];
    let puts = fields.iter().map(|(field, value)| {
        let client = app.client.clone();
        let url = app.url("/api/settings/notifications");
        let body = serde_json::json!({ *field: value.clone() });
        async move {
            client
                .put(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(puts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let (_, s) = app.get_json("/api/settings/notifications").await;
    for (field, _) in &fields {
        assert_eq!(s["source"][field], "settings", "{field} was lost: {s}");
    }
    assert_eq!(s["smtp_port"], 2525, "{s}");
    app.stop().await;
}
