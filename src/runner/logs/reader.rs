//! Reading a run's log back without rescanning it: a cursor remembers its byte
//! offset, so a whole replay is one pass over the file, and a tail is one pass
//! that remembers where the last lines start. Only complete lines are read: a
//! line the writer has not finished waits for the next read. Every function here
//! does blocking file I/O: call it from `spawn_blocking`, not an async worker.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::LogLine;

const READ_BUFFER: usize = 256 * 1024;

/// A position in a run's log: the byte offset of the next unread line and its number.
pub struct LogCursor {
    path: PathBuf,
    offset: u64,
    next_seq: u64,
    /// Lines before this number are skipped (the reader has them already).
    first_wanted: u64,
}

impl LogCursor {
    /// A cursor that yields lines after line `after` (0 = from the start). A missing
    /// file reads as empty until it appears.
    pub fn open(path: &Path, after: u64) -> std::io::Result<Self> {
        let mut cursor = Self {
            path: path.to_path_buf(),
            offset: 0,
            next_seq: 1,
            first_wanted: after.saturating_add(1),
        };
        cursor.skip_unwanted()?;
        Ok(cursor)
    }

    /// Lines up to `seq` are not wanted any more (a viewer got them elsewhere);
    /// the next read skips them by counting, without parsing.
    pub fn skip_through(&mut self, seq: u64) {
        self.first_wanted = self.first_wanted.max(seq.saturating_add(1));
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the next line this cursor will return.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.max(self.first_wanted)
    }

    /// Moves past unwanted lines now; then `(next line's number, its byte offset)`,
    /// or `None` while the lines it must skip are not all written yet.
    pub fn settle(&mut self) -> std::io::Result<Option<(u64, u64)>> {
        if self.next_seq < self.first_wanted {
            self.skip_unwanted()?;
        }
        Ok((self.next_seq >= self.first_wanted).then_some((self.next_seq, self.offset)))
    }

    /// Continues at line `next_seq`, which starts at byte `offset` (a position this
    /// file had: lines are only ever appended).
    pub fn seek(&mut self, next_seq: u64, offset: u64) {
        self.next_seq = next_seq;
        self.offset = offset;
        self.first_wanted = self.first_wanted.max(next_seq);
    }

    /// Moves past lines before `first_wanted` by counting newlines, without parsing.
    fn skip_unwanted(&mut self) -> std::io::Result<()> {
        let Some(mut file) = open_existing(&self.path)? else {
            return Ok(());
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = vec![0u8; READ_BUFFER];
        // Absolute offset of `buf[0]`; `self.offset` only moves past whole lines.
        let mut at = self.offset;
        while self.next_seq < self.first_wanted {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            for pos in memchr::memchr_iter(b'\n', &buf[..n]) {
                self.next_seq += 1;
                self.offset = at + pos as u64 + 1;
                if self.next_seq >= self.first_wanted {
                    break;
                }
            }
            at += n as u64;
        }
        Ok(())
    }

    /// Up to `max_lines` complete lines (stopping early past `max_bytes`), advancing.
    pub fn read(&mut self, max_lines: usize, max_bytes: usize) -> std::io::Result<Vec<LogLine>> {
        if self.next_seq < self.first_wanted {
            self.skip_unwanted()?;
            if self.next_seq < self.first_wanted {
                return Ok(Vec::new());
            }
        }
        let Some(mut file) = open_existing(&self.path)? else {
            return Ok(Vec::new());
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut reader = BufReader::with_capacity(READ_BUFFER, file);
        let mut out = Vec::new();
        let mut raw = Vec::new();
        let mut bytes = 0usize;
        while out.len() < max_lines && bytes < max_bytes {
            raw.clear();
            let n = reader.read_until(b'\n', &mut raw)?;
            if n == 0 || raw.last() != Some(&b'\n') {
                break; // end of file, or a line still being written
            }
            out.push(LogLine::from_file_line(self.next_seq, &raw[..n - 1]));
            self.offset += n as u64;
            self.next_seq += 1;
            bytes += n;
        }
        Ok(out)
    }
}

fn open_existing(path: &Path) -> std::io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A cursor at the start of the last `n` complete lines (fewer if those would
/// span more than `max_bytes`), found in one pass over the file.
pub fn tail_cursor(path: &Path, n: usize, max_bytes: u64) -> std::io::Result<LogCursor> {
    let mut cursor = LogCursor {
        path: path.to_path_buf(),
        offset: 0,
        next_seq: 1,
        first_wanted: 1,
    };
    let Some(mut file) = open_existing(path)? else {
        return Ok(cursor);
    };
    // Offsets where each of the last `n` complete lines starts.
    let mut starts: VecDeque<u64> = VecDeque::with_capacity(n.min(100_000) + 1);
    let (mut lines, mut offset, mut line_start) = (0u64, 0u64, 0u64);
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let read = file.read(&mut buf)?;
        if read == 0 {
            break;
        }
        for pos in memchr::memchr_iter(b'\n', &buf[..read]) {
            starts.push_back(line_start);
            if starts.len() > n {
                starts.pop_front();
            }
            lines += 1;
            line_start = offset + pos as u64 + 1;
        }
        offset += read as u64;
    }
    // `line_start` is now the end of the last complete line.
    while starts.len() > 1 && starts.front().is_some_and(|s| line_start - s > max_bytes) {
        starts.pop_front();
    }
    match starts.front() {
        Some(&first) => {
            cursor.offset = first;
            cursor.next_seq = lines - starts.len() as u64 + 1;
        }
        None => {
            cursor.offset = line_start;
            cursor.next_seq = lines + 1;
        }
    }
    cursor.first_wanted = cursor.next_seq;
    Ok(cursor)
}

/// The last `n` complete lines, at most about `max_bytes` of them.
pub fn tail_lines(path: &Path, n: usize, max_bytes: u64) -> std::io::Result<Vec<LogLine>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    tail_cursor(path, n, max_bytes)?.read(n, usize::MAX)
}

/// What a stream's stored log holds, for resuming it from the engine's copy.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StoredStream {
    /// Lines that ended with a newline in the container's output.
    pub lines: u64,
    /// Pieces of a long line stored after the last complete line (it was still being written).
    pub trailing_pieces: u64,
    /// The text of the first and the last complete line, and when the last was received.
    pub first: Option<String>,
    pub last: Option<String>,
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Per stream (stdout, stderr): what a resumed run must skip in the engine's copy
/// of the output, and the lines to line it up with. Fast-Flow's own lines are not
/// counted.
pub fn stored_streams(path: &Path) -> std::io::Result<[StoredStream; 2]> {
    let mut out: [StoredStream; 2] = Default::default();
    let Some(file) = open_existing(path)? else {
        return Ok(out);
    };
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let mut raw = Vec::new();
    let mut seq = 0u64;
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 || raw.last() != Some(&b'\n') {
            return Ok(out);
        }
        seq += 1;
        let (i, continued) = match raw.get(25..29) {
            Some(b"out ") => (0, false),
            Some(b"ou~ ") => (0, true),
            Some(b"err ") => (1, false),
            Some(b"er~ ") => (1, true),
            _ => continue,
        };
        let stream = &mut out[i];
        if continued {
            stream.trailing_pieces += 1;
            continue;
        }
        stream.lines += 1;
        stream.trailing_pieces = 0;
        let line = LogLine::from_file_line(seq, &raw[..raw.len() - 1]);
        if stream.first.is_none() {
            stream.first = Some(line.text.clone());
        }
        stream.last = Some(line.text);
        stream.last_at = Some(line.ts);
    }
}

/// Whether the file's tail already has the truncation marker (a resumed writer
/// must not write it twice).
pub fn ends_truncated(file: &mut File, marker: &str) -> std::io::Result<bool> {
    const TAIL: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL)))?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail)?;
    Ok(memchr::memmem::find(&tail, marker.as_bytes()).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::logs::{LogWriter, Piece, Stream};

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.log");
        let mut w = LogWriter::open(&path, u64::MAX).unwrap();
        for i in 1..=n {
            let piece = Piece {
                text: format!("line {i}"),
                continued: false,
            };
            w.append(
                if i % 3 == 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                piece,
            );
        }
        w.close();
        (dir, path)
    }

    #[test]
    fn cursor_reads_in_batches_from_any_position() {
        let (_d, path) = log_with(10);
        let mut c = LogCursor::open(&path, 3).unwrap();
        assert_eq!(c.next_seq(), 4);
        let a = c.read(4, usize::MAX).unwrap();
        assert_eq!(a.iter().map(|l| l.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
        assert_eq!(a[0].text, "line 4");
        let b = c.read(100, usize::MAX).unwrap();
        assert_eq!(b.iter().map(|l| l.seq).collect::<Vec<_>>(), [8, 9, 10]);
        assert!(c.read(100, usize::MAX).unwrap().is_empty());
        // Beyond the end, even at u64::MAX: nothing, and no wrap-around to a full replay.
        assert!(
            LogCursor::open(&path, u64::MAX)
                .unwrap()
                .read(10, usize::MAX)
                .unwrap()
                .is_empty()
        );
        assert!(
            LogCursor::open(&path, 50)
                .unwrap()
                .read(10, usize::MAX)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_line_being_written_is_not_read_until_complete() {
        let (_d, path) = log_with(2);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"2026-11-27T04:03:14.123Z out hal").unwrap();
        let mut c = LogCursor::open(&path, 0).unwrap();
        assert_eq!(c.read(10, usize::MAX).unwrap().len(), 2);
        assert!(c.read(10, usize::MAX).unwrap().is_empty());
        f.write_all(b"f\n").unwrap();
        let rest = c.read(10, usize::MAX).unwrap();
        assert_eq!((rest[0].seq, rest[0].text.as_str()), (3, "half"));
        let mut later = LogCursor::open(&path, 2).unwrap();
        assert_eq!(later.read(10, usize::MAX).unwrap()[0].seq, 3);
    }

    #[test]
    fn tail_and_counts() {
        let (_d, path) = log_with(10);
        let t = tail_lines(&path, 3, u64::MAX).unwrap();
        assert_eq!(t.iter().map(|l| l.seq).collect::<Vec<_>>(), [8, 9, 10]);
        assert_eq!(tail_lines(&path, 50, u64::MAX).unwrap().len(), 10);
        assert!(
            tail_lines(&path.with_extension("none"), 5, u64::MAX)
                .unwrap()
                .is_empty()
        );
        // A byte budget keeps the newest lines (each stored line is about 37 bytes here).
        let small = tail_lines(&path, 10, 80).unwrap();
        assert_eq!(small.iter().map(|l| l.seq).collect::<Vec<_>>(), [9, 10]);
        let mut c = LogCursor::open(&path, 0).unwrap();
        c.skip_through(7);
        assert_eq!(c.read(1, usize::MAX).unwrap()[0].seq, 8);
        let streams = stored_streams(&path).unwrap();
        assert_eq!((streams[0].lines, streams[1].lines), (7, 3));
        assert_eq!(streams[0].first.as_deref(), Some("line 1"));
        assert_eq!(streams[0].last.as_deref(), Some("line 10"));
        assert_eq!(streams[1].last.as_deref(), Some("line 9"));
    }
}
