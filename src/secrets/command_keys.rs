//! What the `encrypt` and `rotate-key` commands share: the configuration from
//! the environment (and `.env`) and the server's keys, each failure said on
//! stderr with its exit code (2: configuration).

use std::collections::HashMap;
use std::process::ExitCode;

use super::{Cipher, KeySource, resolve_encryption_keys};
use crate::config::Config;

/// Says when `DATA_DIR/encryption.key` holds a key the configured ones lack.
fn warn_unlisted_key_file(config: &Config, keys: &[super::SecretString]) {
    if let Some(path) = super::unlisted_key_file(&config.data_dir, keys) {
        eprintln!("warning: {}", super::unlisted_key_file_advice(&path));
    }
}

/// The configuration and a cipher of its keys, as the server would resolve them.
pub(super) fn config_and_cipher() -> Result<(Config, Cipher), ExitCode> {
    let _ = dotenvy::dotenv();
    let vars: HashMap<String, String> = std::env::vars().collect();
    let config = Config::from_vars(&vars).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    // A command never generates a key: a token made with a key the server does not
    // have would fail every run. Without a configured key it uses the server's file.
    let file = super::key_file(&config.data_dir);
    if config.encryption_keys.is_empty() && config.encryption_key.is_none() && !file.exists() {
        eprintln!(
            "error: no encryption key: ENCRYPTION_KEY(S) is not set and {} does not exist. Run this with the server's configuration: its ENCRYPTION_KEY, or its DATA_DIR (where a server started without a key generated one; by default ./data under the directory the server was started in)",
            file.display()
        );
        return Err(ExitCode::from(2));
    }
    let (keys, source) = resolve_encryption_keys(
        &config.encryption_keys,
        config.encryption_key.as_ref(),
        &config.data_dir,
        config.is_production(),
    )
    .map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    if let KeySource::ExistingFile(path) = &source {
        eprintln!("note: using the server's key from {}", path.display());
    }
    warn_unlisted_key_file(&config, &keys);
    let cipher = Cipher::with_keys(&keys).ok_or_else(|| {
        eprintln!("error: the encryption key is not a Fernet key");
        ExitCode::from(2)
    })?;
    Ok((config, cipher))
}
