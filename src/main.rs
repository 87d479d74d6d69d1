//! The `fastflow` binary: `serve` (default), `check [DIR]`, `encrypt` or `rotate-key`.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => fastflow::app::main(),
        Command::Check { dir } => fastflow::check::main(dir),
        Command::Encrypt => fastflow::secrets::encrypt_command::main(),
        Command::RotateKey => fastflow::secrets::rotate_command::main(),
    }
}
