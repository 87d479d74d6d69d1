//! The bare mirrors under `DATA_DIR/git`: one per repository, named by its URL,
//! and removing those of repositories no longer configured.

use std::path::Path;

/// The mirror folder's name for the repository at `shown_url`.
pub(super) fn mirror_name(shown_url: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(shown_url.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("mirror-{hex}.git")
}

/// Removes the mirrors in `git_dir` other than `keep` (`None`: all of them),
/// with the objects of repositories no longer configured.
pub(crate) fn remove_other_mirrors(git_dir: &Path, keep: Option<&str>) {
    for entry in std::fs::read_dir(git_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let is_mirror =
            name == "mirror.git" || (name.starts_with("mirror-") && name.ends_with(".git"));
        if is_mirror && Some(name.as_str()) != keep {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => {
                    tracing::info!(mirror = %name, "removed the mirror of a repository no longer configured")
                }
                Err(e) => tracing::warn!(error = %e, "removing {}", entry.path().display()),
            }
        }
    }
}
