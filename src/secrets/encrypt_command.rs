//! `fastflow encrypt`: a Fernet token of the value on standard input, made with
//! the server's key (`ENCRYPTION_KEYS` / `ENCRYPTION_KEY` / `DATA_DIR/encryption.key`),
//! to paste into a pipeline's `encrypted_env`. The value is read from stdin, never
//! from the command line, so it stays out of shell history and `ps`.

use std::collections::HashMap;
use std::io::Read;
use std::process::ExitCode;

use super::{Cipher, resolve_encryption_keys};
use crate::config::Config;

/// Longest value accepted, as for a run's environment.
const MAX_VALUE_BYTES: u64 = crate::runner::overrides::MAX_VALUE_BYTES as u64;

pub fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let vars: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::from_vars(&vars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut value = Vec::new();
    let read = std::io::stdin()
        .take(MAX_VALUE_BYTES + 2)
        .read_to_end(&mut value);
    if let Err(e) = read {
        eprintln!("error: reading the value from standard input: {e}");
        return ExitCode::FAILURE;
    }
    // `echo value | fastflow encrypt`: the newline is not part of the value.
    if value.ends_with(b"\n") {
        value.pop();
        if value.ends_with(b"\r") {
            value.pop();
        }
    }
    let Ok(value) = String::from_utf8(value) else {
        eprintln!("error: the value on standard input is not UTF-8 text");
        return ExitCode::FAILURE;
    };
    if value.is_empty() || value.len() as u64 > MAX_VALUE_BYTES {
        eprintln!(
            "error: give the value on standard input (1 to {MAX_VALUE_BYTES} bytes), e.g. `printf %s \"$VALUE\" | fastflow encrypt`"
        );
        return ExitCode::FAILURE;
    }
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        eprintln!("error: creating {}: {e}", config.data_dir.display());
        return ExitCode::FAILURE;
    }
    let keys = resolve_encryption_keys(
        &config.encryption_keys,
        config.encryption_key.as_ref(),
        &config.data_dir,
        config.is_production(),
    );
    let (keys, source) = match keys {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let super::KeySource::Generated(path) = &source {
        eprintln!(
            "note: no key was set: generated one into {} (the server uses it too)",
            path.display()
        );
    }
    let Some(cipher) = Cipher::with_keys(&keys) else {
        eprintln!("error: the encryption key is not a Fernet key");
        return ExitCode::from(2);
    };
    println!("{}", cipher.encrypt(&value));
    ExitCode::SUCCESS
}
