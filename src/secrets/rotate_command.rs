//! `fastflow rotate-key`: after a new key was put first in `ENCRYPTION_KEYS`,
//! re-encrypts every value stored with an older key (secrets, and the Sync
//! page's repository credentials) with the newest one. Tokens in pipeline.json
//! files (`encrypted_env`) live in git and are not rewritten: they keep working
//! while their key stays in the list.

use std::process::ExitCode;

use super::Cipher;
use super::command_keys::config_and_cipher;
use crate::db::{self, Pool};

/// What a rotation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Values that were made with an older key and now with the newest.
    pub re_encrypted: usize,
    /// Values already made with the newest key.
    pub current: usize,
    /// Where a value no key opens was found (left as it is).
    pub unreadable: Vec<String>,
}

pub fn main() -> ExitCode {
    let (config, cipher) = match config_and_cipher() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let done = match crate::command_runtime::block_on(async {
        let pool = db::connect(&config.database_url).await?;
        rotate(&pool, &cipher).await
    }) {
        Ok(done) => done,
        Err(code) => return code,
    };
    match done {
        Ok(r) => {
            println!(
                "re-encrypted {} value(s) with the newest key; {} already used it",
                r.re_encrypted, r.current
            );
            if r.unreadable.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "error: no key in ENCRYPTION_KEYS opens: {} (left as they are). Add the key they were made with to ENCRYPTION_KEYS (after the newest) and run this again, or store them again",
                    r.unreadable.join(", ")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The keys of stored secrets that no key of `cipher` opens (said at start-up).
pub async fn unreadable_secrets(pool: &Pool, cipher: &Cipher) -> Result<Vec<String>, db::DbError> {
    Ok(db::secrets::list(pool)
        .await?
        .into_iter()
        .filter(|s| !s.is_parameter && cipher.decrypt(&s.value).is_err())
        .map(|s| s.key)
        .collect())
}

/// Re-encrypts with `cipher`'s newest key whatever an older key made.
pub async fn rotate(pool: &Pool, cipher: &Cipher) -> Result<Rotation, db::DbError> {
    let mut out = Rotation::default();
    let renew = |token: &str, name: String, out: &mut Rotation| -> Option<String> {
        match cipher.decrypt_noting_age(token) {
            Ok((plain, true)) => {
                out.re_encrypted += 1;
                Some(cipher.encrypt(plain.expose()))
            }
            Ok((_, false)) => {
                out.current += 1;
                None
            }
            Err(_) => {
                out.unreadable.push(name);
                None
            }
        }
    };
    for s in db::secrets::list(pool).await? {
        if s.is_parameter {
            continue;
        }
        if let Some(token) = renew(&s.value, format!("secret {}", s.key), &mut out) {
            db::secrets::update(pool, &s.key, &token, false).await?;
        }
    }
    if let Some(mut repo) = db::git_repo_config::get(pool).await? {
        let mut changed = false;
        for (field, slot) in [
            ("token", &mut repo.token_encrypted),
            ("deploy_key", &mut repo.deploy_key_encrypted),
            (
                "github_app_private_key",
                &mut repo.github_app_private_key_encrypted,
            ),
            ("webhook_secret", &mut repo.webhook_secret_encrypted),
        ] {
            let Some(token) = slot.as_deref() else {
                continue;
            };
            if let Some(new) = renew(token, format!("the Sync page's {field}"), &mut out) {
                *slot = Some(new);
                changed = true;
            }
        }
        if changed {
            db::git_repo_config::put(pool, &repo).await?;
        }
    }
    let mut notify = db::notify_settings::get(pool).await?;
    let mut changed = false;
    for (field, slot) in [
        ("SMTP password", &mut notify.smtp_password_encrypted),
        ("Teams webhook URL", &mut notify.teams_webhook_url_encrypted),
        ("webhook URL", &mut notify.webhook_url_encrypted),
    ] {
        let Some(token) = slot.as_deref() else {
            continue;
        };
        if let Some(new) = renew(token, format!("the notification {field}"), &mut out) {
            *slot = Some(new);
            changed = true;
        }
    }
    if changed {
        db::notify_settings::put(pool, &notify).await?;
    }
    Ok(out)
}
