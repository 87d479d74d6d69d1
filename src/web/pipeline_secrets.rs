//! What the pipeline page says about a pipeline's secrets before it runs: each
//! key it lists and whether it is defined (and as what), and each
//! `encrypted_env` entry this server's keys cannot open — the problems a run
//! would fail on, shown where the pipeline is.

use crate::db;
use crate::pipelines::Pipeline;
use crate::web::{AppError, AppState};

/// One listed key: its name and `secret`, `parameter` or `not defined`.
pub struct ListedSecret {
    pub key: String,
    pub kind: &'static str,
}

impl ListedSecret {
    pub fn defined(&self) -> bool {
        self.kind != "not defined"
    }
}

pub struct SecretFacts {
    pub listed: Vec<ListedSecret>,
    /// `encrypted_env.KEY` (or `schedules[id=…].encrypted_env.KEY`) entries no key opens.
    pub unreadable: Vec<String>,
}

pub async fn of(state: &AppState, p: &Pipeline) -> Result<SecretFacts, AppError> {
    let stored = db::secrets::get_many(&state.pool, &p.metadata.secrets).await?;
    let listed = p
        .metadata
        .secrets
        .iter()
        .map(|key| {
            let kind = match stored.iter().find(|s| &s.key == key) {
                Some(s) if s.is_parameter => "parameter",
                Some(_) => "secret",
                None => "not defined",
            };
            ListedSecret {
                key: key.clone(),
                kind,
            }
        })
        .collect();
    let opens = |token: &str| state.cipher.decrypt(token.trim()).is_ok();
    let mut unreadable: Vec<String> = p
        .metadata
        .encrypted_env
        .iter()
        .filter(|(_, t)| !opens(t))
        .map(|(k, _)| format!("encrypted_env.{k}"))
        .collect();
    for s in &p.metadata.schedules {
        unreadable.extend(
            s.encrypted_env
                .iter()
                .filter(|(_, t)| !opens(t))
                .map(|(k, _)| format!("schedules[id={}].encrypted_env.{k}", s.id)),
        );
    }
    Ok(SecretFacts { listed, unreadable })
}
