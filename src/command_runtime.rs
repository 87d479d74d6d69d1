//! The async runtime a one-shot command (`fastflow token`, `rotate-key`) runs
//! on: one thread, started once; a failure to start is said on stderr. The data
//! commands (`backup`, `restore`, `import-fastflow`) share their frame here too.

use std::future::Future;
use std::process::ExitCode;

/// Runs `work` to its end, or says why the runtime could not start.
pub fn block_on<F: Future>(work: F) -> Result<F::Output, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok(rt.block_on(work)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// A data command: the configuration from the environment (exit 2 when it is
/// invalid), its directories made when `prepare_dirs`, then `work`, whose report
/// goes to stdout (exit 0) or whose error to stderr (exit 1).
pub fn run_with_config<F, Fut>(prepare_dirs: bool, work: F) -> ExitCode
where
    F: FnOnce(crate::config::Config) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let mut config = match crate::config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if prepare_dirs && let Err(e) = config.prepare_dirs() {
        eprintln!("error: creating DATA_DIR, LOGS_DIR or UV_CACHE_DIR: {e}");
        return ExitCode::FAILURE;
    }
    match block_on(work(config)) {
        Ok(Ok(report)) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Ok(Err(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Err(code) => code,
    }
}
