//! The blocking part of a sync: fetch the branch into the mirror and write its
//! tip's snapshot, with the tree ids that tell which pipelines changed.

use std::path::{Path, PathBuf};

use super::{FolderIds, SyncError, fetch, snapshot};

/// What a fetch wrote: the tip, its sha, its snapshot directory, the previous
/// commit, and the folders' tree ids before and after.
pub(super) type Written = (
    fetch::Tip,
    String,
    PathBuf,
    Option<String>,
    (FolderIds, FolderIds),
);

/// The blocking part of a sync: fetch the branch and write its tip's snapshot.
pub(super) fn fetch_and_write(
    session: &fetch::Session<'_>,
    mirror_dir: &Path,
    snapshots: &Path,
    old: Option<String>,
) -> Result<Written, SyncError> {
    let spec = session.spec;
    std::fs::create_dir_all(mirror_dir).map_err(|e| SyncError::write(mirror_dir, e))?;
    remove_abandoned_packs(mirror_dir);
    let mirror = fetch::open_mirror(mirror_dir)?;
    let tip = fetch::fetch(&mirror, session)?;
    let sha = tip.commit.to_string();
    let dir = snapshot::materialize(&mirror, tip.commit, snapshots)?;
    check_subdir_inside(&dir, &spec.subdir, &sha)?;
    let ids = (
        old.as_deref()
            .map(|o| snapshot::folder_ids(&mirror, o, &spec.subdir))
            .unwrap_or_default(),
        snapshot::folder_ids(&mirror, &sha, &spec.subdir),
    );
    Ok((tip, sha, dir, old, ids))
}

/// Removes the temporary pack files a killed fetch leaves (libgit2 names them
/// `pack_git2_*`); only the sync holding this mirror writes them.
fn remove_abandoned_packs(mirror_dir: &Path) {
    let packs = mirror_dir.join("objects").join("pack");
    for entry in std::fs::read_dir(&packs).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("pack_git2_")
        {
            if let Err(e) = std::fs::remove_file(entry.path()) {
                tracing::warn!(error = %e, "removing {}", entry.path().display());
            }
        }
    }
}

/// `PIPELINES_SUBDIR` must be real folders of the snapshot all the way down: a
/// symlink among them (pushed to the repository) would make the server serve, and
/// runs mount, whatever folder of the host it points to.
fn check_subdir_inside(snapshot: &Path, subdir: &str, sha: &str) -> Result<(), SyncError> {
    let short = &sha[..12.min(sha.len())];
    let mut path = snapshot.to_path_buf();
    for part in subdir.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(SyncError::Content(format!(
                    "commit {short}: `{subdir}` (PIPELINES_SUBDIR) goes through a symlink, `{part}`; it must be a folder of the repository"
                )));
            }
            Ok(m) if m.is_dir() => {}
            _ => {
                return Err(SyncError::Content(format!(
                    "commit {short} has no folder `{subdir}` (PIPELINES_SUBDIR)"
                )));
            }
        }
    }
    Ok(())
}
