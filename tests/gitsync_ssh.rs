//! Git sync over SSH with a deploy key, against a real OpenSSH server started by
//! the test on loopback: host key pinned on first use, a changed host key
//! refused until the pin is reset, `GIT_SSH_KNOWN_HOSTS` checked strictly, and a
//! refused key keeping the previous snapshot.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestApp;
use common::git_repo::git;

const SSHD: &str = "/usr/sbin/sshd";

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn keygen(path: &Path) {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path));
}

/// `SHA256:…` of a public key file, as `ssh-keygen -l` prints it.
fn fingerprint(public: &Path) -> String {
    let line = run(Command::new("ssh-keygen").arg("-lf").arg(public));
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// An sshd on a free loopback port, serving git for root with one authorized key.
struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Sshd {
    fn start(dir: &Path, host_key: &Path, authorized: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        std::fs::create_dir_all("/run/sshd").expect("privilege separation dir");
        let config = dir.join(format!("sshd_config_{port}"));
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {}/sshd_{port}.pid\n",
                host_key.display(),
                authorized.display(),
                dir.display()
            ),
        )
        .expect("sshd config");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            dir: dir.to_path_buf(),
            port,
            child,
        }
    }

    fn restart_with(&mut self, host_key: &Path, authorized: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self = Sshd::start(&self.dir.clone(), host_key, authorized);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_key_sync_with_pinned_and_known_host_keys() {
    if !Path::new(SSHD).exists() {
        panic!("{SSHD} is missing: install openssh-server (bash .ci/run does)");
    }
    common::require_docker().await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (host_a, host_b, user, other) = (
        dir.join("host_a"),
        dir.join("host_b"),
        dir.join("deploy"),
        dir.join("other"),
    );
    for key in [&host_a, &host_b, &user, &other] {
        keygen(key);
    }
    let authorized = dir.join("authorized_keys");
    std::fs::copy(user.with_extension("pub"), &authorized).expect("authorize");
    let mut sshd = Sshd::start(dir, &host_a, &authorized);

    let bare = dir.join("repos/r.git");
    std::fs::create_dir_all(&bare).expect("mkdir");
    git(&bare, &["init", "-q", "--bare"]);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&work, &["init", "-q"]);
    git(
        &work,
        &["remote", "add", "origin", &bare.display().to_string()],
    );
    let commit = |files: &[(&str, &str)], message: &str| {
        common::write_files(&work, files);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", message]);
        git(&work, &["push", "-q", "origin", "main"]);
        git(&work, &["rev-parse", "HEAD"])
    };
    let first = commit(&[("job/main.py", "print('over ssh')\n")], "first");

    let url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, bare.display());
    let private = std::fs::read_to_string(&user).expect("deploy key");
    let app = TestApp::start_with(
        &[],
        &[("GIT_REPO_URL", &url), ("GIT_SYNC_DEPLOY_KEY", &private)],
    )
    .await;
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], first.as_str(), "{status}");
    let (run, log) = app.run_to_end("job", "{}").await;
    assert!(log.contains("over ssh"), "{run}: {log}");

    // The host key was pinned on first use.
    let (_, key) = app.get_json("/api/sync/host-key/status").await;
    assert_eq!(key["mode"], "pinned", "{key}");
    let pinned_a = fingerprint(&host_a.with_extension("pub"));
    assert_eq!(
        key["expected"][0]["fingerprint"],
        pinned_a.as_str(),
        "{key}"
    );
    assert_eq!(key["matches"], true);
    let (_, page) = app.get_text("/sync").await;
    assert!(
        page.contains("Pinned on first use") && page.contains(&pinned_a),
        "{page}"
    );

    let second = commit(&[("job/main.py", "print('second')\n")], "second");
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    assert_eq!(synced["new_commit"], second.as_str());

    // The deploy key is revoked: a clear error, the snapshot stays.
    std::fs::copy(other.with_extension("pub"), &authorized).expect("revoke");
    commit(&[("job/main.py", "print('third')\n")], "third");
    let (code, failed) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{failed}");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("credentials")),
        "{failed}"
    );
    assert!(!failed.to_string().contains("PRIVATE KEY"));
    let status = app.wait_sync_done().await;
    assert_eq!(status["commit"], second.as_str());
    std::fs::copy(user.with_extension("pub"), &authorized).expect("restore");

    // The server's host key changes: refused, naming both fingerprints, until reset.
    app.stop().await;
    sshd.restart_with(&host_b, &authorized);
    let url_b = format!("ssh://root@127.0.0.1:{}{}", sshd.port, bare.display());
    let app = TestApp::start_with(
        &[],
        &[("GIT_REPO_URL", &url_b), ("GIT_SYNC_DEPLOY_KEY", &private)],
    )
    .await;
    // A new installation: it pins host B at once. Pin A by hand to play the changed key.
    app.wait_sync_done().await;
    let pinned_b = fingerprint(&host_b.with_extension("pub"));
    let (_, key) = app.get_json("/api/sync/host-key/status").await;
    assert_eq!(
        key["expected"][0]["fingerprint"],
        pinned_b.as_str(),
        "{key}"
    );
    let host_a_blob = std::fs::read_to_string(host_a.with_extension("pub")).expect("pub");
    let blob = host_a_blob.split_whitespace().nth(1).unwrap_or_default();
    let pool = &app.state().pool;
    fastflow::db::gitsync::unpin_host_key(pool, "127.0.0.1")
        .await
        .expect("unpin");
    fastflow::db::gitsync::pin_host_key(pool, "127.0.0.1", "ssh-ed25519", blob)
        .await
        .expect("pin A");
    commit(&[("job/main.py", "print('fourth')\n")], "fourth");
    let (code, refused) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{refused}");
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("changed") && detail.contains(&pinned_a) && detail.contains(&pinned_b),
        "{detail}"
    );
    let (code, _) = app
        .post_json("/api/sync/host-key/reset", r#"{"confirm_text": "yes"}"#)
        .await;
    assert_eq!(code, 400, "a reset needs the URL typed");
    let (code, reset) = app
        .post_json(
            "/api/sync/host-key/reset",
            &serde_json::json!({ "confirm_text": url_b }).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{reset}");
    assert_eq!(reset["old_fingerprint"], pinned_a.as_str());
    assert_eq!(reset["new_fingerprint"], pinned_b.as_str());
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    app.stop().await;

    // GIT_SSH_KNOWN_HOSTS is strict: the wrong key refuses, the right one syncs.
    for (known, ok) in [(&host_a, false), (&host_b, true)] {
        let line = std::fs::read_to_string(known.with_extension("pub")).expect("pub");
        let known_hosts = format!("[127.0.0.1]:{} {}", sshd.port, line.trim());
        let app = TestApp::start_with(
            &[],
            &[
                ("GIT_REPO_URL", &url_b),
                ("GIT_SYNC_DEPLOY_KEY", &private),
                ("GIT_SSH_KNOWN_HOSTS", &known_hosts),
            ],
        )
        .await;
        let status = app.wait_sync_done().await;
        assert_eq!(status["last_sync_ok"], ok, "{status}");
        if !ok {
            let error = status["last_error"].as_str().unwrap_or_default();
            assert!(error.contains("GIT_SSH_KNOWN_HOSTS"), "{error}");
        }
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_key_generated_by_the_server_syncs_once_it_is_added() {
    if !Path::new(SSHD).exists() {
        panic!("{SSHD} is missing: install openssh-server (bash .ci/run does)");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let host = dir.join("host");
    keygen(&host);
    let authorized = dir.join("authorized_keys");
    std::fs::write(&authorized, "").expect("no key yet");
    let sshd = Sshd::start(dir, &host, &authorized);
    let (repos, work) = common::git_repo::bare_with_work_tree(dir, "r.git");
    let first = common::git_repo::push(&work, &[("job/main.py", "print('keyed')\n")], "first");
    let url = format!(
        "ssh://root@127.0.0.1:{}{}",
        sshd.port,
        repos.join("r.git").display()
    );

    let app = TestApp::start_with(&[("local/main.py", "print(0)\n")], &[]).await;
    let (code, made) = app
        .post_json(
            "/api/sync/repo-config/generate-deploy-key",
            &serde_json::json!({ "repo_url": url }).to_string(),
        )
        .await;
    assert_eq!(code, 200, "{made}");
    let public = made["public_key"].as_str().unwrap_or_default().to_string();
    assert!(public.starts_with("ssh-ed25519 "), "{made}");
    assert_eq!(made["deploy_key_public"], public.as_str());
    assert_eq!(made["credentials"], "deploy_key");
    assert!(!made.to_string().contains("PRIVATE KEY"), "{made}");
    let (_, page) = app.get_text("/sync").await;
    assert!(page.contains(&public), "the Sync page shows the public key");
    assert!(!page.contains("PRIVATE KEY"));

    // Not added yet: refused, clearly.
    let (code, refused) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 502, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("credentials"))
    );
    // Added as a deploy key: the sync works, and the host key got pinned.
    std::fs::write(&authorized, format!("{public}\n")).expect("authorize");
    let (code, synced) = app.post_json("/api/sync", "").await;
    assert_eq!(code, 200, "{synced}");
    assert_eq!(synced["new_commit"], first.as_str());
    let (run, log) = app.run_to_end("job", "{}").await;
    assert!(log.contains("keyed"), "{run}: {log}");
    let (_, key) = app.get_json("/api/sync/host-key/status").await;
    assert_eq!(key["mode"], "pinned", "{key}");
    assert_eq!(
        key["expected"][0]["fingerprint"],
        fingerprint(&host.with_extension("pub")).as_str()
    );
    app.stop().await;
}
