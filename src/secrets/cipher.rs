//! Fernet encryption of values stored in the database (tokens readable by
//! Python's `cryptography.fernet` with the same `ENCRYPTION_KEY`), with
//! `MultiFernet`'s rotation semantics: the newest key encrypts, every key decrypts.

use super::SecretString;

/// Why a stored value could not be read back; never holds the value or the key.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "a stored value cannot be decrypted with the current ENCRYPTION_KEY (was the key changed?); store it again"
)]
pub struct DecryptError;

/// Encrypts with the newest of the server's keys, decrypts with any of them.
pub struct Cipher {
    /// Newest first; never empty.
    keys: Vec<fernet::Fernet>,
}

impl Cipher {
    /// `None` if `key` is not a Fernet key (32 bytes, url-safe base64).
    pub fn new(key: &SecretString) -> Option<Self> {
        Self::with_keys(std::slice::from_ref(key))
    }

    /// `keys` newest first (`ENCRYPTION_KEYS`); `None` if there is none or one is
    /// not a Fernet key.
    pub fn with_keys(keys: &[SecretString]) -> Option<Self> {
        let keys: Option<Vec<_>> = keys
            .iter()
            .map(|k| fernet::Fernet::new(k.expose()))
            .collect();
        keys.filter(|k| !k.is_empty()).map(|keys| Self { keys })
    }

    /// A Fernet token of `plain`, made with the newest key.
    pub fn encrypt(&self, plain: &str) -> String {
        self.keys[0].encrypt(plain.as_bytes())
    }

    pub fn decrypt(&self, token: &str) -> Result<SecretString, DecryptError> {
        self.decrypt_noting_age(token).map(|(plain, _)| plain)
    }

    /// The plain value, and whether an older key than the newest made the token
    /// (so a rotation re-encrypts it).
    pub fn decrypt_noting_age(&self, token: &str) -> Result<(SecretString, bool), DecryptError> {
        for (age, key) in self.keys.iter().enumerate() {
            if let Ok(bytes) = key.decrypt(token) {
                let plain = String::from_utf8(bytes).map_err(|_| DecryptError)?;
                return Ok((SecretString::new(plain), age > 0));
            }
        }
        Err(DecryptError)
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

    #[test]
    fn the_newest_key_encrypts_and_every_key_decrypts() {
        let (old, new) = (
            SecretString::new(fernet::Fernet::generate_key()),
            SecretString::new(fernet::Fernet::generate_key()),
        );
        let before = Cipher::new(&old).unwrap().encrypt("v1");
        let rotating = Cipher::with_keys(&[new.clone(), old]).unwrap();
        let (plain, aged) = rotating.decrypt_noting_age(&before).unwrap();
        assert_eq!((plain.expose(), aged), ("v1", true));
        let after = rotating.encrypt("v2");
        assert!(!rotating.decrypt_noting_age(&after).unwrap().1);
        assert!(Cipher::new(&new).unwrap().decrypt(&after).is_ok());
        assert!(Cipher::with_keys(&[]).is_none());
    }

    /// A token made by Python's `cryptography.fernet` (tests/fixtures/fernet_python.json).
    #[test]
    fn a_token_made_by_python_decrypts() {
        let text = include_str!("../../tests/fixtures/fernet_python.json");
        let vector: serde_json::Value = serde_json::from_str(text).unwrap();
        let key = SecretString::new(vector["key"].as_str().unwrap());
        let cipher = Cipher::new(&key).unwrap();
        let plain = cipher.decrypt(vector["token"].as_str().unwrap()).unwrap();
        assert_eq!(plain.expose(), vector["plaintext"].as_str().unwrap());
    }
}
