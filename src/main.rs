//! The `fastflow` binary: `serve` (default), `check [DIR]`, `encrypt`, `rotate-key`,
//! `token create|list|revoke`, `backup DIR`, `restore DIR` or `import-fastflow DB`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "fastflow",
    version,
    about = "Lightweight, Docker-native, Python-centric task orchestrator"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server, scheduler and runner (the default).
    Serve,
    /// Validate a pipelines directory (default: PIPELINES_DIR); exits 1 if any pipeline is invalid.
    Check {
        /// The directory to check.
        dir: Option<PathBuf>,
    },
    /// Print a Fernet token of the value on standard input, for a pipeline's encrypted_env
    /// (`printf %s "$VALUE" | fastflow encrypt`), made with the server's key.
    Encrypt,
    /// Re-encrypt every stored secret and credential made with an older key of
    /// ENCRYPTION_KEYS (newest first) with the newest one.
    RotateKey,
    /// Copy the database (consistently, while the server runs), the logs and the
    /// generated encryption key into DIR (new or empty).
    Backup {
        /// Where the backup goes.
        dir: PathBuf,
    },
    /// Put a backup made with `fastflow backup` back (the server must be stopped).
    Restore {
        /// The backup's directory.
        dir: PathBuf,
        /// Replace an existing database (it is kept as fastflow.db.before-restore-<time>).
        #[arg(long)]
        force: bool,
    },
    /// Import a Python Fast-Flow 1.x database (fastflow.db): run history, secrets and
    /// parameters (same ENCRYPTION_KEY), users with their sign-in providers, switched-off
    /// scheduler jobs and the e-mail/Teams settings. Reads this server's configuration
    /// (DATA_DIR, DATABASE_URL, ENCRYPTION_KEY, .env); stop the server first. Safe to run
    /// again: what exists here is left alone. See docs/deployment.md.
    ImportFastflow {
        /// The 1.x SQLite database file.
        path: PathBuf,
    },
    /// API tokens for curl, CI and first setup (`Authorization: Bearer <token>`).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Make a token and print it alone on stdout (it is shown only this once).
    Create {
        /// A name to list and revoke it by.
        #[arg(long)]
        name: String,
        /// readonly, write or admin.
        #[arg(long)]
        role: String,
        /// Days until it stops working (1–3650); without it, it works until revoked.
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    /// List every token (never the tokens themselves).
    List,
    /// Revoke a token made with `token create`, by name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => fastflow::app::main(),
        Command::Check { dir } => fastflow::check::main(dir),
        Command::Encrypt => fastflow::secrets::encrypt_command::main(),
        Command::RotateKey => fastflow::secrets::rotate_command::main(),
        Command::Backup { dir } => fastflow::backup::main(dir),
        Command::ImportFastflow { path } => fastflow::import_fastflow::main(path),
        Command::Restore { dir, force } => fastflow::backup::restore::main(dir, force),
        Command::Token { action } => {
            use fastflow::auth::token_command::{TokenCommand, main};
            main(match action {
                TokenAction::Create {
                    name,
                    role,
                    expires_in_days,
                } => TokenCommand::Create {
                    name,
                    role,
                    expires_in_days,
                },
                TokenAction::List => TokenCommand::List,
                TokenAction::Revoke { name } => TokenCommand::Revoke { name },
            })
        }
    }
}
