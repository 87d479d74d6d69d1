//! Resolves the Fernet keys: `ENCRYPTION_KEYS` (newest first, for rotation) or
//! `ENCRYPTION_KEY`, validated; or in development a key generated once into
//! `DATA_DIR/encryption.key` (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::SecretString;

const KEY_FILE: &str = "encryption.key";

/// How to generate a key, shown in every error about a missing or bad key.
const HOW_TO_GENERATE: &str = "generate one with `python3 -c \"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\"` or `head -c 32 /dev/urandom | base64 | tr '+/' '-_'` and set ENCRYPTION_KEY";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "ENCRYPTION_KEY is not set; production mode (ENVIRONMENT=production) requires it: {HOW_TO_GENERATE}"
    )]
    MissingInProduction,
    #[error(
        "ENCRYPTION_KEY is not a valid Fernet key (expected 32 bytes, url-safe base64): {HOW_TO_GENERATE}"
    )]
    InvalidConfigured,
    #[error(
        "ENCRYPTION_KEYS: key {position} (counting from 1, newest first) is not a valid Fernet key: {HOW_TO_GENERATE}"
    )]
    InvalidInList { position: usize },
    #[error(
        "{path}: not a valid Fernet key; delete the file to generate a new one, or set ENCRYPTION_KEY"
    )]
    InvalidFile { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the key in use came from (logged at startup, never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    ExistingFile(PathBuf),
    Generated(PathBuf),
}

/// The keys to use, newest first, and where they came from: `ENCRYPTION_KEYS`
/// when set (it wins), else as [`resolve_encryption_key`].
pub fn resolve_encryption_keys(
    listed: &[SecretString],
    configured: Option<&SecretString>,
    data_dir: &Path,
    production: bool,
) -> Result<(Vec<SecretString>, KeySource), KeyError> {
    if !listed.is_empty() {
        if let Some(position) = listed
            .iter()
            .position(|k| fernet::Fernet::new(k.expose()).is_none())
        {
            return Err(KeyError::InvalidInList {
                position: position + 1,
            });
        }
        return Ok((listed.to_vec(), KeySource::Environment));
    }
    resolve_encryption_key(configured, data_dir, production).map(|(k, s)| (vec![k], s))
}

/// Where a development key is generated: `DATA_DIR/encryption.key`.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// The key file in `data_dir` when it holds a valid key that `keys` does not
/// list: values stored while it was in use cannot be read with `keys`. (Set
/// `ENCRYPTION_KEY` after starting without it, and this is what happens.)
pub fn unlisted_key_file(data_dir: &Path, keys: &[SecretString]) -> Option<PathBuf> {
    let path = key_file(data_dir);
    let text = std::fs::read_to_string(&path).ok()?;
    let key = text.trim();
    let valid = fernet::Fernet::new(key).is_some();
    (valid && !keys.iter().any(|k| k.expose().trim() == key)).then_some(path)
}

/// What to do about [`unlisted_key_file`]; never shows a key.
pub fn unlisted_key_file_advice(path: &Path) -> String {
    format!(
        "{} holds a key that ENCRYPTION_KEY(S) does not list: secrets and credentials stored while it was in use cannot be decrypted. To keep them, set ENCRYPTION_KEYS=<your key>,<the key in that file> and run `fastflow rotate-key` (docs/secrets.md, Rotating the key); or store them again",
        path.display()
    )
}

/// Returns the key to use and where it came from.
pub fn resolve_encryption_key(
    configured: Option<&SecretString>,
    data_dir: &Path,
    production: bool,
) -> Result<(SecretString, KeySource), KeyError> {
    if let Some(key) = configured {
        return match fernet::Fernet::new(key.expose()) {
            Some(_) => Ok((key.clone(), KeySource::Environment)),
            None => Err(KeyError::InvalidConfigured),
        };
    }
    if production {
        return Err(KeyError::MissingInProduction);
    }
    let path = data_dir.join(KEY_FILE);
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_string();
            if fernet::Fernet::new(&key).is_none() {
                return Err(KeyError::InvalidFile { path });
            }
            Ok((SecretString::new(key), KeySource::ExistingFile(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = fernet::Fernet::generate_key();
            // create_new: two processes starting at once must not overwrite each other's key.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            file.write_all(format!("{key}\n").as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok((SecretString::new(key), KeySource::Generated(path)))
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_with_mode_0600_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src1) = resolve_encryption_key(None, dir.path(), false).unwrap();
        assert!(matches!(src1, KeySource::Generated(_)));
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, src2) = resolve_encryption_key(None, dir.path(), false).unwrap();
        assert!(matches!(src2, KeySource::ExistingFile(_)));
        assert_eq!(k1, k2);
        assert!(fernet::Fernet::new(k1.expose()).is_some());
    }

    #[test]
    fn production_without_key_is_an_error_that_says_how() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_encryption_key(None, dir.path(), true).unwrap_err();
        assert!(err.to_string().contains("Fernet.generate_key"));
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn a_key_list_wins_and_a_bad_entry_is_named_by_position_only() {
        let dir = tempfile::tempdir().unwrap();
        let good = SecretString::new(fernet::Fernet::generate_key());
        let single = SecretString::new(fernet::Fernet::generate_key());
        let (keys, _) =
            resolve_encryption_keys(std::slice::from_ref(&good), Some(&single), dir.path(), true)
                .unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0] == good);
        let bad = SecretString::new("not-a-key-s3cr3t");
        let err = resolve_encryption_keys(&[good, bad], None, dir.path(), false).unwrap_err();
        assert!(err.to_string().contains("key 2") && !err.to_string().contains("s3cr3t"));
    }

    #[test]
    fn invalid_configured_key_is_rejected_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let bad = SecretString::new("not-a-key-s3cr3t");
        let err = resolve_encryption_key(Some(&bad), dir.path(), false).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
        assert!(format!("{bad:?}").contains("redacted"));
    }
}
