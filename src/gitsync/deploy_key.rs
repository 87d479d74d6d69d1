//! SSH deploy keys: generating an Ed25519 pair (OpenSSH format) for the Sync
//! page, checking a pasted private key, and showing a key's public line.

use super::repo_config::{ChangeProblem, MAX_SECRET_LEN};
use crate::secrets::SecretString;

/// An OpenSSH private key without a passphrase (the server cannot type one).
pub(super) fn check_deploy_key(key: &str) -> Result<(), ChangeProblem> {
    if key.len() > MAX_SECRET_LEN {
        return Err(ChangeProblem::Invalid(format!(
            "deploy_key is longer than {MAX_SECRET_LEN} bytes"
        )));
    }
    let key = key.trim();
    if key.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return match ssh_key::PrivateKey::from_openssh(key) {
            Ok(k) if k.is_encrypted() => Err(ChangeProblem::Invalid(
                "deploy_key is protected by a passphrase; the server cannot type one: use a key without (ssh-keygen -t ed25519 -N '')".into(),
            )),
            Ok(_) => Ok(()),
            Err(_) => Err(ChangeProblem::Invalid(
                "deploy_key is not a readable OpenSSH private key".into(),
            )),
        };
    }
    if key.starts_with("-----BEGIN ") && key.contains("PRIVATE KEY-----") {
        return Ok(());
    }
    Err(ChangeProblem::Invalid(
        "deploy_key must be an SSH private key (OpenSSH format, as ssh-keygen writes it), not a public key".into(),
    ))
}

/// A new Ed25519 key pair: the private key (OpenSSH format) and its public line.
pub fn generate_deploy_key() -> Result<(SecretString, String), String> {
    let mut key =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .map_err(|e| format!("generating the key failed: {e}"))?;
    key.set_comment("fastflow-deploy-key");
    let private = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| format!("encoding the key failed: {e}"))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| format!("encoding the key failed: {e}"))?;
    Ok((SecretString::new(private.as_str()), public))
}

/// The public line of an OpenSSH private key (`None` for other formats).
pub fn public_key_of(private: &SecretString) -> Option<String> {
    let key = ssh_key::PrivateKey::from_openssh(private.expose().trim()).ok()?;
    key.public_key().to_openssh().ok()
}
