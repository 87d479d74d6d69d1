//! The push webhook's checks: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the
//! body) and GitLab's `X-Gitlab-Token`, both compared in constant time, and which
//! branch a push event moved.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with `secret`.
pub fn github_signature_ok(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(given) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// Whether GitLab's token header equals the secret.
pub fn gitlab_token_ok(secret: &str, header: &str) -> bool {
    !secret.is_empty() && bool::from(secret.as_bytes().ct_eq(header.as_bytes()))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The `ref` a push event names (`refs/heads/main`), if the body is one.
pub fn pushed_ref(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Push {
        #[serde(rename = "ref")]
        pushed: String,
    }
    serde_json::from_slice::<Push>(body).ok().map(|p| p.pushed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_exactly() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let body = b"Hello, World!";
        assert!(github_signature_ok(
            "It's a Secret to Everybody",
            body,
            good
        ));
        assert!(!github_signature_ok(
            "It's a Secret to Everybody",
            b"Hello, World?",
            good
        ));
        assert!(!github_signature_ok("another secret", body, good));
        for bad in [
            "",
            "sha256=",
            "sha1=757107ea",
            &good.replace("sha256=", ""),
            "sha256=zz",
        ] {
            assert!(
                !github_signature_ok("It's a Secret to Everybody", body, bad),
                "{bad}"
            );
        }
        assert!(gitlab_token_ok("tok", "tok"));
        assert!(!gitlab_token_ok("tok", "tok2") && !gitlab_token_ok("", ""));
        assert_eq!(
            pushed_ref(br#"{"ref":"refs/heads/main","after":"x"}"#).as_deref(),
            Some("refs/heads/main")
        );
        assert_eq!(pushed_ref(b"{}"), None);
    }
}
