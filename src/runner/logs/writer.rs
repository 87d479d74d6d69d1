//! Writing a run's log: splitting the container's byte streams into lines of at
//! most [`MAX_LINE_BYTES`], numbering them, and appending them to the file under
//! `LOG_MAX_SIZE_MB`. A failed write (a full disk) never stops the caller: the
//! writer records the failure, stops writing, and counts what it could not store,
//! so the output keeps being drained and the run can end with the reason.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use chrono::{SubsecRound, Utc};

use super::{LogLine, MAX_LINE_BYTES, Stream};
use crate::byte_size::human_bytes;

/// A complete line, or a piece of an over-long one (`continued`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub continued: bool,
}

/// Splits a byte stream into lines; a partial line waits for the next chunk, but
/// never grows past its cap: it is emitted as a continued piece instead.
#[derive(Debug)]
pub struct LineSplitter {
    partial: Vec<u8>,
    max: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::with_max(MAX_LINE_BYTES)
    }
}

impl LineSplitter {
    pub fn with_max(max: usize) -> Self {
        Self {
            partial: Vec::new(),
            max: max.max(4),
        }
    }

    /// Appends `chunk`; returns every completed line or full piece (UTF-8 repaired lossily).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        let mut rest = chunk;
        loop {
            let newline = memchr::memchr(b'\n', rest);
            let mut segment = &rest[..newline.unwrap_or(rest.len())];
            while self.partial.len() + segment.len() > self.max {
                let room = self.max - self.partial.len();
                self.partial.extend_from_slice(&segment[..room]);
                segment = &segment[room..];
                // Never cut a character in two: an incomplete one moves to the next piece.
                let tail = self.partial.split_off(utf8_cut(&self.partial));
                self.emit(&mut out, true);
                self.partial = tail;
            }
            self.partial.extend_from_slice(segment);
            let Some(pos) = newline else { break };
            self.emit(&mut out, false);
            self.partial.clear();
            rest = &rest[pos + 1..];
        }
        out
    }

    /// Turns the partial bytes into pieces of at most `max` bytes of text: invalid
    /// bytes become U+FFFD (three bytes each), so one piece of raw bytes can need several.
    fn emit(&self, out: &mut Vec<Piece>, continued: bool) {
        let text = String::from_utf8_lossy(&self.partial);
        let mut rest: &str = &text;
        while rest.len() > self.max {
            let mut cut = self.max;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(Piece {
                text: rest[..cut].to_string(),
                continued: true,
            });
            rest = &rest[cut..];
        }
        out.push(Piece {
            text: rest.to_string(),
            continued,
        });
    }

    /// Bytes received since the last newline or piece.
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// The last line if output did not end with a newline.
    pub fn finish(&mut self) -> Option<Piece> {
        if self.partial.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Some(Piece {
            text,
            continued: false,
        })
    }
}

/// Where to cut `bytes` so that no UTF-8 sequence is split: before an incomplete
/// trailing sequence, else at the end.
fn utf8_cut(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=len.min(4) {
        let b = bytes[len - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for its lead byte
        }
        let needed = match b {
            0x00..=0x7F => 1,
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1, // invalid lead byte: nothing to keep together
        };
        return if back < needed { len - back } else { len };
    }
    len
}

/// The first failed write of a log, and what could not be stored after it.
#[derive(Debug, Clone)]
pub struct StorageFailure {
    pub error: String,
    /// Lines known to be in the file before the failure.
    pub stored_lines: u64,
    pub lost_lines: u64,
    pub lost_bytes: u64,
}

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "log storage failed: {}; {} lines ({}) after line {} were not stored",
            self.error,
            self.lost_lines,
            human_bytes(self.lost_bytes),
            self.stored_lines
        )
    }
}

/// Counters of a finished log.
#[derive(Debug, Clone, Default)]
pub struct LogSummary {
    pub lines: u64,
    pub bytes: u64,
    pub truncated: bool,
    pub failure: Option<StorageFailure>,
}

/// Appends numbered lines to a run's log file, enforcing `LOG_MAX_SIZE_MB`.
pub struct LogWriter {
    file: std::io::BufWriter<std::fs::File>,
    next_seq: u64,
    /// Highest sequence number known to be flushed to the file.
    flushed_seq: u64,
    bytes: u64,
    max_bytes: u64,
    truncated: bool,
    dropped_lines: u64,
    dropped_bytes: u64,
    failure: Option<StorageFailure>,
    /// Stop writing when the log's disk has less free space than this, so that the
    /// database can still record how the run ended (`None`: no check).
    reserve: Option<DiskReserve>,
}

/// The free space a log leaves on its disk, checked every [`RESERVE_CHECK_BYTES`].
struct DiskReserve {
    dir: std::path::PathBuf,
    bytes: u64,
    /// Log size at the last check: a log that has not grown by a check's worth
    /// since (a quiet run) is not what fills a disk, and is left alone.
    checked_at: u64,
}

/// Bytes written between two checks of the free space.
const RESERVE_CHECK_BYTES: u64 = 1 << 20;

impl LogWriter {
    /// Keeps `bytes` free on the disk of `dir`: below that the log stops as if the
    /// disk were full, while there is still room for the run's end to be recorded.
    pub fn with_disk_reserve(mut self, dir: &Path, bytes: u64) -> Self {
        if bytes > 0 {
            self.reserve = Some(DiskReserve {
                dir: dir.to_path_buf(),
                bytes,
                checked_at: self.bytes,
            });
        }
        self
    }

    /// Whether the disk has fallen below the reserve (checked now and then).
    fn below_reserve(&mut self) -> Option<std::io::Error> {
        let reserve = self.reserve.as_mut()?;
        if self.bytes.saturating_sub(reserve.checked_at) < RESERVE_CHECK_BYTES {
            return None;
        }
        reserve.checked_at = self.bytes;
        let free = crate::readiness::free_bytes(&reserve.dir).ok()?;
        (free < reserve.bytes).then(|| {
            std::io::Error::other(format!(
                "the disk of {} is nearly full ({} free, less than the {} kept free so the run's end can be recorded; MIN_FREE_DISK_MB)",
                reserve.dir.display(),
                human_bytes(free),
                human_bytes(reserve.bytes)
            ))
        })
    }

    /// Opens (appending) the log file; numbering continues after its last complete
    /// line. An unterminated last line (a write cut short) is removed first.
    pub fn open(path: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let (lines, complete_len) = count_complete_lines(&mut file)?;
        if complete_len < file.metadata()?.len() {
            file.set_len(complete_len)?;
        }
        // A log that reached its cap before a restart keeps its one truncation marker.
        let truncated =
            lines > 0 && super::reader::ends_truncated(&mut file, super::TRUNCATED_MARKER)?;
        Ok(Self {
            file: std::io::BufWriter::with_capacity(64 * 1024, file),
            next_seq: lines + 1,
            flushed_seq: lines,
            bytes: complete_len,
            max_bytes,
            truncated,
            dropped_lines: 0,
            dropped_bytes: 0,
            failure: None,
            reserve: None,
        })
    }

    /// The storage failure, once one happened.
    pub fn failure(&self) -> Option<&StorageFailure> {
        self.failure.as_ref()
    }

    /// Buffers one line; returns it numbered if it will be stored (`None` over the
    /// cap or after a storage failure). Call [`LogWriter::flush`] before announcing it.
    pub fn append(&mut self, stream: Stream, piece: Piece) -> Option<LogLine> {
        self.append_at(stream, piece, Utc::now())
    }

    /// As [`LogWriter::append`], stamped `at` (the engine's time of a line read back
    /// after a restart) instead of now.
    pub fn append_at(
        &mut self,
        stream: Stream,
        piece: Piece,
        at: chrono::DateTime<Utc>,
    ) -> Option<LogLine> {
        if let Some(f) = &mut self.failure {
            f.lost_lines += 1;
            f.lost_bytes += piece.text.len() as u64 + 1;
            return None;
        }
        let line = LogLine {
            seq: self.next_seq,
            // As stored (milliseconds): a live viewer sees the time a reload shows.
            ts: at.trunc_subsecs(3),
            stream,
            text: piece.text,
            continued: piece.continued,
        };
        let encoded = line.to_file_line();
        if self.truncated || self.bytes + encoded.len() as u64 > self.max_bytes {
            self.dropped_lines += 1;
            self.dropped_bytes += line.text.len() as u64 + 1;
            if !self.truncated {
                self.truncated = true;
                return self
                    .write_system(format!(
                        "{} {} reached; further output is not stored",
                        super::TRUNCATED_MARKER,
                        human_bytes(self.max_bytes)
                    ))
                    .pop();
            }
            return None;
        }
        self.write(line, &encoded)
    }

    /// Lines from Fast-Flow itself, one per line of `text`; stored even past the cap.
    pub fn write_system(&mut self, text: String) -> Vec<LogLine> {
        let mut out = Vec::new();
        for part in text.split('\n') {
            if self.failure.is_some() {
                break;
            }
            let line = LogLine {
                seq: self.next_seq,
                ts: Utc::now().trunc_subsecs(3),
                stream: Stream::System,
                text: part.trim_end_matches('\r').to_string(),
                continued: false,
            };
            let encoded = line.to_file_line();
            out.extend(self.write(line, &encoded));
        }
        out
    }

    fn write(&mut self, line: LogLine, encoded: &str) -> Option<LogLine> {
        if let Err(e) = self.file.write_all(encoded.as_bytes()) {
            self.fail(e, 1, encoded.len() as u64);
            return None;
        }
        self.bytes += encoded.len() as u64;
        self.next_seq += 1;
        Some(line)
    }

    /// Writes buffered lines to the file; `false` if storage failed (now or before).
    pub fn flush(&mut self) -> bool {
        if self.failure.is_some() {
            return false;
        }
        match self.file.flush() {
            Ok(()) => {
                self.flushed_seq = self.next_seq - 1;
                if let Some(e) = self.below_reserve() {
                    self.fail(e, 0, 0);
                    return false;
                }
                true
            }
            Err(e) => {
                self.fail(e, 0, 0);
                false
            }
        }
    }

    fn fail(&mut self, error: std::io::Error, lines: u64, bytes: u64) {
        // Lines buffered since the last successful flush may not have reached the file.
        let unflushed = self.next_seq - 1 - self.flushed_seq;
        let bytes = bytes + self.file.buffer().len() as u64;
        tracing::error!(error = %error, "writing a run log failed; the rest of its output is counted, not stored");
        self.failure = Some(StorageFailure {
            error: error.to_string(),
            stored_lines: self.flushed_seq,
            lost_lines: unflushed + lines,
            lost_bytes: bytes,
        });
    }

    /// Writes the drop count (if any), flushes and syncs; returns the counters and
    /// the lines written here (to announce).
    pub fn close(mut self) -> (LogSummary, Vec<LogLine>) {
        let marker = if self.dropped_lines > 0 {
            let text = format!(
                "[fastflow] {} more lines ({}) were dropped after the size limit",
                self.dropped_lines,
                human_bytes(self.dropped_bytes)
            );
            self.write_system(text)
        } else {
            Vec::new()
        };
        if self.flush()
            && let Err(e) = self.file.get_ref().sync_data()
        {
            self.fail(e, 0, 0);
        }
        let (mut lines, mut bytes) = (self.next_seq - 1, self.bytes);
        if let Some(failure) = &mut self.failure {
            // What reached the disk is what the file holds now: count it there.
            let counted = self
                .file
                .get_ref()
                .try_clone()
                .and_then(|mut f| count_complete_lines(&mut f));
            if let Ok((stored, complete_len)) = counted {
                // Part of the failed buffer may have reached the file after all.
                if stored >= failure.stored_lines {
                    let reached = stored - failure.stored_lines;
                    failure.lost_lines = failure.lost_lines.saturating_sub(reached);
                } else {
                    failure.lost_lines += failure.stored_lines - stored;
                }
                failure.stored_lines = stored;
                (lines, bytes) = (stored, complete_len);
            } else {
                lines = failure.stored_lines;
            }
        }
        let summary = LogSummary {
            lines,
            bytes,
            truncated: self.truncated,
            failure: self.failure.take(),
        };
        (summary, marker)
    }
}

/// Complete lines in the file and the byte length they span, counted without
/// allocating per line.
fn count_complete_lines(file: &mut std::fs::File) -> std::io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 256 * 1024];
    let (mut lines, mut offset, mut complete_len) = (0u64, 0u64, 0u64);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((lines, complete_len));
        }
        for pos in memchr::memchr_iter(b'\n', &buf[..n]) {
            lines += 1;
            complete_len = offset + pos as u64 + 1;
        }
        offset += n as u64;
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
