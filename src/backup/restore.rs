//! `fastflow restore DIR [--force]`: puts a backup back while no server runs on
//! `DATA_DIR` (it holds the data lock). The backup's database is copied next to
//! the live one, checked (SQLite's quick_check, migrated to this version, its runs
//! counted against the manifest), and only then renamed into place; the database
//! it replaces is kept as `fastflow.db.before-restore-<time>`. Log and metrics
//! files are copied into `LOGS_DIR`; the encryption key into `DATA_DIR` when
//! there is none (with `--force` an existing one is kept aside and replaced).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{
    DATABASE, KEY, LOGS, MANIFEST, Manifest, copy_flat_files, copy_private, database_file,
};
use crate::config::Config;

pub fn main(dir: PathBuf, force: bool) -> ExitCode {
    crate::command_runtime::run_with_config(true, |config| async move {
        restore(&config, &dir, force).await
    })
}

/// Restores `dir` into the configured `DATA_DIR` / `LOGS_DIR`; the sentence
/// returned says what was put back.
pub async fn restore(config: &Config, dir: &Path, force: bool) -> Result<String, String> {
    let manifest: Manifest = std::fs::read(dir.join(MANIFEST))
        .map_err(|e| {
            format!(
                "{} has no readable {MANIFEST} ({e}): it is not a complete backup",
                dir.display()
            )
        })
        .and_then(|text| {
            serde_json::from_slice(&text)
                .map_err(|e| format!("{}: {e}", dir.join(MANIFEST).display()))
        })?;
    let Some(_lock) = crate::data_lock::try_lock(&config.data_dir)
        .map_err(|e| format!("locking DATA_DIR {}: {e}", config.data_dir.display()))?
    else {
        return Err(format!(
            "a Fast-Flow server is running on DATA_DIR {}: stop it first",
            config.data_dir.display()
        ));
    };
    let live = database_file(&config.database_url).ok_or_else(|| {
        format!(
            "DATABASE_URL {} names no database file",
            config.database_url
        )
    })?;
    if live.exists() && !force {
        return Err(format!(
            "{} exists: restore replaces it only with --force (it is then kept as {}.before-restore-<time>)",
            live.display(),
            live.display()
        ));
    }
    let staged = with_suffix(&live, ".restoring");
    remove_database_files(&staged);
    std::fs::copy(dir.join(DATABASE), &staged).map_err(|e| {
        format!(
            "copying {} to {}: {e}",
            dir.join(DATABASE).display(),
            staged.display()
        )
    })?;
    if let Err(e) = check_staged(&staged, &manifest).await {
        remove_database_files(&staged);
        return Err(e);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut kept = None;
    if live.exists() {
        let aside = with_suffix(&live, &format!(".before-restore-{stamp}"));
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(&live, suffix);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&aside, suffix))
                    .map_err(|e| format!("moving {} aside: {e}", from.display()))?;
            }
        }
        kept = Some(aside);
    }
    std::fs::rename(&staged, &live)
        .map_err(|e| format!("moving the restored database into {}: {e}", live.display()))?;
    let (files, bytes) = copy_flat_files(&dir.join(LOGS), &config.logs_dir).map_err(|e| {
        format!(
            "copying the logs into LOGS_DIR {}: {e}",
            config.logs_dir.display()
        )
    })?;
    let key_note = restore_key(config, dir, &manifest, force, &stamp.to_string())?;
    let kept_note = kept
        .map(|p| format!("; the previous database is kept as {}", p.display()))
        .unwrap_or_default();
    Ok(format!(
        "restored {} runs ({} finished) from the backup of {} into {}, and {files} log and metrics files ({bytes} bytes) into {}{key_note}{kept_note}",
        manifest.runs,
        manifest.finished_runs,
        manifest.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        live.display(),
        config.logs_dir.display(),
    ))
}

/// The staged copy opens, passes quick_check, migrates, and holds the runs the
/// manifest counted.
async fn check_staged(staged: &Path, manifest: &Manifest) -> Result<(), String> {
    let pool = crate::db::connect(&format!("sqlite://{}", staged.display()))
        .await
        .map_err(|e| format!("the backup's database cannot be opened: {e}"))?;
    let result = async {
        let check = crate::db::backup::quick_check(&pool)
            .await
            .map_err(|e| e.to_string())?;
        if check != "ok" {
            return Err(format!("the backup's database is damaged: {check}"));
        }
        let (runs, _) = crate::db::backup::run_counts(&pool)
            .await
            .map_err(|e| e.to_string())?;
        if runs != manifest.runs {
            return Err(format!(
                "the backup's database holds {runs} runs, its manifest says {}",
                manifest.runs
            ));
        }
        Ok(())
    }
    .await;
    pool.close().await;
    result
}

fn restore_key(
    config: &Config,
    dir: &Path,
    manifest: &Manifest,
    force: bool,
    stamp: &str,
) -> Result<String, String> {
    if !manifest.includes_encryption_key {
        return Ok(String::new());
    }
    let key = crate::secrets::key_file(&config.data_dir);
    let from = dir.join(KEY);
    if key.exists() {
        if std::fs::read(&key).ok() == std::fs::read(&from).ok() {
            return Ok(String::new());
        }
        if !force {
            return Ok(format!(
                "; DATA_DIR already has another encryption key, kept: the backup's is {} (restore with --force to use it)",
                from.display()
            ));
        }
        std::fs::rename(&key, with_suffix(&key, &format!(".before-restore-{stamp}")))
            .map_err(|e| format!("moving {} aside: {e}", key.display()))?;
    }
    copy_private(&from, &key)
        .map_err(|e| format!("restoring the encryption key into {}: {e}", key.display()))?;
    Ok(", and the encryption key".into())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}
