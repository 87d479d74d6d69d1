//! The lock on `DATA_DIR`: a running server holds `DATA_DIR/fastflow.lock`
//! (an advisory `flock`, released by the kernel when the process ends, however it
//! ends), so `fastflow restore` can refuse to replace a database in use, and a
//! second server on the same directory is told so at start.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

pub const LOCK_FILE: &str = "fastflow.lock";

/// Held while it lives.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

pub fn lock_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LOCK_FILE)
}

/// Takes the lock without waiting: `Ok(None)` when another process holds it.
pub fn try_lock(data_dir: &Path) -> std::io::Result<Option<DataLock>> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(data_dir))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(DataLock { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = try_lock(dir.path()).unwrap().expect("free at first");
        assert!(try_lock(dir.path()).unwrap().is_none(), "held");
        drop(first);
        assert!(try_lock(dir.path()).unwrap().is_some(), "free again");
    }
}
