//! What the `encrypt` and `rotate-key` commands share: the configuration from
//! the environment (and `.env`) and the server's keys, each failure said on
//! stderr with its exit code (2: configuration).

use std::collections::HashMap;
use std::process::ExitCode;

use super::{Cipher, KeySource, resolve_encryption_keys};
use crate::config::Config;

/// The configuration and a cipher of its keys, as the server would resolve them.
pub(super) fn config_and_cipher() -> Result<(Config, Cipher), ExitCode> {
    let _ = dotenvy::dotenv();
    let vars: HashMap<String, String> = std::env::vars().collect();
    let config = Config::from_vars(&vars).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    // A key generated in development goes into DATA_DIR, as at the server's start.
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        eprintln!("error: creating {}: {e}", config.data_dir.display());
        ExitCode::FAILURE
    })?;
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
    if let KeySource::Generated(path) = &source {
        eprintln!(
            "note: no key was set: generated one into {} (the server uses it too)",
            path.display()
        );
    }
    let cipher = Cipher::with_keys(&keys).ok_or_else(|| {
        eprintln!("error: the encryption key is not a Fernet key");
        ExitCode::from(2)
    })?;
    Ok((config, cipher))
}
