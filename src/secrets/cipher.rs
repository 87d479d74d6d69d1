//! Fernet encryption of values stored in the database (tokens readable by
//! Python's `cryptography.fernet` with the same `ENCRYPTION_KEY`).

use super::SecretString;

/// Why a stored value could not be read back; never holds the value or the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "a stored value cannot be decrypted with the current ENCRYPTION_KEY (was the key changed?); store it again"
)]
pub struct DecryptError;

/// Encrypts and decrypts with the server's key.
pub struct Cipher {
    fernet: fernet::Fernet,
}

impl Cipher {
    /// `None` if `key` is not a Fernet key (32 bytes, url-safe base64).
    pub fn new(key: &SecretString) -> Option<Self> {
        fernet::Fernet::new(key.expose()).map(|fernet| Self { fernet })
    }

    /// A Fernet token of `plain`.
    pub fn encrypt(&self, plain: &str) -> String {
        self.fernet.encrypt(plain.as_bytes())
    }

    pub fn decrypt(&self, token: &str) -> Result<SecretString, DecryptError> {
        let bytes = self.fernet.decrypt(token).map_err(|_| DecryptError)?;
        String::from_utf8(bytes)
            .map(SecretString::new)
            .map_err(|_| DecryptError)
    }
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_another_keys_token() {
        let a = Cipher::new(&SecretString::new(fernet::Fernet::generate_key())).unwrap();
        let b = Cipher::new(&SecretString::new(fernet::Fernet::generate_key())).unwrap();
        let token = a.encrypt("ghp_s3cr3t");
        assert!(!token.contains("s3cr3t"));
        assert_eq!(a.decrypt(&token).unwrap().expose(), "ghp_s3cr3t");
        let err = b.decrypt(&token).unwrap_err();
        assert!(err.to_string().contains("ENCRYPTION_KEY"));
        assert!(a.decrypt("not a token").is_err());
        assert!(Cipher::new(&SecretString::new("short")).is_none());
    }
}
