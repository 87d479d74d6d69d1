//! The `fastflow` binary: `serve` (default) or `check [DIR]`.

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => fastflow::app::main(),
        Command::Check { dir } => fastflow::check::main(dir),
    }
}
