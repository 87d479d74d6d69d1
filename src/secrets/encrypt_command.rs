//! `fastflow encrypt`: a Fernet token of the value on standard input, made with
//! the server's key (`ENCRYPTION_KEYS` / `ENCRYPTION_KEY` / `DATA_DIR/encryption.key`),
//! to paste into a pipeline's `encrypted_env`. The value is read from stdin, never
//! from the command line, so it stays out of shell history and `ps`.

use std::io::Read;
use std::process::ExitCode;

use super::command_keys::config_and_cipher;

/// Longest value accepted, as for a run's environment.
const MAX_VALUE_BYTES: u64 = crate::runner::overrides::MAX_VALUE_BYTES as u64;

pub fn main() -> ExitCode {
    // The key first: nobody types a value only to learn there is no key.
    let cipher = match config_and_cipher() {
        Ok((_, cipher)) => cipher,
        Err(code) => return code,
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
    if value.contains('\0') {
        eprintln!(
            "error: the value holds a NUL character, which an environment variable cannot hold"
        );
        return ExitCode::FAILURE;
    }
    if value.is_empty() || value.len() as u64 > MAX_VALUE_BYTES {
        eprintln!(
            "error: give the value on standard input (1 to {MAX_VALUE_BYTES} bytes), e.g. `printf %s \"$VALUE\" | fastflow encrypt`"
        );
        return ExitCode::FAILURE;
    }
    println!("{}", cipher.encrypt(&value));
    ExitCode::SUCCESS
}
