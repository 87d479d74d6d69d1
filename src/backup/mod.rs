//! `fastflow backup DIR`: a consistent copy of the database (`VACUUM INTO`, taken
//! while the server runs), the run logs and metrics files of `LOGS_DIR`, and the
//! generated encryption key when there is one, with a manifest written last — a
//! backup without its manifest is incomplete and `restore` refuses it.
//! `restore` lives in [`restore`].

pub mod restore;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;

pub const MANIFEST: &str = "backup.json";
pub const DATABASE: &str = "fastflow.db";
pub const LOGS: &str = "logs";
pub const KEY: &str = "encryption.key";

/// What a backup holds; `restore` reads it back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub fastflow_version: String,
    pub created_at: DateTime<Utc>,
    pub runs: i64,
    pub finished_runs: i64,
    pub database_bytes: u64,
    pub log_files: u64,
    pub log_bytes: u64,
    pub includes_encryption_key: bool,
}

/// The file of a `sqlite:` URL (`sqlite://path?mode=…` or `sqlite:path`).
pub fn database_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

pub fn main(dir: PathBuf) -> ExitCode {
    crate::command_runtime::run_with_config(false, |config| async move {
        let m = backup(&config, &dir).await?;
        Ok(format!(
            "backup written to {}: {} runs ({} finished), {} log and metrics files ({} bytes){}",
            dir.display(),
            m.runs,
            m.finished_runs,
            m.log_files,
            m.log_bytes,
            if m.includes_encryption_key {
                ", the encryption key"
            } else {
                ""
            }
        ))
    })
}

/// Writes the backup into `dir` (created; it must be new or empty).
pub async fn backup(config: &Config, dir: &Path) -> Result<Manifest, String> {
    prepare_target(dir)?;
    let source = database_file(&config.database_url).ok_or_else(|| {
        format!(
            "DATABASE_URL {} names no database file",
            config.database_url
        )
    })?;
    if !source.exists() {
        return Err(format!("the database {} does not exist", source.display()));
    }
    let pool = crate::db::connect(&config.database_url)
        .await
        .map_err(|e| format!("opening the database: {e}"))?;
    let target = dir.join(DATABASE);
    crate::db::backup::copy_into(&pool, &target)
        .await
        .map_err(|e| format!("copying the database into {}: {e}", target.display()))?;
    pool.close().await;
    let copy = crate::db::connect(&format!("sqlite://{}", target.display()))
        .await
        .map_err(|e| format!("opening the copy {}: {e}", target.display()))?;
    let (runs, finished_runs) = crate::db::backup::run_counts(&copy)
        .await
        .map_err(|e| format!("reading the copy: {e}"))?;
    copy.close().await;
    let database_bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    let logs_target = dir.join(LOGS);
    let (log_files, log_bytes) = copy_flat_files(&config.logs_dir, &logs_target).map_err(|e| {
        format!(
            "copying LOGS_DIR {} into {}: {e}",
            config.logs_dir.display(),
            logs_target.display()
        )
    })?;
    let key_file = crate::secrets::key_file(&config.data_dir);
    let includes_encryption_key = key_file.is_file();
    if includes_encryption_key {
        copy_private(&key_file, &dir.join(KEY))
            .map_err(|e| format!("copying the encryption key {}: {e}", key_file.display()))?;
    }
    let manifest = Manifest {
        fastflow_version: crate::release_check::current_version().to_string(),
        created_at: Utc::now(),
        runs,
        finished_runs,
        database_bytes,
        log_files,
        log_bytes,
        includes_encryption_key,
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    write_synced(&dir.join(MANIFEST), &text)
        .map_err(|e| format!("writing {}: {e}", dir.join(MANIFEST).display()))?;
    Ok(manifest)
}

fn prepare_target(dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: give a new or empty directory, so no earlier backup is mixed into this one",
                    dir.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
        }
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// Copies the regular files directly in `from` (run logs and metrics files are
/// flat) into `to`, each synced; symbolic links and folders are left out.
pub(crate) fn copy_flat_files(from: &Path, to: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::create_dir_all(to)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    let entries = match std::fs::read_dir(from) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let target = to.join(entry.file_name());
        let copied = std::fs::copy(entry.path(), &target)?;
        std::fs::File::open(&target)?.sync_all()?;
        files += 1;
        bytes = bytes.saturating_add(copied);
    }
    std::fs::File::open(to)?.sync_all()?;
    Ok((files, bytes))
}

/// Copies a secret file, readable by its owner only.
pub(crate) fn copy_private(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let data = std::fs::read(from)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    std::io::Write::write_all(&mut file, &data)?;
    file.sync_all()
}

pub(crate) fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_name_their_file() {
        assert_eq!(
            database_file("sqlite://data/fastflow.db"),
            Some("data/fastflow.db".into())
        );
        assert_eq!(
            database_file("sqlite:///abs/f.db?mode=rwc"),
            Some("/abs/f.db".into())
        );
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(database_file("postgres://x"), None);
    }
}
