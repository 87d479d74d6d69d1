//! What `/ready` checks besides the database and the engine, and start-up
//! reports loudly: `PIPELINES_DIR` can be read, and `DATA_DIR` and `LOGS_DIR` can
//! be written and have at least `MIN_FREE_DISK_MB` free. Each problem names the
//! setting and the path. The functions block (file system calls): call them from
//! `spawn_blocking`.

use std::io::Write;
use std::path::Path;

use crate::byte_size::human_bytes;
use crate::config::Config;

/// Every problem with the directories, one sentence each; empty when all is well.
pub fn directory_problems(config: &Config) -> Vec<String> {
    pipelines_dir_problem(config)
        .into_iter()
        .chain(storage_problems(config))
        .collect()
}

/// `PIPELINES_DIR` cannot be listed.
pub fn pipelines_dir_problem(config: &Config) -> Option<String> {
    std::fs::read_dir(&config.pipelines_dir).err().map(|e| {
        format!(
            "PIPELINES_DIR {} cannot be read: {e}",
            config.pipelines_dir.display()
        )
    })
}

/// `DATA_DIR` and `LOGS_DIR` are short of space or cannot be written.
pub fn storage_problems(config: &Config) -> Vec<String> {
    let mut writable = vec![("DATA_DIR", config.data_dir.as_path())];
    if !config.logs_dir.starts_with(&config.data_dir) {
        writable.push(("LOGS_DIR", config.logs_dir.as_path()));
    }
    writable
        .into_iter()
        .filter_map(|(name, dir)| storage_problem(name, dir, config.min_free_disk_bytes))
        .collect()
}

fn storage_problem(name: &str, dir: &Path, min_free: u64) -> Option<String> {
    match free_bytes(dir) {
        Ok(free) if free < min_free => {
            return Some(format!(
                "{name} {} has only {} free (MIN_FREE_DISK_MB is {}): runs and logs cannot be stored reliably",
                dir.display(),
                human_bytes(free),
                min_free >> 20
            ));
        }
        Ok(_) => {}
        Err(e) => return Some(format!("{name} {}: {e}", dir.display())),
    }
    write_probe(dir)
        .err()
        .map(|e| format!("{name} {} is not writable: {e}", dir.display()))
}

/// Bytes an unprivileged process can still write on the file system of `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Creates, writes, syncs and removes a small file: what a run's log needs.
fn write_probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".fastflow-ready-probe");
    let result = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .and_then(|mut f| {
            f.write_all(&[b'x'; 4096])?;
            f.sync_data()
        });
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, extra: &[(&str, &str)]) -> Config {
        let mut vars = std::collections::HashMap::from([
            (
                "DATA_DIR".to_string(),
                dir.join("data").display().to_string(),
            ),
            (
                "PIPELINES_DIR".to_string(),
                dir.join("nope").display().to_string(),
            ),
        ]);
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut c = Config::from_vars(&vars).unwrap();
        c.prepare_dirs().unwrap();
        c
    }

    #[test]
    fn each_problem_names_the_setting_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), &[("MIN_FREE_DISK_MB", "1048576")]);
        let problems = directory_problems(&c);
        assert!(problems[0].starts_with("PIPELINES_DIR ") && problems[0].contains("nope"));
        assert!(problems[1].starts_with("DATA_DIR ") && problems[1].contains("MIN_FREE_DISK_MB"));
        let ok = config(dir.path(), &[("MIN_FREE_DISK_MB", "0")]);
        assert_eq!(
            directory_problems(&ok).len(),
            1,
            "only the missing PIPELINES_DIR"
        );
    }
}
