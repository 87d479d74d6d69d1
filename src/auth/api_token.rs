//! Personal API tokens: `ff_` and 43 characters of url-safe base64 (32 random
//! bytes). Only the SHA-256 of a token is stored; the token itself is shown
//! once, when it is made.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::secrets::SecretString;

pub const PREFIX: &str = "ff_";

/// A token just made, and what is stored of it.
pub struct NewToken {
    pub token: SecretString,
    pub hash: String,
}

/// A fresh token from the operating system's random source.
pub fn generate() -> Result<NewToken, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash(&token);
    Ok(NewToken {
        token: SecretString::new(token),
        hash,
    })
}

/// What is stored of `token`: its SHA-256, hex. A token has 256 random bits,
/// so a fast hash is enough (a slow one protects guessable passwords).
/// Whether `s` has a token's shape (`ff_` and 43 URL-safe characters): a
/// link cut short or mistyped can be told apart from one that was used.
pub fn well_formed(s: &str) -> bool {
    s.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

pub fn hash(token: &str) -> String {
    Sha256::digest(token.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hashed() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(a.token.expose().starts_with(PREFIX));
        assert_eq!(a.token.expose().len(), PREFIX.len() + 43);
        assert_ne!(a.token.expose(), b.token.expose());
        assert_eq!(a.hash, hash(a.token.expose()));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(a.token.expose()));
    }
}
