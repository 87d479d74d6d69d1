//! Hostile input from a pipeline repository or a request, over real HTTP against
//! the real app: symbolic links out of a pipeline directory, overflowing numbers,
//! oversized forms, forbidden environment overrides.

mod common;

use common::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_linked_out_of_the_pipeline_are_never_shown() {
    let app = TestApp::start(&[("leak/main.py", "print(1)\n"), ("env/main.py", "")]).await;
    let key_file = app.dir.path().join("data/encryption.key");
    let key = std::fs::read_to_string(&key_file).expect("the app generated a key");
    let dir = app.pipelines_dir();
    std::os::unix::fs::symlink(&key_file, dir.join("leak/requirements.txt")).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", dir.join("env/pipeline.json")).unwrap();
    let (status, _) = app.post_json("/api/pipelines/refresh", "").await;
    assert_eq!(status, 200);

    for name in ["leak", "env"] {
        // No tab shows what a link out of the directory points at.
        for tab in fastflow::web::PIPELINE_TABS {
            let (status, page) = app.get_text(&format!("/pipelines/{name}?tab={tab}")).await;
            assert_eq!(status, 200, "{name} {tab}");
            assert!(!page.contains(key.trim()), "{name} {tab}: the key leaked");
            assert!(
                !page.contains("PATH="),
                "{name} {tab}: the environment leaked"
            );
        }
        let (status, page) = app.get_text(&format!("/pipelines/{name}")).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("leads outside the pipeline directory"),
            "{name}: {page}"
        );
        assert!(
            !page.contains(key_file.to_str().unwrap()),
            "the host path is not printed"
        );
        let (_, json) = app.get_json(&format!("/api/pipelines/{name}")).await;
        assert_eq!(json["valid"], false, "{json}");
        assert!(!json.to_string().contains(key.trim()));
        let (status, body) = app
            .post_json(&format!("/api/pipelines/{name}/run"), "{}")
            .await;
        assert_eq!(status, 422, "an invalid pipeline cannot run: {body}");
    }

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastflow"))
        .args(["check", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("INVALID leak") && text.contains("INVALID env"),
        "{text}"
    );
    assert!(
        text.contains("error: leak/requirements.txt: is a symbolic link that leads outside"),
        "{text}"
    );
    assert!(!text.contains(key.trim()));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflowing_numbers_make_the_pipeline_invalid_and_every_page_renders() {
    let app = TestApp::start(&[
        ("expo/main.py", ""),
        (
            "expo/pipeline.json",
            r#"{"retry_strategy": {"type": "exponential_backoff", "initial_delay": 18446744073709551615,
                "max_delay": 18446744073709551615}, "retry_attempts": 1}"#,
        ),
        ("fixed/main.py", ""),
        (
            "fixed/pipeline.json",
            r#"{"retry_strategy": {"type": "fixed_delay", "delay": 10000000000000}, "retry_attempts": 4294967295}"#,
        ),
        ("limits/main.py", ""),
        (
            "limits/pipeline.json",
            r#"{"cpu_hard_limit": 1e-12, "mem_hard_limit": "9000000t", "max_instances": 1e30, "timeout": -1}"#,
        ),
    ])
    .await;
    for (name, field) in [
        ("expo", "retry_strategy.initial_delay"),
        ("fixed", "retry_strategy.delay"),
        ("fixed", "retry_attempts"),
        ("limits", "cpu_hard_limit"),
        ("limits", "mem_hard_limit"),
        ("limits", "max_instances"),
    ] {
        let (status, page) = app.get_text(&format!("/pipelines/{name}")).await;
        assert_eq!(status, 200, "{name}: the page renders");
        assert!(
            page.contains(&format!("field `{field}`")),
            "{name}: {field} not named"
        );
        assert!(
            page.contains("must be a number from"),
            "{name}: no range given"
        );
        let (status, _) = app
            .post_json(&format!("/api/pipelines/{name}/run"), "{}")
            .await;
        assert_eq!(status, 422, "{name} cannot run");
    }
    let (status, list) = app.get_json("/api/pipelines").await;
    assert_eq!(status, 200, "{list}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_overrides_are_limited_on_every_route() {
    let app = TestApp::start(&[("p/main.py", "print(1)\n")]).await;
    let form = |body: String| {
        app.client
            .post(app.url("/pipelines/p/run"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // 100 000 lines in the HTML form: refused at once, nothing created.
    let lines: String = (0..100_000).map(|i| format!("K{i}=v\n")).collect();
    let resp = form(serde_urlencoded::to_string([("env", lines)]).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("at most 50"));
    for (key, route) in [
        ("UV_INDEX_URL", "form"),
        ("LD_PRELOAD", "form"),
        ("PYTHONPATH", "api"),
        ("_fastflow_retry_count", "api"),
    ] {
        let resp = match route {
            "form" => form(
                serde_urlencoded::to_string([("env", format!("{key}=http://evil.example/simple"))])
                    .unwrap(),
            )
            .await
            .unwrap(),
            _ => app
                .client
                .post(app.url("/api/pipelines/p/run"))
                .header("content-type", "application/json")
                .body(format!(r#"{{"parameters": {{"{key}": "x"}}}}"#))
                .send()
                .await
                .unwrap(),
        };
        assert_eq!(resp.status(), 400, "{key} via {route}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains(key) && text.contains("cannot be set"),
            "{key}: {text}"
        );
    }
    let big = "x".repeat(16 * 1024 + 1);
    let (status, body) = app
        .post_json(
            "/api/pipelines/p/run",
            &format!(r#"{{"env_vars": {{"BIG": "{big}"}}}}"#),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // JSON bodies must say they are JSON (a cross-site form cannot).
    let resp = app
        .client
        .post(app.url("/api/pipelines/p/run"))
        .header("content-type", "text/plain")
        .body(r#"{"env_vars": {}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let (_, runs) = app.get_json("/api/runs").await;
    assert_eq!(runs["total"], 0, "no refused trigger created a run");
    // An empty body stays fine for curl -X POST.
    let resp = app
        .client
        .post(app.url("/api/pipelines/p/run"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_and_pages_do_not_wrap() {
    let app = TestApp::start(&[("p/main.py", "for i in range(5): print(i)\n")]).await;
    let (run, _) = app.run_to_end("p", "{}").await;
    let id = run["id"].as_str().unwrap();
    for query in ["?after=18446744073709551615", "?after=5"] {
        let resp = app
            .client
            .get(app.url(&format!("/api/runs/{id}/logs/stream{query}")))
            .send()
            .await
            .unwrap();
        let events = common::read_sse(resp, std::time::Duration::from_secs(10)).await;
        assert_eq!(events.len(), 1, "{query}: only the end event: {events:?}");
        assert_eq!(events[0].event.as_deref(), Some("end"));
    }
    let resp = app
        .client
        .get(app.url(&format!("/api/runs/{id}/logs/stream")))
        .header("last-event-id", "18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_eq!(
        common::read_sse(resp, std::time::Duration::from_secs(10))
            .await
            .len(),
        1
    );
    // A page past the end shows the last page (as the pipelines list does), and its
    // links never wrap around.
    let (status, page) = app.get_text("/runs?page=9223372036854775807").await;
    assert_eq!(status, 200);
    assert!(!page.contains("page=-"), "a link wrapped around");
    let (status, body) = app.get_json("/api/runs?offset=-1").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.get_json("/api/runs?limit=lots").await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabytes_without_a_newline_stay_in_bounded_memory() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    common::write_files(
        &root.path().join("pipelines"),
        &[(
            "flood/main.py",
            "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(50):\n    sys.stdout.write(chunk)\nsys.stdout.flush()\n",
        )],
    );
    let server = common::ServerProcess::spawn(root.path(), &[]);
    let id = common::trigger_at(&server.base, "flood").await;
    let run = common::wait_finished_at(&server.base, &id).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let peak = server.peak_rss();
    // The unterminated line was held whole before (about 4 × 50 MB with its copies).
    assert!(peak < 100 << 20, "peak RSS {} MiB", peak >> 20);
    // Stored as 1 MiB pieces, each but the last marked as continued.
    let log = common::get_text_at(&server.base, &format!("/api/runs/{id}/logs")).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 50, "{} lines", lines.len());
    let marker = "[fastflow: line longer than 1 MiB, continued on the next line]";
    assert!(lines[..49].iter().all(|l| l.ends_with(marker)));
    assert!(!lines[49].ends_with(marker));
    let stored: usize = common::log_texts(&log)
        .iter()
        .map(|t| t.trim_end_matches(marker).trim_end().len())
        .sum();
    assert_eq!(stored, 50 << 20, "every byte is kept");
}

/// Inotify watches this process holds (all its watchers together).
fn inotify_watches() -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fdinfo") else {
        return 0;
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_to_a_big_tree_is_not_walked_by_the_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    common::write_files(&pipelines, &[("p/main.py", "")]);
    std::os::unix::fs::symlink("/usr", pipelines.join("usr")).unwrap();
    let before = inotify_watches();
    let app = TestApp::start_with(&[], &[("PIPELINES_DIR", pipelines.to_str().unwrap())]).await;
    let added = inotify_watches().saturating_sub(before);
    // /usr alone has thousands of directories; the pipelines directory a handful.
    assert!(
        added < 200,
        "{added} watches: the watcher followed the link"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_metrics_file_is_read_in_bounded_memory() {
    common::require_docker().await;
    let root = tempfile::tempdir().unwrap();
    common::write_files(
        &root.path().join("pipelines"),
        &[("p/main.py", "print(1)\n")],
    );
    let server = common::ServerProcess::spawn(root.path(), &[]);
    let id = common::trigger_at(&server.base, "p").await;
    common::wait_finished_at(&server.base, &id).await;
    // Half a million samples: what a run of almost six days stores (80 MB).
    let path = root
        .path()
        .join("data/logs")
        .join(format!("{id}_metrics.jsonl"));
    let line = r#"{"timestamp":"2026-11-27T04:03:14.123Z","cpu_percent":12.5,"cpu_percent_of_limit":null,"ram_mb":101.25,"ram_limit_mb":null,"soft_limit_exceeded":false}"#;
    let mut text = String::with_capacity(500_000 * (line.len() + 1));
    for _ in 0..500_000 {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    let (status, metrics) =
        common::get_json_at(&server.base, &format!("/api/runs/{id}/metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(metrics["samples_total"], 500_000);
    assert!(metrics["samples"].as_array().unwrap().len() <= 2000);
    let page = common::get_text_at(&server.base, &format!("/runs/{id}")).await;
    assert!(page.len() < 2 << 20, "the run page is {} bytes", page.len());
    let peak = server.peak_rss();
    assert!(peak < 100 << 20, "peak RSS {} MiB", peak >> 20);
}
