//! Snapshots: each synced commit written out into its own directory
//! (`<snapshots>/<sha>`). It is written under a temporary name and renamed into
//! place, so a snapshot directory that exists is complete, and nothing writes to
//! it again: a run that mounted it sees the same files until it ends.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use super::SyncError;

/// Most entries (files, folders, symlinks) a snapshot may hold: a few hundred
/// bytes of crafted trees can otherwise name millions of folders.
pub const MAX_ENTRIES: usize = 50_000;
/// Deepest folder nesting a snapshot may have.
pub const MAX_DEPTH: usize = 64;
/// Most bytes of file content a snapshot may hold (1 GiB).
pub const MAX_BYTES: u64 = 1 << 30;

/// Prefix of snapshots being written (removed at start if a crash left one).
const PARTIAL_PREFIX: &str = ".partial-";

/// The directory of commit `sha` under `snapshots`.
pub fn dir_of(snapshots: &Path, sha: &str) -> PathBuf {
    snapshots.join(sha)
}

/// Writes commit `commit`'s tree to `<snapshots>/<sha>` unless it is there already.
pub fn materialize(repo: &Repository, commit: Oid, snapshots: &Path) -> Result<PathBuf, SyncError> {
    let sha = commit.to_string();
    let done = dir_of(snapshots, &sha);
    if done.is_dir() {
        return Ok(done);
    }
    fs::create_dir_all(snapshots).map_err(|e| SyncError::write(snapshots, e))?;
    let partial = snapshots.join(format!("{PARTIAL_PREFIX}{sha}-{}", std::process::id()));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| SyncError::write(&partial, e))?;
    }
    fs::create_dir(&partial).map_err(|e| SyncError::write(&partial, e))?;
    let written = write_tree(repo, commit, &partial);
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&partial);
        return Err(e);
    }
    fs::rename(&partial, &done).map_err(|e| {
        let _ = fs::remove_dir_all(&partial);
        SyncError::write(&done, e)
    })?;
    Ok(done)
}

fn write_tree(repo: &Repository, commit: Oid, into: &Path) -> Result<(), SyncError> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| SyncError::Repository(format!("reading commit {commit}: {}", e.message())))?;
    let mut entries = 0usize;
    let mut bytes = 0u64;
    let mut failure: Option<SyncError> = None;
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let step = (|| {
            use std::os::unix::ffi::OsStrExt;
            // Names are bytes in git; any but these are kept as they are (Latin-1 too).
            let name = entry.name_bytes();
            let shown = String::from_utf8_lossy(name);
            let rel_shown = format!("{parent}{shown}");
            if name.is_empty()
                || name == b"."
                || name == b".."
                || name.iter().any(|b| matches!(b, b'/' | b'\\' | 0))
            {
                return Err(SyncError::Content(format!(
                    "`{rel_shown}`: not a plain file name"
                )));
            }
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(SyncError::Content(format!(
                    "the commit has more than {MAX_ENTRIES} files and folders"
                )));
            }
            if parent.matches('/').count() >= MAX_DEPTH {
                return Err(SyncError::Content(format!(
                    "`{rel_shown}`: folders nested deeper than {MAX_DEPTH}"
                )));
            }
            let path = into.join(parent).join(std::ffi::OsStr::from_bytes(name));
            let rel = rel_shown;
            match entry.kind() {
                Some(ObjectType::Tree) => {
                    fs::create_dir(&path).map_err(|e| SyncError::write(&path, e))?;
                }
                Some(ObjectType::Blob) => {
                    let blob = repo
                        .find_blob(entry.id())
                        .map_err(|e| SyncError::Repository(format!("{rel}: {}", e.message())))?;
                    bytes = bytes.saturating_add(blob.size() as u64);
                    if bytes > MAX_BYTES {
                        return Err(SyncError::Content(format!(
                            "the commit's files add up to more than {} MiB",
                            MAX_BYTES >> 20
                        )));
                    }
                    write_blob(&path, entry.filemode(), blob.content())?;
                }
                // A submodule: its commit is elsewhere; Fast-Flow does not fetch it.
                Some(ObjectType::Commit) => {}
                _ => {}
            }
            Ok(())
        })();
        match step {
            Ok(()) => TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                TreeWalkResult::Abort
            }
        }
    })
    .map_err(|e| match failure.take() {
        Some(f) => f,
        None => SyncError::Repository(format!("walking the tree: {}", e.message())),
    })?;
    match failure {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// A file as git stores it: executable bit kept, symlinks as symlinks (the
/// pipeline reader refuses any that lead outside the pipeline's folder).
fn write_blob(path: &Path, mode: i32, content: &[u8]) -> Result<(), SyncError> {
    use std::os::unix::fs::{OpenOptionsExt, symlink};
    const SYMLINK: i32 = 0o120000;
    const EXECUTABLE: i32 = 0o100755;
    if mode == SYMLINK {
        let target = std::str::from_utf8(content).map_err(|_| {
            SyncError::Content(format!(
                "{}: a symlink target that is not UTF-8",
                path.display()
            ))
        })?;
        return symlink(target, path).map_err(|e| SyncError::write(path, e));
    }
    let perm = if mode == EXECUTABLE { 0o755 } else { 0o644 };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(perm)
        .open(path)
        .map_err(|e| SyncError::write(path, e))?;
    file.write_all(content)
        .map_err(|e| SyncError::write(path, e))
}

/// Removes every snapshot under `snapshots` but those in `keep`, and partial ones.
/// Returns how many were removed; one that cannot be removed is logged and kept.
pub fn collect_garbage(snapshots: &Path, keep: &[String]) -> usize {
    let Ok(entries) = fs::read_dir(snapshots) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let partial_of_other = name.starts_with(PARTIAL_PREFIX)
            && !name.ends_with(&format!("-{}", std::process::id()));
        let is_snapshot = name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if (is_snapshot && !keep.contains(&name)) || partial_of_other {
            match fs::remove_dir_all(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => {
                    tracing::warn!(snapshot = %name, error = %e, "cannot remove an unused snapshot")
                }
            }
        }
    }
    removed
}

/// The tree id of each folder in `subdir` of `commit` (a folder whose id changed
/// has changed somewhere inside); empty if the commit or folder is not there.
pub fn folder_ids(
    repo: &Repository,
    commit: &str,
    subdir: &str,
) -> std::collections::BTreeMap<String, Oid> {
    let mut ids = std::collections::BTreeMap::new();
    let Ok(oid) = Oid::from_str(commit) else {
        return ids;
    };
    let Ok(root) = repo.find_commit(oid).and_then(|c| c.tree()) else {
        return ids;
    };
    let tree = if subdir.is_empty() {
        root
    } else {
        match root
            .get_path(Path::new(subdir))
            .and_then(|e| e.to_object(repo))
            .and_then(|o| o.peel_to_tree())
        {
            Ok(t) => t,
            Err(_) => return ids,
        }
    };
    for entry in tree.iter() {
        if entry.kind() == Some(ObjectType::Tree) {
            if let Ok(name) = entry.name() {
                ids.insert(name.to_string(), entry.id());
            }
        }
    }
    ids
}

impl super::GitSync {
    /// Removes snapshots that neither serve nor are mounted by a run.
    pub(super) async fn collect_garbage(&self) {
        let mut keep: Vec<String> = match crate::db::gitsync::commits_in_use(&self.pool).await {
            Ok(k) => k,
            // Not knowing what runs use, remove nothing.
            Err(_) => return,
        };
        if let Some(active) = self
            .status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .commit
            .clone()
        {
            keep.push(active);
        }
        {
            let mut handed = self
                .handed_out
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            handed.retain(|(_, weak)| weak.strong_count() > 0);
            keep.extend(handed.iter().map(|(sha, _)| sha.clone()));
        }
        let snapshots = self.snapshots_dir();
        let removed = tokio::task::spawn_blocking(move || collect_garbage(&snapshots, &keep))
            .await
            .unwrap_or(0);
        if removed > 0 {
            tracing::info!(removed, "removed git snapshots no run uses");
        }
    }
}
