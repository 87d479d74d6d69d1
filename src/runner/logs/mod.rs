//! Run logs on disk: the line format of `LOGS_DIR/<run_id>.log`, writing it
//! (`writer`) and reading it back without rescanning (`reader`).
//!
//! File format, one line per output line:
//! `2026-11-27T04:03:14.123Z out <text>` — a fixed-width UTC timestamp, the
//! stream tag, then the text. Tags: `out`, `err`, `sys` (Fast-Flow's own notes),
//! and `ou~` / `er~` for a piece of an over-long line that continues on the next
//! line. A line's sequence number is its line number in the file (from 1).

mod reader;
mod writer;

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub use reader::{LogCursor, StoredStream, stored_streams, tail_cursor, tail_lines};
pub use writer::{LineSplitter, LogSummary, LogWriter, Piece, StorageFailure};

/// Longest line stored as one: longer output is split into pieces of this size,
/// each but the last marked as continued. Bounds the memory one line can take.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The first words of the line written when a log reaches `LOG_MAX_SIZE_MB`.
pub const TRUNCATED_MARKER: &str = "[fastflow] log truncated: LOG_MAX_SIZE_MB limit of";

/// Shown after a piece of an over-long line.
pub const CONTINUED_MARKER: &str = "[fastflow: line longer than 1 MiB, continued on the next line]";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Written by Fast-Flow itself (truncation markers, infrastructure notes).
    System,
}

impl Stream {
    fn tag(self, continued: bool) -> &'static str {
        match (self, continued) {
            (Self::Stdout, false) => "out",
            (Self::Stdout, true) => "ou~",
            (Self::Stderr, false) => "err",
            (Self::Stderr, true) => "er~",
            (Self::System, _) => "sys",
        }
    }

    fn from_tag(tag: &[u8]) -> (Self, bool) {
        match tag {
            b"err" => (Self::Stderr, false),
            b"er~" => (Self::Stderr, true),
            b"ou~" => (Self::Stdout, true),
            b"sys" => (Self::System, false),
            _ => (Self::Stdout, false),
        }
    }

    pub fn css_class(self) -> &'static str {
        self.tag(false)
    }
}

/// One stored line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub stream: Stream,
    pub text: String,
    /// A piece of a line longer than [`MAX_LINE_BYTES`]; the next piece follows.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub continued: bool,
}

impl LogLine {
    /// The Fast-Flow 1.x plain-text form: `[YYYY-MM-DD HH:MM:SS.mmm] text`.
    pub fn to_plain(&self) -> String {
        let mut out = format!(
            "[{}] {}",
            self.ts.format("%Y-%m-%d %H:%M:%S%.3f"),
            self.text
        );
        if self.continued {
            out.push(' ');
            out.push_str(CONTINUED_MARKER);
        }
        out
    }

    fn to_file_line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.stream.tag(self.continued),
            self.text
        )
    }

    /// Parses one line of the file (without its `\n`); anything malformed is kept as text.
    fn from_file_line(seq: u64, raw: &[u8]) -> Self {
        // Fixed layout "<24-char ts> <3-char tag> <text>".
        let parsed = (raw.len() >= 28 && raw[24] == b' ')
            .then(|| {
                let ts = std::str::from_utf8(&raw[..24]).ok()?;
                let ts = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
                let (stream, continued) = Stream::from_tag(&raw[25..28]);
                let text = raw.get(29..).unwrap_or_default();
                Some((
                    ts,
                    stream,
                    continued,
                    String::from_utf8_lossy(text).into_owned(),
                ))
            })
            .flatten();
        match parsed {
            Some((ts, stream, continued, text)) => LogLine {
                seq,
                ts,
                stream,
                text,
                continued,
            },
            None => LogLine {
                seq,
                ts: DateTime::<Utc>::UNIX_EPOCH,
                stream: Stream::System,
                text: String::from_utf8_lossy(raw).into_owned(),
                continued: false,
            },
        }
    }
}

/// The log file of a run.
pub fn log_path(logs_dir: &Path, run_id: &str) -> PathBuf {
    logs_dir.join(format!("{run_id}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_round_trip_and_garbage_is_kept() {
        let line = LogLine {
            seq: 7,
            ts: Utc::now(),
            stream: Stream::Stderr,
            text: "two  spaces ☃".into(),
            continued: true,
        };
        let encoded = line.to_file_line();
        let back = LogLine::from_file_line(7, encoded.trim_end_matches('\n').as_bytes());
        assert_eq!(back.text, line.text);
        assert_eq!((back.stream, back.continued), (Stream::Stderr, true));
        assert!(back.to_plain().ends_with(CONTINUED_MARKER));
        let junk = LogLine::from_file_line(1, b"\xff not a log line");
        assert_eq!(junk.stream, Stream::System);
        assert!(junk.text.contains("not a log line"));
    }
}
