//! Run behaviour against the real Docker engine, through the real HTTP API.

mod common;

use std::time::Duration;

use common::{TestApp, log_texts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_env_defaults_and_overrides() {
    let app = TestApp::start(&[
        (
            "envy/main.py",
            "import os\nfor k in ['A', 'B', 'C', 'FASTFLOW_PIPELINE', 'FASTFLOW_RUN_ID']:\n    print(f'{k}={os.environ.get(k)}')\n",
        ),
        ("envy/pipeline.json", r#"{"default_env": {"A": "from-default", "B": "from-default"}}"#),
    ])
    .await;
    let (run, log) = app
        .run_to_end(
            "envy",
            r#"{"env_vars": {"B": "from-run"}, "parameters": {"C": "param"}}"#,
        )
        .await;
    assert_eq!(run["status"], "SUCCESS", "{run}\n{log}");
    assert_eq!(run["exit_code"], 0);
    assert!(run["error_type"].is_null());
    let texts = log_texts(&log);
    assert!(texts.contains(&"A=from-default"), "{log}");
    assert!(texts.contains(&"B=from-run"), "{log}");
    assert!(texts.contains(&"C=param"), "{log}");
    assert!(texts.contains(&"FASTFLOW_PIPELINE=envy"), "{log}");
    assert!(
        texts.contains(&format!("FASTFLOW_RUN_ID={}", run["id"].as_str().unwrap()).as_str()),
        "{log}"
    );
    // Run values are masked in the API, like Fast-Flow 1.x.
    assert_eq!(run["env_vars"]["B"], "***");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_fails_with_traceback_and_exit_codes_are_kept() {
    let app = TestApp::start(&[
        (
            "boom/main.py",
            "def f():\n    raise ValueError('boom happened')\nprint('before')\nf()\n",
        ),
        (
            "three/main.py",
            "import sys\nprint('leaving with 3')\nsys.exit(3)\n",
        ),
    ])
    .await;
    let (run, log) = app.run_to_end("boom", "").await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "pipeline_error");
    assert_eq!(run["exit_code"], 1);
    assert_eq!(
        run["error_message"], "main.py exited with code 1: ValueError: boom happened",
        "the message carries the exception line"
    );
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(log.contains("ValueError: boom happened"), "{log}");
    // Each stream keeps its order (stdout and stderr are separate pipes, so Docker may
    // deliver a stdout line and a stderr line in either order).
    assert!(log.contains("before"));
    assert!(log.find("Traceback").unwrap() < log.find("ValueError: boom happened").unwrap());

    let (run, log) = app.run_to_end("three", "").await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["error_type"], "pipeline_error");
    assert_eq!(run["error_message"], "main.py exited with code 3");
    assert!(log.contains("leaving with 3"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_container() {
    let app = TestApp::start(&[
        (
            "slow/main.py",
            "import time\nprint('sleeping', flush=True)\ntime.sleep(120)\nprint('never')\n",
        ),
        ("slow/pipeline.json", r#"{"timeout": 2}"#),
    ])
    .await;
    let id = app.trigger("slow", "").await;
    // While it runs, its container carries the run's labels.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let labels = loop {
        if let Some((_, labels)) = common::containers_for_run(&id).await.into_iter().next() {
            break labels;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no labelled container appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(labels["fastflow.pipeline"], "slow");
    assert!(labels.contains_key("fastflow.instance"));
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert_eq!(run["error_type"], "timeout");
    assert!(
        run["error_message"].as_str().unwrap().contains("2s"),
        "{run}"
    );
    assert!(log.contains("sleeping") && !log.contains("never"), "{log}");
    assert!(run["duration_seconds"].as_f64().unwrap() < 60.0, "{run}");
    // The container is removed after a kill, too.
    common::wait_containers_removed(&id, Duration::from_secs(30)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_hog_is_oom_and_names_the_limit() {
    let app = TestApp::start(&[
        (
            "hog/main.py",
            "chunks = []\nfor i in range(400):\n    chunks.append(bytearray(1024 * 1024))\n    if i % 50 == 0:\n        print(f'allocated {i} MiB', flush=True)\nprint('survived')\n",
        ),
        ("hog/pipeline.json", r#"{"mem_hard_limit": "64m"}"#),
    ])
    .await;
    let (run, log) = app.run_to_end("hog", "").await;
    assert_eq!(run["status"], "FAILED", "{run}\n{log}");
    assert_eq!(run["error_type"], "oom", "{run}\n{log}");
    assert!(
        run["error_message"].as_str().unwrap().contains("64m"),
        "{run}"
    );
    assert!(!log.contains("survived"));
    common::wait_containers_removed(run["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirements_are_installed_by_uv() {
    let app = TestApp::start(&[
        (
            "deps/main.py",
            "import six\nprint('six', six.__version__)\n",
        ),
        ("deps/requirements.txt", "six==1.16.0\n"),
    ])
    .await;
    let (run, log) = app.run_to_end("deps", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}\n{log}");
    assert!(log_texts(&log).contains(&"six 1.16.0"), "{log}");
    // The shared cache was written by the unprivileged pipeline user.
    let cache = app.dir.path().join("data/uv_cache");
    assert!(
        std::fs::read_dir(&cache).unwrap().count() > 0,
        "uv cache is empty"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_lines_arrive_complete_and_in_order() {
    let app = TestApp::start(&[(
        "flood/main.py",
        "import sys\nfor i in range(200000):\n    print(i)\nsys.stdout.write('last line without newline')\n",
    )])
    .await;
    let (run, log) = app.run_to_end("flood", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let texts = log_texts(&log);
    assert_eq!(texts.len(), 200_001, "line count");
    for (i, text) in texts.iter().take(200_000).enumerate() {
        assert_eq!(*text, i.to_string(), "line {i} out of order or missing");
    }
    assert_eq!(texts[200_000], "last line without newline");
    assert_eq!(run["log_lines"], 200_001);
    assert_eq!(run["log_truncated"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_unicode_and_stderr_are_kept() {
    let app = TestApp::start(&[(
        "bytes/main.py",
        "import sys\nprint('héllo ☃ 日本語')\nsys.stdout.flush()\nsys.stdout.buffer.write(b'bad \\xff\\xfe bytes\\n')\nsys.stdout.buffer.flush()\nprint('to stderr', file=sys.stderr)\nsys.stderr.flush()\nsys.stdout.write('partial')\n",
    )])
    .await;
    let id = app.trigger("bytes", "").await;
    let run = app.wait_finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    let (_, log) = app.get_text(&format!("/api/runs/{id}/logs")).await;
    let texts = log_texts(&log);
    assert!(texts.contains(&"héllo ☃ 日本語"), "{log}");
    assert!(texts.contains(&"bad \u{fffd}\u{fffd} bytes"), "{log}");
    assert!(texts.contains(&"to stderr"), "{log}");
    assert_eq!(texts.last(), Some(&"partial"), "{log}");
    // The stream of each line is recorded (visible in the SSE payload).
    let resp = app
        .client
        .get(app.url(&format!("/api/runs/{id}/logs/stream")))
        .send()
        .await
        .unwrap();
    let events = common::read_sse(resp, Duration::from_secs(10)).await;
    let stderr_line = events
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.data).ok())
        .find(|v| v["text"] == "to stderr")
        .expect("stderr line in stream");
    assert_eq!(stderr_line["stream"], "stderr");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_is_hardened() {
    let script = r#"
import os
def attempt(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        return "writable"
    except OSError as e:
        return f"refused ({e.strerror})"
print("app:", attempt("/app/new.txt"))
print("root:", attempt("/etc/new.txt"))
print("tmp:", attempt("/tmp/new.txt"))
print("uid:", os.getuid())
with open("/proc/self/status") as f:
    caps = [l.split()[1] for l in f if l.startswith("CapEff")]
print("capeff:", caps[0])
"#;
    let app = TestApp::start(&[("hard/main.py", script)]).await;
    let (run, log) = app.run_to_end("hard", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}\n{log}");
    let texts = log_texts(&log);
    assert!(
        texts.contains(&"app: refused (Read-only file system)"),
        "{log}"
    );
    assert!(
        texts.contains(&"root: refused (Read-only file system)"),
        "{log}"
    );
    assert!(texts.contains(&"tmp: writable"), "{log}");
    assert!(!texts.contains(&"uid: 0"), "pipeline ran as root: {log}");
    assert!(texts.contains(&"capeff: 0000000000000000"), "{log}");
    assert!(!app.pipelines_dir().join("hard/new.txt").exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_log_is_truncated_visibly() {
    let app = TestApp::start_with(
        &[(
            "chatty/main.py",
            "for i in range(20000):\n    print('x' * 100, i)\n",
        )],
        &[("LOG_MAX_SIZE_MB", "0.1")],
    )
    .await;
    let (run, log) = app.run_to_end("chatty", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert_eq!(run["log_truncated"], true);
    assert!(
        log.contains("[fastflow] log truncated: LOG_MAX_SIZE_MB limit of 102.4 KiB reached"),
        "{}",
        &log[log.len().saturating_sub(500)..]
    );
    assert!(log.contains("more lines"), "drop count missing");
    let size = std::fs::metadata(
        app.dir
            .path()
            .join(format!("data/logs/{}.log", run["id"].as_str().unwrap())),
    )
    .unwrap()
    .len();
    assert!(size < 110 * 1024, "log file is {size} bytes");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_image_fails_with_a_clear_infrastructure_error() {
    let app = TestApp::start_with(
        &[("p/main.py", "print(1)\n")],
        &[("WORKER_BASE_IMAGE", "fastflow-test-no-such-image:never")],
    )
    .await;
    let (run, log) = app.run_to_end("p", "").await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["error_type"], "infrastructure_error");
    let msg = run["error_message"].as_str().unwrap();
    assert!(
        msg.contains("fastflow-test-no-such-image:never") && msg.contains("build-runner-image.sh"),
        "{msg}"
    );
    assert!(
        log.contains("[fastflow]"),
        "reason is also in the log: {log}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_runs_queues_the_rest() {
    let app = TestApp::start_with(
        &[(
            "one_at_a_time/main.py",
            "import time\ntime.sleep(0.5)\nprint('done')\n",
        )],
        &[("MAX_CONCURRENT_RUNS", "1")],
    )
    .await;
    let first = app.trigger("one_at_a_time", "").await;
    let second = app.trigger("one_at_a_time", "").await;
    let a = app.wait_finished(&first, Duration::from_secs(60)).await;
    let b = app.wait_finished(&second, Duration::from_secs(60)).await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("SUCCESS"), Some("SUCCESS"))
    );
    let parse =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    // FIFO, and the second was only taken from the queue after the first had finished.
    assert!(
        parse(&b["claimed_at"]) >= parse(&a["finished_at"]),
        "{a}\n{b}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_is_unbuffered_unless_a_pipeline_opts_out() {
    let probe = "import sys\nprint(f'unbuffered={int(sys.stdout.write_through)}')\n";
    let app = TestApp::start(&[
        ("live/main.py", probe),
        ("blocks/main.py", probe),
        (
            "blocks/pipeline.json",
            r#"{"default_env": {"PYTHONUNBUFFERED": ""}}"#,
        ),
    ])
    .await;
    let (run, log) = app.run_to_end("live", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert!(log_texts(&log).contains(&"unbuffered=1"), "{log}");
    let (run, log) = app.run_to_end("blocks", "").await;
    assert_eq!(run["status"], "SUCCESS", "{run}");
    assert!(log_texts(&log).contains(&"unbuffered=0"), "{log}");
    app.stop().await;
}
