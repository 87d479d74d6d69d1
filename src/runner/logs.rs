//! Run logs on disk: splitting the container's byte streams into numbered lines,
//! appending them to `LOGS_DIR/<run_id>.log` with a size cap, and reading them back.
//!
//! File format, one line per output line:
//! `2026-11-27T04:03:14.123Z out <text>` — a fixed-width UTC timestamp, the
//! stream (`out`, `err`, or `sys` for Fast-Flow's own notes), then the text.
//! A line's sequence number is its line number in the file (from 1).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// Written by Fast-Flow itself (truncation markers, infrastructure notes).
    System,
}

impl Stream {
    fn tag(self) -> &'static str {
        match self {
            Self::Stdout => "out",
            Self::Stderr => "err",
            Self::System => "sys",
        }
    }

    fn from_tag(tag: &str) -> Self {
        match tag {
            "err" => Self::Stderr,
            "sys" => Self::System,
            _ => Self::Stdout,
        }
    }

    pub fn css_class(self) -> &'static str {
        self.tag()
    }
}

/// One stored line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub stream: Stream,
    pub text: String,
}

impl LogLine {
    /// The Fast-Flow 1.x plain-text form: `[YYYY-MM-DD HH:MM:SS.mmm] text`.
    pub fn to_plain(&self) -> String {
        format!(
            "[{}] {}",
            self.ts.format("%Y-%m-%d %H:%M:%S%.3f"),
            self.text
        )
    }

    fn to_file_line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            self.stream.tag(),
            self.text
        )
    }

    fn from_file_line(seq: u64, line: &str) -> Self {
        // Fixed layout "<24-char ts> <3-char tag> <text>"; anything else is kept as text.
        let parsed = (line.len() >= 29 && line.is_char_boundary(24) && line.is_char_boundary(28))
            .then(|| {
                let ts = DateTime::parse_from_rfc3339(&line[..24])
                    .ok()?
                    .with_timezone(&Utc);
                let tag = &line[25..28];
                let text = line.get(29..).unwrap_or("");
                Some((ts, Stream::from_tag(tag), text.to_string()))
            })
            .flatten();
        match parsed {
            Some((ts, stream, text)) => LogLine {
                seq,
                ts,
                stream,
                text,
            },
            None => LogLine {
                seq,
                ts: DateTime::<Utc>::UNIX_EPOCH,
                stream: Stream::System,
                text: line.to_string(),
            },
        }
    }
}

/// Splits a byte stream into lines; a partial line waits for the next chunk.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// Appends `chunk` and returns every completed line (without `\n`, UTF-8 repaired lossily).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let (head, tail) = rest.split_at(pos);
            if self.partial.is_empty() {
                lines.push(String::from_utf8_lossy(head).into_owned());
            } else {
                self.partial.extend_from_slice(head);
                lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                self.partial.clear();
            }
            rest = &tail[1..];
        }
        self.partial.extend_from_slice(rest);
        lines
    }

    /// Bytes received since the last newline.
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// The last line if output did not end with a newline.
    pub fn finish(&mut self) -> Option<String> {
        if self.partial.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Some(line)
    }
}

/// Appends numbered lines to a run's log file, enforcing `LOG_MAX_SIZE_MB`.
pub struct LogWriter {
    file: std::io::BufWriter<std::fs::File>,
    next_seq: u64,
    bytes: u64,
    max_bytes: u64,
    truncated: bool,
    dropped_lines: u64,
    dropped_bytes: u64,
}

/// Counters of a finished log.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSummary {
    pub lines: u64,
    pub bytes: u64,
    pub truncated: bool,
}

impl LogWriter {
    /// Opens (appending) the log file; `existing_lines` continues numbering after a restart.
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let (existing_lines, bytes) = count_lines(path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Self {
            file: std::io::BufWriter::with_capacity(64 * 1024, file),
            next_seq: existing_lines + 1,
            bytes,
            max_bytes,
            truncated: false,
            dropped_lines: 0,
            dropped_bytes: 0,
        })
    }

    /// Buffers one line; returns it numbered if it was stored (`None` once over the cap).
    /// Call [`LogWriter::flush`] before announcing the returned lines.
    pub fn append(&mut self, stream: Stream, text: String) -> std::io::Result<Option<LogLine>> {
        let line = LogLine {
            seq: self.next_seq,
            ts: Utc::now(),
            stream,
            text,
        };
        let encoded = line.to_file_line();
        if self.truncated
            || (stream != Stream::System && self.bytes + encoded.len() as u64 > self.max_bytes)
        {
            self.dropped_lines += 1;
            self.dropped_bytes += line.text.len() as u64 + 1;
            if !self.truncated {
                self.truncated = true;
                return self.write_system(format!(
                    "[fastflow] log truncated: LOG_MAX_SIZE_MB limit of {} reached; further output is not stored",
                    human_bytes(self.max_bytes)
                ));
            }
            return Ok(None);
        }
        self.file.write_all(encoded.as_bytes())?;
        self.bytes += encoded.len() as u64;
        self.next_seq += 1;
        Ok(Some(line))
    }

    /// A line from Fast-Flow itself; always stored, even past the cap.
    pub fn write_system(&mut self, text: String) -> std::io::Result<Option<LogLine>> {
        let line = LogLine {
            seq: self.next_seq,
            ts: Utc::now(),
            stream: Stream::System,
            text,
        };
        let encoded = line.to_file_line();
        self.file.write_all(encoded.as_bytes())?;
        self.bytes += encoded.len() as u64;
        self.next_seq += 1;
        Ok(Some(line))
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }

    /// Writes the drop count (if any), flushes and syncs; returns the counters.
    pub fn close(mut self) -> std::io::Result<(LogSummary, Option<LogLine>)> {
        let marker = if self.dropped_lines > 0 {
            let text = format!(
                "[fastflow] {} more lines ({}) were dropped after the size limit",
                self.dropped_lines,
                human_bytes(self.dropped_bytes)
            );
            self.write_system(text)?
        } else {
            None
        };
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        let summary = LogSummary {
            lines: self.next_seq - 1,
            bytes: self.bytes,
            truncated: self.truncated,
        };
        Ok((summary, marker))
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn count_lines(path: &Path) -> std::io::Result<(u64, u64)> {
    match std::fs::File::open(path) {
        Ok(f) => {
            let bytes = f.metadata()?.len();
            let mut lines = 0;
            for chunk in BufReader::new(f).split(b'\n') {
                chunk?;
                lines += 1;
            }
            Ok((lines, bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((0, 0)),
        Err(e) => Err(e),
    }
}

/// Stored stdout and stderr lines (Fast-Flow's own lines not counted): what a
/// resumed run must skip in the engine's copy of the output.
pub fn stream_line_counts(path: &Path) -> std::io::Result<(u64, u64)> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let (mut out, mut err) = (0, 0);
    for raw in BufReader::new(file).split(b'\n') {
        let raw = raw?;
        match raw.get(25..29) {
            Some(b"out ") => out += 1,
            Some(b"err ") => err += 1,
            _ => {}
        }
    }
    Ok((out, err))
}

/// The log file of a run.
pub fn log_path(logs_dir: &Path, run_id: &str) -> PathBuf {
    logs_dir.join(format!("{run_id}.log"))
}

/// Reads stored lines with `seq >= from_seq`, at most `limit` of them.
pub fn read_lines(path: &Path, from_seq: u64, limit: usize) -> std::io::Result<Vec<LogLine>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for (i, raw) in BufReader::new(file).split(b'\n').enumerate() {
        let seq = i as u64 + 1;
        let raw = raw?;
        if seq < from_seq {
            continue;
        }
        if out.len() >= limit {
            break;
        }
        out.push(LogLine::from_file_line(seq, &String::from_utf8_lossy(&raw)));
    }
    Ok(out)
}

/// The last `n` stored lines.
pub fn tail_lines(path: &Path, n: usize) -> std::io::Result<Vec<LogLine>> {
    let (total, _) = count_lines(path)?;
    let from = total.saturating_sub(n as u64) + 1;
    read_lines(path, from, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_keeps_partials_and_repairs_utf8() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"hello\nwor"), vec!["hello"]);
        assert_eq!(
            s.push(b"ld\n\n\xff\xfeok\npart"),
            vec!["world", "", "\u{fffd}\u{fffd}ok"]
        );
        // A multi-byte character split across chunks is rejoined, not mangled.
        let snow = "☃".as_bytes();
        assert!(s.push(&snow[..1]).is_empty());
        assert_eq!(s.push(&[&snow[1..], b"\n"].concat()), vec!["part☃"]);
        assert!(s.push(b"tail").is_empty());
        assert_eq!(s.finish().as_deref(), Some("tail"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn writer_numbers_lines_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut w = LogWriter::open(&path, 1 << 20).unwrap();
        w.append(Stream::Stdout, "one".into()).unwrap();
        w.append(Stream::Stderr, "two  with  spaces".into())
            .unwrap();
        w.append(Stream::Stdout, "".into()).unwrap();
        let (summary, _) = w.close().unwrap();
        assert_eq!(summary.lines, 3);
        let lines = read_lines(&path, 2, 10).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0].seq, lines[0].stream, lines[0].text.as_str()),
            (2, Stream::Stderr, "two  with  spaces")
        );
        assert_eq!(lines[1].text, "");
        assert!(lines[0].to_plain().ends_with("] two  with  spaces"));
        // Reopening continues the numbering.
        let mut w = LogWriter::open(&path, 1 << 20).unwrap();
        assert_eq!(
            w.append(Stream::Stdout, "four".into())
                .unwrap()
                .unwrap()
                .seq,
            4
        );
        w.close().unwrap();
        assert_eq!(tail_lines(&path, 1).unwrap()[0].text, "four");
    }

    #[test]
    fn cap_truncates_visibly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut w = LogWriter::open(&path, 200).unwrap();
        let mut stored = 0;
        for i in 0..100 {
            if w.append(Stream::Stdout, format!("line {i}"))
                .unwrap()
                .is_some()
            {
                stored += 1;
            }
        }
        let (summary, marker) = w.close().unwrap();
        assert!(summary.truncated);
        assert!(marker.unwrap().text.contains("more lines"));
        let lines = read_lines(&path, 1, 1000).unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.stream == Stream::System && l.text.contains("log truncated"))
        );
        assert_eq!(lines.len() as u64, summary.lines);
        assert!(stored < 100);
    }
}
