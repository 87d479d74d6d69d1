//! Real git repositories for the git sync tests, driven with the git command line.

use std::path::Path;
use std::process::Command;

/// Runs `git` in `dir` (fixed identity, `main` as the first branch), panicking
/// with its output if it fails; returns its trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `files`, commits everything as `message`, returns the new commit's sha.
pub fn commit_files(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    super::write_files(repo, files);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A bare repository `<dir>/repos/<name>` and a work tree `<dir>/work-<name>` whose
/// `origin` it is; returns (repos folder, work tree).
pub fn bare_with_work_tree(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let repos = dir.join("repos");
    let bare = repos.join(name);
    std::fs::create_dir_all(&bare).expect("mkdir bare");
    git(&bare, &["init", "-q", "--bare"]);
    let work = dir.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).expect("mkdir work");
    git(&work, &["init", "-q"]);
    git(
        &work,
        &["remote", "add", "origin", &bare.display().to_string()],
    );
    (repos, work)
}

/// Writes `files`, commits them as `message`, pushes `main`; returns the commit's sha.
pub fn push(work: &Path, files: &[(&str, &str)], message: &str) -> String {
    let sha = commit_files(work, files, message);
    git(work, &["push", "-q", "origin", "main"]);
    sha
}

/// GitHub's `X-Hub-Signature-256` of `body` with `secret`.
pub fn github_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}
