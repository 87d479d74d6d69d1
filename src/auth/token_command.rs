//! `fastflow token create|list|revoke`: API tokens for automation and first
//! setup, made from the same configuration as `serve` (and while it runs). A
//! token made here belongs to no user: it is the operator's, with the role
//! given. `create` prints the token alone on stdout, so `$(fastflow token
//! create …)` captures it.

use std::process::ExitCode;

use chrono::{Duration, Utc};

use super::{Role, api_token};
use crate::config::Config;
use crate::db::{self, api_tokens};

/// Longest name of a token.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime `--expires-in-days` accepts (ten years).
pub const MAX_EXPIRY_DAYS: i64 = 3650;

pub enum TokenCommand {
    Create {
        name: String,
        role: String,
        expires_in_days: Option<i64>,
    },
    List,
    Revoke {
        name: String,
    },
}

pub fn main(command: TokenCommand) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        eprintln!("error: creating {}: {e}", config.data_dir.display());
        return ExitCode::FAILURE;
    }
    let done = crate::command_runtime::block_on(async {
        let pool = match db::connect(&config.database_url).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        match run(&pool, command).await {
            Ok(()) => ExitCode::SUCCESS,
            Err((code, message)) => {
                eprintln!("error: {message}");
                ExitCode::from(code)
            }
        }
    });
    done.unwrap_or_else(|code| code)
}

async fn run(pool: &db::Pool, command: TokenCommand) -> Result<(), (u8, String)> {
    let db_err = |e: db::DbError| (1, e.to_string());
    match command {
        TokenCommand::Create {
            name,
            role,
            expires_in_days,
        } => {
            let name = check_name(&name).map_err(|m| (2, m))?;
            let role: Role = role
                .parse()
                .map_err(|e: super::role::UnknownRole| (2, e.to_string()))?;
            let expires_at = match expires_in_days {
                None => None,
                Some(d @ 1..=MAX_EXPIRY_DAYS) => Some(Utc::now() + Duration::days(d)),
                Some(d) => {
                    return Err((
                        2,
                        format!(
                            "--expires-in-days must be between 1 and {MAX_EXPIRY_DAYS}, got {d}"
                        ),
                    ));
                }
            };
            let made = api_token::generate()
                .map_err(|e| (1, format!("the system's random source failed: {e}")))?;
            let stored = api_tokens::insert(
                pool,
                &api_tokens::NewApiToken {
                    name,
                    user_id: None,
                    role: role.as_str(),
                    token_hash: &made.hash,
                    expires_at,
                },
            )
            .await
            .map_err(db_err)?;
            if !stored {
                return Err((
                    1,
                    format!(
                        "a token named `{name}` exists; revoke it first (fastflow token revoke {name}) or pick another name"
                    ),
                ));
            }
            println!("{}", made.token.expose());
            audited(
                pool,
                "token.create",
                name,
                format!("role {role}, made with the CLI"),
            )
            .await;
            Ok(())
        }
        TokenCommand::List => {
            let tokens = api_tokens::list(pool).await.map_err(db_err)?;
            println!("NAME\tOWNER\tROLE\tCREATED\tEXPIRES\tLAST USED\tSTATE");
            let when = |t: Option<chrono::DateTime<Utc>>| {
                t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "-".into())
            };
            for t in tokens {
                let state = match (&t.revoked_at, t.expires_at) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= Utc::now() => "expired",
                    _ => "live",
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{state}",
                    t.name,
                    t.username.as_deref().unwrap_or("(cli)"),
                    t.role,
                    when(Some(t.created_at)),
                    when(t.expires_at),
                    when(t.last_used_at),
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            if api_tokens::revoke(pool, None, &name)
                .await
                .map_err(db_err)?
            {
                eprintln!("revoked `{name}`");
                audited(pool, "token.revoke", &name, "with the CLI".into()).await;
                Ok(())
            } else {
                Err((
                    1,
                    format!(
                        "no live token named `{}` made with fastflow token create",
                        crate::pipelines::fields::shown(&name)
                    ),
                ))
            }
        }
    }
}

async fn audited(pool: &db::Pool, action: &str, name: &str, detail: String) {
    let entry = db::audit_log::NewEntry {
        actor: "cli".into(),
        action: action.into(),
        target: Some(crate::audit::clip(name)),
        outcome: "ok".into(),
        detail: Some(detail),
        ..Default::default()
    };
    crate::audit::record(pool, entry).await;
}

/// A token name: 1 to 100 printable characters, no control characters.
pub fn check_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("a token name has 1 to {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("a token name cannot hold control characters".into());
    }
    Ok(name)
}
