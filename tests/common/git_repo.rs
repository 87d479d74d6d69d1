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
