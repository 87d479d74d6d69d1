//! The async runtime a one-shot command (`fastflow token`, `rotate-key`) runs
//! on: one thread, started once; a failure to start is said on stderr.

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
