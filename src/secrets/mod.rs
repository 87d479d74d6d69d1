//! Secret values and the Fernet encryption key (tokens compatible with Python's `cryptography`).

mod cipher;
mod command_keys;
pub mod encrypt_command;
mod escaped_forms;
mod key;
mod masker;
pub mod rotate_command;

pub use cipher::{Cipher, DecryptError};
pub use key::{
    KeyError, KeySource, key_file, resolve_encryption_key, resolve_encryption_keys,
    unlisted_key_file, unlisted_key_file_advice,
};
pub use masker::{MASK, MIN_MASKED_CHARS, Masker, has_unmasked_part};

/// A string that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where the value is really used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}
