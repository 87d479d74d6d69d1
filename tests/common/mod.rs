//! Test harness: starts the real app (real SQLite file, real Docker engine, real
//! HTTP server on a free port) in a temporary directory, plus helpers that wait
//! on conditions with a deadline instead of sleeping.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fastflow::app::{RunningApp, start};
use fastflow::config::Config;
use serde_json::Value;

pub mod cdp;
pub mod engine_proxy;
pub mod git_repo;
pub mod oidc;
pub mod session;
pub mod sinks;

pub const DEFAULT_TEST_IMAGE: &str = "fastflow-runner:latest";

/// The image tests run pipelines in: `FASTFLOW_TEST_IMAGE`, else the locally built runner image.
pub fn test_image() -> String {
    std::env::var("FASTFLOW_TEST_IMAGE").unwrap_or_else(|_| DEFAULT_TEST_IMAGE.to_string())
}

/// Fails the test with a clear message when no engine or image is there: Docker-backed
/// tests are never silently skipped.
pub async fn require_docker() {
    let docker = fastflow::runner::engine::connect(std::env::var("DOCKER_HOST").ok().as_deref())
        .expect("cannot build a Docker client");
    if let Err(e) = docker.ping().await {
        panic!(
            "these tests need a running Docker engine (set DOCKER_HOST or start dockerd; `bash .ci/run` does both): {e}"
        );
    }
    let image = test_image();
    if docker.inspect_image(&image).await.is_err() {
        panic!(
            "test image `{image}` is missing: build it with `scripts/build-runner-image.sh {image}` (or set FASTFLOW_TEST_IMAGE)"
        );
    }
}

pub struct TestApp {
    pub app: Option<RunningApp>,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// Sends the admin token below with every request.
    pub client: reqwest::Client,
    /// An ADMIN API token made for the test (as `fastflow token create` makes one).
    pub token: String,
    extra: Vec<(String, String)>,
}

/// `Authorization: Bearer <token>`, for clients built by hand.
pub fn auth_headers(token: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
        .expect("a token is a valid header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    headers
}

/// A client that sends `Authorization: Bearer <token>` with every request.
pub fn client_with_token(token: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(auth_headers(token))
        .build()
        .expect("HTTP client")
}

/// The body of `GET url` with `client` (any status).
pub async fn text_with(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("body")
}

/// Like [`client_with_token`], but redirects are returned, not followed.
pub fn no_redirect_client(token: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(auth_headers(token))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

/// Stores a new token with `role` and no owner, and returns it.
pub async fn make_token(pool: &fastflow::db::Pool, name: &str, role: &str) -> String {
    let made = fastflow::auth::api_token::generate().expect("random source");
    let stored = fastflow::db::api_tokens::insert(
        pool,
        &fastflow::db::api_tokens::NewApiToken {
            name,
            user_id: None,
            role,
            token_hash: &made.hash,
            expires_at: None,
        },
    )
    .await
    .expect("store the token");
    assert!(stored, "token name {name} is free");
    made.token.expose().to_string()
}

/// Tokens of the server processes started by this test binary, by base URL.
static PROCESS_TOKENS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// A client with the admin token of the server process at `base` (or none).
pub fn client_for(base: &str) -> reqwest::Client {
    let token = PROCESS_TOKENS
        .lock()
        .ok()
        .and_then(|t| t.iter().find(|(b, _)| b == base).map(|(_, t)| t.clone()));
    match token {
        Some(t) => client_with_token(&t),
        None => reqwest::Client::new(),
    }
}

/// Writes `files` (relative path → content) under `root`.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("file has a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write file");
    }
}

impl TestApp {
    /// Starts an app whose PIPELINES_DIR holds `files`, with extra env settings.
    pub async fn start_with(files: &[(&str, &str)], extra: &[(&str, &str)]) -> TestApp {
        require_docker().await;
        let dir = tempfile::tempdir().expect("tempdir");
        write_files(&dir.path().join("pipelines"), files);
        std::fs::create_dir_all(dir.path().join("pipelines")).expect("pipelines dir");
        let app = start(Self::config(dir.path(), extra))
            .await
            .expect("app starts");
        // HTTP requests wait for the first scan by themselves; tests that reach into
        // the state (the scheduler, the registry) must see it too.
        app.state.registry.wait_loaded().await;
        let base = format!("http://{}", app.addr);
        let extra = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let token = make_token(&app.state.pool, "test-admin", "ADMIN").await;
        TestApp {
            app: Some(app),
            base,
            dir,
            client: client_with_token(&token),
            token,
            extra,
        }
    }

    /// Stops the server (as on SIGTERM: running containers are left running).
    pub async fn stop_only(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// Starts a new server on the same data after `stop_only`.
    pub async fn start_again(&mut self) {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let app = start(Self::config(self.dir.path(), &extra))
            .await
            .expect("app restarts");
        app.state.registry.wait_loaded().await;
        self.base = format!("http://{}", app.addr);
        self.app = Some(app);
    }

    pub async fn start(files: &[(&str, &str)]) -> TestApp {
        Self::start_with(files, &[]).await
    }

    pub fn config(root: &Path, extra: &[(&str, &str)]) -> Config {
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("DATA_DIR".into(), root.join("data").display().to_string());
        vars.insert(
            "PIPELINES_DIR".into(),
            root.join("pipelines").display().to_string(),
        );
        vars.insert("PORT".into(), "0".into());
        vars.insert("WORKER_BASE_IMAGE".into(), test_image());
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            vars.insert("DOCKER_HOST".into(), host);
        }
        // The CI machine sits behind a TLS-intercepting proxy: containers need the host CA bundle.
        let ca = std::env::var("FASTFLOW_TEST_CA_BUNDLE")
            .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
        if Path::new(&ca).is_file() {
            vars.insert("WORKER_CA_BUNDLE".into(), ca);
        }
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Config::from_vars(&vars).expect("test config is valid")
    }

    /// The running server's shared state (scheduler, registry, runner, pool).
    pub fn state(&self) -> &fastflow::web::AppState {
        &self.app.as_ref().expect("the app is running").state
    }

    /// Rescans PIPELINES_DIR now, as the watcher would after a change.
    pub async fn refresh_pipelines(&self) {
        self.state().registry.refresh().await;
    }

    pub fn pipelines_dir(&self) -> PathBuf {
        self.dir.path().join("pipelines")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(self.url(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self.client.get(self.url(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("text body"))
    }

    pub async fn post_json(&self, path: &str, body: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    /// Triggers a run through the API and returns its id.
    pub async fn trigger(&self, pipeline: &str, body: &str) -> String {
        let (status, run) = self
            .post_json(&format!("/api/pipelines/{pipeline}/run"), body)
            .await;
        assert_eq!(status, 200, "trigger {pipeline}: {run}");
        assert_eq!(run["status"], "PENDING");
        run["id"].as_str().expect("run id").to_string()
    }

    /// Waits until no git sync runs and one has ended (the startup sync serves
    /// pipelines before it has written its log entry), and returns the status.
    pub async fn wait_sync_done(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, status) = self.get_json("/api/sync/status").await;
            if status["running"] == false && !status["last_sync_ok"].is_null() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the git sync never finished: {status}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the run has `status` and returns it.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, run) = self.get_json(&format!("/api/runs/{id}")).await;
            if run["status"] == status {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never reached {status}: {run}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Waits until the run has a final status and returns it.
    pub async fn wait_finished(&self, id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (status, run) = self.get_json(&format!("/api/runs/{id}")).await;
            assert_eq!(status, 200, "{run}");
            if matches!(
                run["status"].as_str(),
                Some("SUCCESS" | "FAILED" | "INTERRUPTED")
            ) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} did not finish within {limit:?}: {run}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn run_to_end(&self, pipeline: &str, body: &str) -> (Value, String) {
        let id = self.trigger(pipeline, body).await;
        let run = self.wait_finished(&id, Duration::from_secs(180)).await;
        let (status, log) = self.get_text(&format!("/api/runs/{id}/logs")).await;
        assert_eq!(status, 200);
        (run, log)
    }

    /// Stops the server, then removes this installation's containers: a real
    /// shutdown leaves running ones for the next start, a test has no next start.
    pub async fn stop(mut self) {
        let Some(app) = self.app.take() else { return };
        let instance = app.state.runner.deps().instance_id.clone();
        app.stop().await;
        remove_instance_containers(&instance).await;
    }
}

/// The text of each plain log line (`[YYYY-MM-DD HH:MM:SS.mmm] text`).
pub fn log_texts(log: &str) -> Vec<&str> {
    log.lines()
        .map(|l| l.split_once("] ").map(|(_, t)| t).unwrap_or(l))
        .collect()
}

/// One server-sent event.
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads an SSE response until the stream ends (or `limit` passes) and returns its events.
pub async fn read_sse(resp: reqwest::Response, limit: Duration) -> Vec<SseEvent> {
    use futures_util::StreamExt;
    let mut events = Vec::new();
    let mut current = SseEvent::default();
    let mut buf = String::new();
    let mut body = resp.bytes_stream();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(chunk)) => chunk.expect("SSE chunk"),
            Ok(None) => break,
            Err(_) => panic!(
                "SSE stream did not end within {limit:?}; got {} events",
                events.len()
            ),
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find('\n') {
            let line: String = buf.drain(..=pos).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !current.data.is_empty() || current.event.is_some() {
                    events.push(std::mem::take(&mut current));
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line
                .split_once(':')
                .map(|(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)))
                .unwrap_or((line, ""));
            match field {
                "id" => current.id = Some(value.to_string()),
                "event" => current.event = Some(value.to_string()),
                "data" => {
                    if !current.data.is_empty() {
                        current.data.push('\n');
                    }
                    current.data.push_str(value);
                }
                _ => {}
            }
        }
    }
    events
}

/// Containers (any state) labelled with this run id: `(id, labels)`.
pub async fn containers_for_run(run_id: &str) -> Vec<(String, HashMap<String, String>)> {
    use bollard::query_parameters::ListContainersOptionsBuilder;
    let docker = fastflow::runner::engine::connect(std::env::var("DOCKER_HOST").ok().as_deref())
        .expect("docker client");
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("fastflow.run_id={run_id}")],
    )]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| (c.id.unwrap_or_default(), c.labels.unwrap_or_default()))
        .collect()
}

/// Waits until no container of the run is left.
pub async fn wait_containers_removed(run_id: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = containers_for_run(run_id).await;
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "containers of run {run_id} not removed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `fastflow` server process (for kill -9, SIGTERM and resource-limit tests).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub base: String,
    /// Everything the server printed on stdout so far (its log).
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// An ADMIN token made with `fastflow token create` while it runs.
    pub token: String,
}

impl ServerProcess {
    /// Starts the binary on `root` (DATA_DIR=root/data, PIPELINES_DIR=root/pipelines).
    pub fn spawn(root: &Path, extra: &[(&str, &str)]) -> ServerProcess {
        Self::spawn_with(root, extra, |_| {})
    }

    /// As `spawn`, with a last change to the command (e.g. resource limits).
    pub fn spawn_with(
        root: &Path,
        extra: &[(&str, &str)],
        configure: impl FnOnce(&mut std::process::Command),
    ) -> ServerProcess {
        use std::io::{BufRead, BufReader};
        let config = TestApp::config(root, &[]);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fastflow"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", root.join("data"))
            .env("PIPELINES_DIR", root.join("pipelines"))
            .env("PORT", "0")
            .env("RUST_LOG", "info")
            .env("WORKER_BASE_IMAGE", test_image())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        if let Some(ca) = &config.worker_ca_bundle {
            cmd.env("WORKER_CA_BUNDLE", ca);
        }
        if let Ok(host) = std::env::var("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        configure(&mut cmd);
        let mut child = cmd.spawn().expect("spawn fastflow");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let collected = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // In text or JSON logs: the address is what follows, up to a quote.
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let addr: String = addr
                        .chars()
                        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                        .collect();
                    let _ = tx.send(addr);
                }
                if let Ok(mut lines) = collected.lock() {
                    lines.push(line);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server reports its address");
        let base = format!("http://{addr}");
        // An admin token made the way an operator makes one, while the server runs.
        let mut token_cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fastflow"));
        token_cmd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", root.join("data"))
            .env("PIPELINES_DIR", root.join("pipelines"));
        for (k, v) in extra {
            token_cmd.env(k, v);
        }
        let name = format!("test-{}", uuid::Uuid::now_v7());
        let out = token_cmd
            .args(["token", "create", "--name", &name, "--role", "admin"])
            .output()
            .expect("run fastflow token create");
        assert!(
            out.status.success(),
            "fastflow token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if let Ok(mut tokens) = PROCESS_TOKENS.lock() {
            tokens.push((base.clone(), token.clone()));
        }
        ServerProcess {
            child,
            base,
            output,
            token,
        }
    }

    /// The server's log lines so far, joined.
    pub fn log(&self) -> String {
        self.output.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Peak resident memory of the process so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmHWM")
            * 1024
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the process to exit; returns whether it did within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client bound to a server process.
pub async fn get_json_at(base: &str, path: &str) -> (u16, Value) {
    let resp = client_for(base)
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON"))
}

pub async fn get_text_at(base: &str, path: &str) -> String {
    client_for(base)
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text")
}

/// Triggers a run on a server process and returns its id.
pub async fn trigger_at(base: &str, pipeline: &str) -> String {
    let resp = client_for(base)
        .post(format!("{base}/api/pipelines/{pipeline}/run"))
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("run id")
        .to_string()
}

/// Waits (up to 3 minutes) until a run on a server process has a final status.
pub async fn wait_finished_at(base: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, run) = get_json_at(base, &format!("/api/runs/{id}")).await;
        if matches!(
            run["status"].as_str(),
            Some("SUCCESS" | "FAILED" | "INTERRUPTED")
        ) {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Force-removes every container labelled with this installation id.
pub async fn remove_instance_containers(instance_id: &str) {
    use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
    let Ok(docker) =
        fastflow::runner::engine::connect(std::env::var("DOCKER_HOST").ok().as_deref())
    else {
        return;
    };
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("fastflow.instance={instance_id}")],
    )]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    for c in docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
    {
        if let Some(id) = c.id {
            let rm = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = docker.remove_container(&id, Some(rm)).await;
        }
    }
}

/// What Python's `cryptography` makes of `arg` with `key`: `decrypt` or `encrypt`.
fn python_fernet(op: &str, key: &str, arg: &str) -> String {
    let script = format!(
        "import sys; from cryptography.fernet import Fernet; sys.stdout.write(Fernet(sys.argv[1].encode()).{op}(sys.argv[2].encode()).decode())"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script, key.trim(), arg])
        .output()
        .expect("python3 runs (python3-cryptography: bash .ci/run installs it)");
    assert!(
        out.status.success(),
        "Python could not {op}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `token` decrypted by Python's `cryptography.fernet` with `key` (exactly, no
/// newline added): the interoperability check with Fast-Flow's tokens.
pub fn python_fernet_decrypt(key: &str, token: &str) -> String {
    python_fernet("decrypt", key, token)
}

/// A Fernet token of `plain` made by Python's `cryptography` with `key`.
pub fn python_fernet_encrypt(key: &str, plain: &str) -> String {
    python_fernet("encrypt", key, plain)
}
