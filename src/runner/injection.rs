//! The secret part of a run's environment, as in Fast-Flow: decrypted
//! `encrypted_env` values (the pipeline's, then its run configuration's) and the
//! stored secrets and parameters the pipeline lists in `secrets` — nothing it
//! does not list. Resolved before the container is created: a listed key that is
//! not defined, or a value that cannot be decrypted, ends the run there, named.

use std::collections::{BTreeMap, BTreeSet};

use crate::db::{self, Pool};
use crate::pipelines::Pipeline;
use crate::secrets::{Cipher, Masker, SecretString};

/// Where an injected value came from (stored on the run by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    EncryptedEnv,
    Secret,
    /// A stored value with `is_parameter`: plain, visible configuration, not masked.
    Parameter,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EncryptedEnv => "encrypted_env",
            Self::Secret => "secret",
            Self::Parameter => "parameter",
        }
    }

    /// Whether values from this source are hidden in logs and messages.
    pub fn is_masked(name: &str) -> bool {
        name != Self::Parameter.as_str()
    }
}

/// What a run receives beyond `default_env`, with later sources already applied
/// over earlier ones: `encrypted_env` (pipeline, then run configuration), then
/// the listed secrets.
#[derive(Debug, Default)]
pub struct Injection {
    pub env: BTreeMap<String, SecretString>,
    pub sources: BTreeMap<String, Source>,
}

impl Injection {
    /// `name → source` for the run record.
    pub fn names(&self) -> BTreeMap<String, String> {
        self.sources
            .iter()
            .map(|(k, s)| (k.clone(), s.as_str().to_string()))
            .collect()
    }

    /// Masks every value except parameters'; also returns the names of values
    /// that are (or have a line that is) too short to mask.
    pub fn masker(&self) -> (Masker, Vec<&str>) {
        let hidden: Vec<(&str, &SecretString)> = self
            .env
            .iter()
            .filter(|(k, _)| self.sources.get(*k) != Some(&Source::Parameter))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        let masker = Masker::new(hidden.iter().map(|(_, v)| *v));
        let short = hidden
            .iter()
            .filter(|(_, v)| crate::secrets::has_unmasked_part(v.expose()))
            .map(|(k, _)| *k)
            .collect();
        (masker, short)
    }
}

/// The injection for a run of `pipeline` (as discovered, before its run
/// configuration is applied) with `run_config_id`. Names in `overridden` (the
/// request's `env_vars` and `parameters`, which win) are neither read nor
/// recorded: the run never receives those values. `Err` says every key that is
/// missing or unreadable, and where it is listed; it never holds a value.
pub async fn resolve(
    pool: &Pool,
    cipher: &Cipher,
    pipeline: &Pipeline,
    run_config_id: Option<&str>,
    overridden: &BTreeSet<&str>,
) -> Result<Injection, String> {
    let file = pipeline.metadata_file.as_deref().unwrap_or("pipeline.json");
    let mut injection = Injection::default();
    let mut problems = Vec::new();
    let mut layers = vec![(
        format!("{file} `encrypted_env"),
        &pipeline.metadata.encrypted_env,
    )];
    if let Some(config) = run_config_id.and_then(|id| pipeline.run_config(id)) {
        layers.push((
            format!("{file} `schedules[id={}].encrypted_env", config.id),
            &config.encrypted_env,
        ));
    }
    for (place, entries) in layers {
        for (key, token) in entries
            .iter()
            .filter(|(k, _)| !overridden.contains(k.as_str()))
        {
            match cipher.decrypt(token.trim()) {
                // The engine would refuse it, and its message could quote the value.
                Ok(plain) if plain.expose().contains('\0') => problems.push(format!(
                    "{place}.{key}` decrypts to a value with a NUL character, which an environment variable cannot hold"
                )),
                Ok(plain) => {
                    injection.env.insert(key.clone(), plain);
                    injection.sources.insert(key.clone(), Source::EncryptedEnv);
                }
                Err(_) => problems.push(format!(
                    "{place}.{key}` cannot be decrypted with this server's ENCRYPTION_KEY(S) (made with another key, or not a Fernet token): encrypt the value again with `fastflow encrypt` or the Secrets page"
                )),
            }
        }
    }
    let listed: Vec<String> = pipeline
        .metadata
        .secrets
        .iter()
        .filter(|k| !overridden.contains(k.as_str()))
        .cloned()
        .collect();
    let listed = &listed;
    let stored = db::secrets::get_many(pool, listed)
        .await
        .map_err(|e| format!("reading the secrets this pipeline lists failed: {e}"))?;
    let mut known: Option<Vec<String>> = None;
    for key in listed {
        let Some(row) = stored.iter().find(|s| &s.key == key) else {
            if known.is_none() {
                known = Some(db::secrets::keys(pool).await.unwrap_or_default());
            }
            let hint = known
                .as_deref()
                .and_then(|k| similar(key, k))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            problems.push(format!(
                "secret `{key}` is listed in {file} `secrets` but is not defined{hint}: create it on the Secrets page or with POST /api/secrets"
            ));
            continue;
        };
        let (value, source) = if row.is_parameter {
            if row.value.contains('\0') {
                problems.push(format!(
                    "parameter `{key}` holds a NUL character, which an environment variable cannot hold: store it again on the Secrets page"
                ));
                continue;
            }
            (SecretString::new(row.value.clone()), Source::Parameter)
        } else {
            match cipher.decrypt(&row.value) {
                Ok(plain) if plain.expose().contains('\0') => {
                    problems.push(format!(
                        "secret `{key}` holds a NUL character, which an environment variable cannot hold: store it again on the Secrets page"
                    ));
                    continue;
                }
                Ok(plain) => (plain, Source::Secret),
                Err(_) => {
                    problems.push(format!(
                        "secret `{key}` cannot be decrypted with the current ENCRYPTION_KEY(S) (was the key changed? list the key it was stored with after the current one in ENCRYPTION_KEYS), or store it again on the Secrets page"
                    ));
                    continue;
                }
            }
        };
        injection.env.insert(key.clone(), value);
        injection.sources.insert(key.clone(), source);
    }
    if problems.is_empty() {
        Ok(injection)
    } else {
        Err(problems.join("; "))
    }
}

/// The stored key `key` is most likely a typo of: the same ignoring case, or
/// at most two edits away (for keys of five characters or more).
fn similar<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let upper = key.to_ascii_uppercase();
    known
        .iter()
        .map(|k| {
            let distance = strsim::damerau_levenshtein(&upper, &k.to_ascii_uppercase());
            (distance, k)
        })
        .filter(|(d, k)| *d == 0 || (*d <= 2 && key.len() >= 5 && k.len() >= 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Why a failed run did not see a variable it read: `KeyError: 'NAME'` at the
/// end of its error, where `NAME` is a stored secret the pipeline does not list.
pub async fn unlisted_hint(pool: &Pool, pipeline: &Pipeline, message: &str) -> Option<String> {
    let name = message
        .rsplit("KeyError: '")
        .next()
        .filter(|_| message.contains("KeyError: '"))?
        .split('\'')
        .next()?;
    if pipeline.metadata.secrets.iter().any(|k| k == name) {
        return None;
    }
    let stored = db::secrets::get_many(pool, &[name.to_string()])
        .await
        .ok()?;
    stored.first().map(|_| {
        format!(
            "`{name}` is a stored secret, but {} does not list it in `secrets`: a pipeline receives only the secrets it lists",
            pipeline.metadata_file.as_deref().unwrap_or("pipeline.json")
        )
    })
}

/// A masker for a run that a previous process started: the values are read back
/// from the container's own environment (`KEY=value` entries), for the names the
/// run recorded as masked, so the log goes on hiding exactly what was injected.
pub fn masker_from_container_env(
    recorded: &BTreeMap<String, String>,
    container_env: &[String],
) -> Masker {
    let values: Vec<SecretString> = container_env
        .iter()
        .filter_map(|entry| entry.split_once('='))
        .filter(|(k, _)| {
            recorded
                .get(*k)
                .is_some_and(|source| Source::is_masked(source))
        })
        .map(|(_, v)| SecretString::new(v))
        .collect();
    Masker::new(&values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_or_a_different_case_is_suggested_but_nothing_far_off() {
        let known: Vec<String> = ["DB_PASSWORD", "API_TOKEN", "AB"].map(String::from).into();
        assert_eq!(similar("DB_PASWORD", &known), Some("DB_PASSWORD"));
        assert_eq!(similar("db_password", &known), Some("DB_PASSWORD"));
        assert_eq!(similar("API_TOKNE", &known), Some("API_TOKEN"));
        assert_eq!(similar("SMTP_PASSWORD", &known), None);
        assert_eq!(similar("AC", &known), None, "short keys are not guessed");
    }

    #[test]
    fn container_env_gives_back_only_recorded_masked_values() {
        let recorded: BTreeMap<String, String> = [
            ("DB_PASSWORD".to_string(), "secret".to_string()),
            ("TOKEN".to_string(), "encrypted_env".to_string()),
            ("REGION".to_string(), "parameter".to_string()),
        ]
        .into();
        let env = [
            "DB_PASSWORD=hunter22".to_string(),
            "TOKEN=tok=with=equals".to_string(),
            "REGION=eu-west-1".to_string(),
            "HOME=/tmp".to_string(),
        ];
        let m = masker_from_container_env(&recorded, &env);
        assert_eq!(
            m.mask("hunter22 tok=with=equals eu-west-1 /tmp"),
            "*** *** eu-west-1 /tmp"
        );
    }
}
