//! How a run ended, told truthfully: out of memory only with evidence (the
//! engine's `OOMKilled`, or a SIGKILL at the memory limit), a kill from outside
//! as a kill, a failed `requirements.txt` install as a `dependency_error` with
//! uv's own words, and a Python failure with its exception line.

use std::collections::VecDeque;

use crate::db::RunOutcome;
use crate::pipelines::fields::MemorySize;
use crate::run_status::{ErrorType, RunStatus};

/// Stderr lines kept for error messages, and the longest part of one kept.
const TAIL_LINES: usize = 24;
const TAIL_LINE_CHARS: usize = 400;

/// The end of what a run printed on stderr, kept in memory (bounded) to explain a failure.
#[derive(Debug, Default)]
pub struct StderrTail {
    lines: VecDeque<String>,
    in_traceback: bool,
    exception: Option<String>,
}

impl StderrTail {
    /// Notes one stderr line.
    pub fn observe(&mut self, text: &str) {
        let line = cut(text.trim_end(), TAIL_LINE_CHARS);
        let bare = line.trim_start_matches([' ', '|', '+']);
        if bare.starts_with("Traceback (most recent call last):")
            || bare.starts_with("Exception Group Traceback")
            || (line.starts_with("  File \"") && !self.in_traceback)
        {
            // A traceback, or the `File "…", line N` block a SyntaxError starts with.
            self.in_traceback = true;
            self.exception = None;
        } else if self.in_traceback && is_exception_line(bare) {
            // The last exception line after the last traceback; chained tracebacks
            // reset it at their own header, and a message's further lines are not one.
            self.exception = Some(bare.to_string());
        }
        if self.lines.len() == TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// `RuntimeError: upstream data missing` of the last traceback, if any.
    pub fn exception(&self) -> Option<&str> {
        self.exception.as_deref()
    }

    /// uv's error in one line: its first `error:`/`×` line and its last cause.
    /// uv's `hint:`/`help:` lines advise on flags; the cause is the line before them.
    fn setup_error(&self) -> Option<String> {
        let lines: Vec<String> = self
            .lines
            .iter()
            .filter(|l| {
                let t = l.trim_start();
                !t.starts_with("hint:") && !t.starts_with("help:")
            })
            .map(|l| undecorate(l))
            .filter(|l| !l.is_empty())
            .collect();
        let last = lines.last()?;
        let head = self
            .lines
            .iter()
            .find(|l| {
                let t = l.trim_start();
                t.starts_with("error:") || t.starts_with('×')
            })
            .map(|l| undecorate(l));
        Some(match head {
            Some(head) if head != *last => cut(&format!("{head}: {last}"), 2 * TAIL_LINE_CHARS),
            _ => last.clone(),
        })
    }

    /// Whether the output shows a TLS certificate that was not trusted.
    fn certificate_problem(&self) -> bool {
        self.lines.iter().any(|l| {
            l.contains("UnknownIssuer")
                || l.contains("CERTIFICATE_VERIFY_FAILED")
                || l.contains("invalid peer certificate")
                || l.contains("self-signed certificate")
        })
    }
}

/// `ValueError: boom`, `pkg.mod.CustomError`, `KeyboardInterrupt`: a dotted
/// identifier whose last part names an exception, then `: message` or nothing.
fn is_exception_line(line: &str) -> bool {
    const ENDINGS: [&str; 8] = [
        "Error",
        "Exception",
        "Warning",
        "Exit",
        "Interrupt",
        "Group",
        "Iteration",
        "Fault",
    ];
    let head = line.split_once(": ").map_or(line, |(h, _)| h);
    let last = head.rsplit('.').next().unwrap_or_default();
    !head.is_empty()
        && head.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        && ENDINGS.iter().any(|e| last.ends_with(e))
}

/// `  ╰─▶ Because x was not found` → `Because x was not found`.
fn undecorate(line: &str) -> String {
    let mut t = line.trim();
    for prefix in ["×", "╰─▶", "├─▶", "│", "error:", "Caused by:"] {
        t = t.strip_prefix(prefix).unwrap_or(t).trim_start();
    }
    t.to_string()
}

fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// What is known about a container that ended on its own or was killed at the timeout.
pub struct ExitFacts<'a> {
    pub exit_code: i64,
    pub timed_out: Option<u64>,
    /// The engine's `State.OOMKilled`.
    pub oom_killed: bool,
    pub mem_limit: Option<&'a MemorySize>,
    /// Highest memory use sampled, and how often the cgroup hit its limit (`failcnt`).
    pub peak_memory: Option<u64>,
    pub limit_hits: u64,
    /// Whether `main.py` started (the setup marker was seen).
    pub main_started: bool,
    pub has_requirements: bool,
    pub ca_bundle_configured: bool,
    pub stderr: &'a StderrTail,
}

pub fn failure(error_type: ErrorType, message: String) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Failed,
        exit_code: None,
        error_type: Some(error_type),
        error_message: Some(message),
        log_lines: 0,
        log_bytes: 0,
        log_truncated: false,
        ended_at: None,
    }
}

pub fn cancelled() -> RunOutcome {
    RunOutcome {
        status: RunStatus::Interrupted,
        ..failure(ErrorType::Cancelled, "cancelled by a user".into())
    }
}

/// The outcome of a container that exited (or was killed at its timeout).
pub fn classify(f: &ExitFacts<'_>) -> RunOutcome {
    let mut outcome = RunOutcome {
        exit_code: Some(f.exit_code),
        ..failure(ErrorType::PipelineError, String::new())
    };
    if f.exit_code == 0 && f.timed_out.is_none() {
        outcome.status = RunStatus::Success;
        outcome.error_type = None;
        outcome.error_message = None;
        return outcome;
    }
    let (error_type, message) = explain(f);
    let message = if f.stderr.certificate_problem() {
        format!(
            "{message} — a TLS certificate was not trusted: {}",
            if f.ca_bundle_configured {
                "check that WORKER_CA_BUNDLE holds your proxy's CA certificate"
            } else {
                "behind a TLS-intercepting proxy, set WORKER_CA_BUNDLE to its CA bundle"
            }
        )
    } else {
        message
    };
    outcome.error_type = Some(error_type);
    outcome.error_message = Some(message);
    outcome
}

fn explain(f: &ExitFacts<'_>) -> (ErrorType, String) {
    if let Some(seconds) = f.timed_out {
        return (
            ErrorType::Timeout,
            format!("timed out after {seconds}s and was killed"),
        );
    }
    let signal = (129..=159)
        .contains(&f.exit_code)
        .then(|| f.exit_code - 128);
    // Out of memory only on the engine's word: a SIGKILL near the limit may be a
    // `docker kill`, so that is said as what it is, not as an OOM.
    if f.oom_killed {
        let message = match f.mem_limit {
            Some(limit) => {
                let peak = f
                    .peak_memory
                    .map(|p| format!("; peak sampled {}", crate::byte_size::human_bytes(p)))
                    .unwrap_or_default();
                format!(
                    "killed: out of memory (exceeded mem_hard_limit {}{peak})",
                    limit.text
                )
            }
            None => "killed: out of memory (the Docker host ran out of memory)".into(),
        };
        return (ErrorType::Oom, message);
    }
    if let Some(sig) = signal {
        let mut message = format!(
            "exit code {}: terminated by signal {sig} ({}), which Fast-Flow did not send",
            f.exit_code,
            signal_name(sig)
        );
        if let (Some(limit), Some(peak)) = (f.mem_limit, f.peak_memory)
            && (peak as f64 >= 0.9 * limit.bytes as f64 || f.limit_hits > 0)
        {
            message.push_str(&format!(
                "; memory was at {} of mem_hard_limit {}, but the engine reported no out-of-memory kill",
                crate::byte_size::human_bytes(peak),
                limit.text
            ));
        }
        return (ErrorType::PipelineError, message);
    }
    if !f.main_started {
        let what = if f.has_requirements {
            "installing requirements.txt failed"
        } else {
            "setting up the Python environment failed"
        };
        let detail = f
            .stderr
            .setup_error()
            .map(|e| format!(": {e}"))
            .unwrap_or_else(|| format!(" (uv exited with code {})", f.exit_code));
        return (
            ErrorType::DependencyError,
            format!("{what}; main.py did not start{detail}"),
        );
    }
    let mut message = format!("main.py exited with code {}", f.exit_code);
    if let Some(exception) = f.stderr.exception() {
        message.push_str(": ");
        message.push_str(exception);
    }
    (ErrorType::PipelineError, message)
}

fn signal_name(sig: i64) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(lines: &[&str]) -> StderrTail {
        let mut t = StderrTail::default();
        for l in lines {
            t.observe(l);
        }
        t
    }

    fn facts<'a>(code: i64, stderr: &'a StderrTail, mem: Option<&'a MemorySize>) -> ExitFacts<'a> {
        ExitFacts {
            exit_code: code,
            timed_out: None,
            oom_killed: false,
            mem_limit: mem,
            peak_memory: Some(10 << 20),
            limit_hits: 0,
            main_started: true,
            has_requirements: false,
            ca_bundle_configured: false,
            stderr,
        }
    }

    #[test]
    fn exception_line_of_the_last_traceback() {
        let t = tail(&[
            "Traceback (most recent call last):",
            "  File \"/app/main.py\", line 3, in <module>",
            "KeyError: 'a'",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"/app/main.py\", line 5, in <module>",
            "    raise RuntimeError(\"upstream data missing\")",
            "RuntimeError: upstream data missing",
        ]);
        let o = classify(&facts(1, &t, None));
        assert_eq!(
            o.error_message.as_deref(),
            Some("main.py exited with code 1: RuntimeError: upstream data missing")
        );
    }

    #[test]
    fn syntax_errors_groups_and_multi_line_messages() {
        let syntax = tail(&[
            "  File \"/app/main.py\", line 1",
            "    def (",
            "        ^",
            "SyntaxError: invalid syntax",
        ]);
        assert_eq!(syntax.exception(), Some("SyntaxError: invalid syntax"));
        let group = tail(&[
            "  + Exception Group Traceback (most recent call last):",
            "  |   File \"/app/main.py\", line 1, in <module>",
            "  | ExceptionGroup: several (2 sub-exceptions)",
            "  +-+---------------- 1 ----------------",
            "    | ValueError: one",
            "    +------------------------------------",
        ]);
        assert_eq!(group.exception(), Some("ValueError: one"));
        let multi = tail(&[
            "Traceback (most recent call last):",
            "  File \"/app/main.py\", line 1, in <module>",
            "RuntimeError: line one",
            "line two",
            "line three",
        ]);
        assert_eq!(multi.exception(), Some("RuntimeError: line one"));
        assert!(tail(&["some log line: with a colon"]).exception().is_none());
    }

    #[test]
    fn a_kill_from_outside_is_not_oom_without_evidence() {
        let t = StderrTail::default();
        let limit = MemorySize {
            text: "128m".into(),
            bytes: 128 << 20,
        };
        let o = classify(&facts(137, &t, Some(&limit)));
        assert_eq!(o.error_type, Some(ErrorType::PipelineError));
        assert_eq!(
            o.error_message.as_deref(),
            Some("exit code 137: terminated by signal 9 (SIGKILL), which Fast-Flow did not send")
        );
        // Near the limit is a fact worth saying, not proof of an OOM kill.
        let mut near = facts(137, &t, Some(&limit));
        near.peak_memory = Some(121 << 20);
        let o = classify(&near);
        assert_eq!(o.error_type, Some(ErrorType::PipelineError));
        assert!(
            o.error_message
                .unwrap()
                .contains("but the engine reported no out-of-memory kill")
        );
        let mut flagged = facts(1, &t, Some(&limit));
        flagged.oom_killed = true;
        assert!(
            classify(&flagged)
                .error_message
                .unwrap()
                .contains("mem_hard_limit 128m")
        );
    }

    #[test]
    fn setup_failures_are_dependency_errors_with_uvs_words_and_the_fix() {
        let t = tail(&[
            "error: Failed to fetch: `https://pypi.org/simple/six/`",
            "  Caused by: Request failed after 3 retries",
            "  Caused by: invalid peer certificate: UnknownIssuer",
            "",
            "hint: Consider enabling use of system TLS certificates with the `--system-certs` command-line flag",
        ]);
        let mut f = facts(2, &t, None);
        f.main_started = false;
        f.has_requirements = true;
        let o = classify(&f);
        assert_eq!(o.error_type, Some(ErrorType::DependencyError));
        let m = o.error_message.unwrap();
        assert!(m.starts_with("installing requirements.txt failed; main.py did not start: Failed to fetch: `https://pypi.org/simple/six/`: invalid peer certificate: UnknownIssuer"), "{m}");
        assert!(m.contains("set WORKER_CA_BUNDLE"), "{m}");
    }

    #[test]
    fn the_tail_is_bounded() {
        let long = "x".repeat(100_000);
        let mut t = StderrTail::default();
        for _ in 0..10_000 {
            t.observe(&long);
        }
        assert!(t.lines.len() <= TAIL_LINES);
        assert!(
            t.lines
                .iter()
                .all(|l| l.chars().count() <= TAIL_LINE_CHARS + 1)
        );
    }
}
