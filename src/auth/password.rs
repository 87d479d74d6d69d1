//! Passwords of local accounts: argon2id (the crate's defaults, OWASP's
//! recommended parameters) in PHC string form, with a 16-byte random salt.
//! Checking takes the same time whether or not the user exists.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted for a local account.
pub const MIN_CHARS: usize = 12;
/// Longest (argon2 takes any length; this bounds the work per login).
pub const MAX_BYTES: usize = 1024;

/// Why a password is refused; never holds the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("A password needs at least {MIN_CHARS} characters")]
    TooShort,
    #[error("A password has at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// The PHC string of `password` (`$argon2id$v=19$…`).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash of a password nobody has, verified when the user does not exist, so
/// a wrong username costs as long as a wrong password.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3h3u1Ff4gCBy3y0PVyOQ2sI6mSPfgmV9Fpr9dGYz/2o";

/// Whether `password` matches `stored` (a PHC string); `None` checks against a
/// dummy hash and is always false.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY_HASH, false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_refuse() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("correct horse"));
        assert!(verify("correct horse battery", Some(&h)));
        assert!(!verify("correct horse batterx", Some(&h)));
        assert!(!verify("correct horse battery", None));
        assert!(!verify("x", Some("not a phc string")));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
        assert!(matches!(
            hash(&"x".repeat(2000)),
            Err(PasswordError::TooLong)
        ));
        assert_ne!(hash("correct horse battery").unwrap(), h, "salted");
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
