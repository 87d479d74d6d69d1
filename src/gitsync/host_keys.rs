//! SSH host keys of the git remote: checked against `GIT_SSH_KNOWN_HOSTS` when it
//! is set (strict: an unknown or different key refuses the connection), otherwise
//! pinned on first use and then required to stay the same until an admin resets
//! the pin on the Sync page.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A host's public key as the remote presented it (or as configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HostKey {
    pub host: String,
    /// `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`, …
    pub key_type: String,
    /// The key blob, base64 as in `known_hosts`.
    pub key_base64: String,
}

impl HostKey {
    pub fn from_raw(host: &str, key_type: &str, raw: &[u8]) -> Self {
        Self {
            host: host.to_string(),
            key_type: key_type.to_string(),
            key_base64: STANDARD.encode(raw),
        }
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        let raw = STANDARD.decode(&self.key_base64).unwrap_or_default();
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(raw)))
    }

    fn same_key(&self, other: &HostKey) -> bool {
        self.key_type == other.key_type && self.key_base64 == other.key_base64
    }
}

/// How the remote's host key is judged.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// `GIT_SSH_KNOWN_HOSTS`: the key must be one of these for the host.
    Known(Vec<HostKey>),
    /// Trust on first use: the pin, if one was made.
    Pinned(Option<HostKey>),
}

/// Whether `host` (as the remote URL names it) is one of a `known_hosts` line's
/// patterns: `host`, `[host]:port`, comma-separated. Hashed names are not read.
fn host_matches(patterns: &str, host: &str) -> bool {
    patterns.split(',').any(|p| {
        let p = p.trim();
        let bare = p
            .strip_prefix('[')
            .and_then(|rest| rest.split_once(']'))
            .map_or(p, |(h, _)| h);
        bare.eq_ignore_ascii_case(host)
    })
}

/// The keys `known_hosts` text gives `host` (comments, markers and hashed lines skipped).
pub fn known_keys(text: &str, host: &str) -> Vec<HostKey> {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with('@') && !l.starts_with('|')
        })
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (patterns, key_type, key) = (parts.next()?, parts.next()?, parts.next()?);
            host_matches(patterns, host).then(|| HostKey {
                host: host.to_string(),
                key_type: key_type.to_string(),
                key_base64: key.to_string(),
            })
        })
        .collect()
}

/// Ok when `observed` may be trusted under `policy`; the error says why not.
pub fn judge(policy: &HostKeyPolicy, observed: &HostKey) -> Result<(), String> {
    match policy {
        HostKeyPolicy::Known(keys) => {
            let for_host: Vec<&HostKey> = keys.iter().filter(|k| k.host == observed.host).collect();
            if for_host.iter().any(|k| k.same_key(observed)) {
                Ok(())
            } else if for_host.is_empty() {
                Err(format!(
                    "{} is not in GIT_SSH_KNOWN_HOSTS (it presented {} {})",
                    observed.host,
                    observed.key_type,
                    observed.fingerprint()
                ))
            } else {
                Err(format!(
                    "{} presented {} {}, which GIT_SSH_KNOWN_HOSTS does not list for it",
                    observed.host,
                    observed.key_type,
                    observed.fingerprint()
                ))
            }
        }
        HostKeyPolicy::Pinned(None) => Ok(()),
        HostKeyPolicy::Pinned(Some(pin)) if pin.host != observed.host || pin.same_key(observed) => {
            Ok(())
        }
        HostKeyPolicy::Pinned(Some(pin)) => Err(format!(
            "the host key of {} changed: pinned {} {}, now {} {}. If the change is expected, reset the pin on the Sync page",
            observed.host,
            pin.key_type,
            pin.fingerprint(),
            observed.key_type,
            observed.fingerprint()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_and_pins_are_judged() {
        let a = HostKey::from_raw("git.example", "ssh-ed25519", b"key-a");
        let b = HostKey::from_raw("git.example", "ssh-ed25519", b"key-b");
        let text = format!(
            "# comment\n|1|hashed|x ssh-ed25519 AAAA\n[git.example]:2222,other ssh-ed25519 {}\n",
            a.key_base64
        );
        let known = known_keys(&text, "git.example");
        assert_eq!(known, vec![a.clone()]);
        assert!(judge(&HostKeyPolicy::Known(known.clone()), &a).is_ok());
        assert!(
            judge(&HostKeyPolicy::Known(known), &b).is_err_and(|e| e.contains("does not list"))
        );
        assert!(judge(&HostKeyPolicy::Known(vec![]), &a).is_err_and(|e| e.contains("not in")));
        assert!(judge(&HostKeyPolicy::Pinned(None), &a).is_ok());
        assert!(judge(&HostKeyPolicy::Pinned(Some(a.clone())), &a).is_ok());
        let changed = judge(&HostKeyPolicy::Pinned(Some(a.clone())), &b);
        assert!(
            changed.is_err_and(|e| e.contains(&a.fingerprint()) && e.contains(&b.fingerprint()))
        );
        assert!(a.fingerprint().starts_with("SHA256:") && a.fingerprint() != b.fingerprint());
    }
}
