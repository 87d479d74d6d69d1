//! `fastflow check [DIR]`: validates every pipeline of a directory and prints each
//! problem with its file and field, for the CI of users' pipeline repositories.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::pipelines::scan;

pub fn main(dir: Option<PathBuf>) -> ExitCode {
    let dir = match dir {
        Some(d) => d,
        None => {
            let _ = dotenvy::dotenv();
            let vars: HashMap<String, String> = std::env::vars().collect();
            match Config::from_vars(&vars) {
                Ok(c) => c.pipelines_dir,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let (report, ok) = report(&dir);
    print!("{report}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `name/file: problem`, or `name: problem` for the directory itself.
fn located(p: &crate::pipelines::Pipeline, issue: &crate::pipelines::FieldIssue) -> String {
    match p.file_of(issue) {
        Some(file) => format!("{}/{file}: {issue}", p.name.escape_debug()),
        None => format!("{}: {issue}", p.name.escape_debug()),
    }
}

/// The printed report and whether every pipeline is valid.
pub fn report(dir: &std::path::Path) -> (String, bool) {
    // No engine here: limits are checked against their ranges, not a host.
    let snapshot = scan(dir, None);
    let mut out = String::new();
    if let Some(e) = &snapshot.dir_error {
        out.push_str(&format!("error: {e}\n"));
        return (out, false);
    }
    let mut invalid = 0;
    for p in snapshot.pipelines.values() {
        if p.is_valid() {
            out.push_str(&format!("ok      {}\n", p.name.escape_debug()));
        } else {
            invalid += 1;
            out.push_str(&format!("INVALID {}\n", p.name.escape_debug()));
            for e in &p.errors {
                out.push_str(&format!("  error: {}\n", located(p, e)));
            }
        }
        for w in &p.warnings {
            out.push_str(&format!("  warning: {}\n", located(p, w)));
        }
    }
    out.push_str(&format!(
        "{} pipelines in {}, {} invalid\n",
        snapshot.pipelines.len(),
        dir.display(),
        invalid
    ));
    (out, invalid == 0)
}
