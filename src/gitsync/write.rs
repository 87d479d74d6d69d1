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
    git_dir: &Path,
    snapshots: &Path,
    old: Option<String>,
) -> Result<Written, SyncError> {
    let spec = session.spec;
    std::fs::create_dir_all(git_dir).map_err(|e| SyncError::write(git_dir, e))?;
    let mirror = fetch::open_mirror(&git_dir.join("mirror.git"))?;
    let tip = fetch::fetch(&mirror, session)?;
    let sha = tip.commit.to_string();
    let dir = snapshot::materialize(&mirror, tip.commit, snapshots)?;
    if !spec.subdir.is_empty() && !dir.join(&spec.subdir).is_dir() {
        return Err(SyncError::Content(format!(
            "commit {} has no folder `{}` (PIPELINES_SUBDIR)",
            &sha[..12.min(sha.len())],
            spec.subdir
        )));
    }
    let ids = (
        old.as_deref()
            .map(|o| snapshot::folder_ids(&mirror, o, &spec.subdir))
            .unwrap_or_default(),
        snapshot::folder_ids(&mirror, &sha, &spec.subdir),
    );
    Ok((tip, sha, dir, old, ids))
}
