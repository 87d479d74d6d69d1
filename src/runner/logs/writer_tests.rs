//! Tests of the log writer: line splitting, numbering, caps, reopening, storage failures.

use super::*;
use crate::runner::logs::LogCursor;

fn texts(pieces: &[Piece]) -> Vec<(&str, bool)> {
    pieces
        .iter()
        .map(|p| (p.text.as_str(), p.continued))
        .collect()
}

#[test]
fn splitter_keeps_partials_and_repairs_utf8() {
    let mut s = LineSplitter::default();
    assert_eq!(texts(&s.push(b"hello\nwor")), [("hello", false)]);
    assert_eq!(
        texts(&s.push(b"ld\n\n\xff\xfeok\npart")),
        [("world", false), ("", false), ("\u{fffd}\u{fffd}ok", false)]
    );
    let snow = "☃".as_bytes();
    assert!(s.push(&snow[..1]).is_empty());
    assert_eq!(
        texts(&s.push(&[&snow[1..], b"\n"].concat())),
        [("part☃", false)]
    );
    assert!(s.push(b"tail").is_empty());
    assert_eq!(s.finish().unwrap().text, "tail");
    assert_eq!(s.finish(), None);
}

#[test]
fn long_lines_are_cut_into_pieces_without_splitting_characters() {
    let mut s = LineSplitter::with_max(8);
    let pieces = s.push("abcdefghijklmnopqrst\n".as_bytes());
    assert_eq!(
        texts(&pieces),
        [("abcdefgh", true), ("ijklmnop", true), ("qrst", false)]
    );
    // A 3-byte character straddling the cut moves to the next piece whole.
    let pieces = s.push("abcdefg☃xyz".as_bytes());
    assert_eq!(texts(&pieces), [("abcdefg", true)]);
    assert_eq!(s.partial(), "☃xyz".as_bytes());
    // Memory stays bounded however much arrives without a newline.
    for _ in 0..1000 {
        s.push(&[b'x'; 1000]);
        assert!(s.partial().len() <= 8);
    }
}

#[test]
fn invalid_bytes_never_make_a_piece_longer_than_the_cap() {
    let mut s = LineSplitter::with_max(8);
    let pieces = s.push(&[0xff; 20]);
    assert!(pieces.iter().all(|p| p.text.len() <= 8), "{pieces:?}");
    let total: usize = pieces.iter().map(|p| p.text.chars().count()).sum();
    assert_eq!(total, 16, "the 16 bytes cut so far, each kept as U+FFFD");
    assert!(pieces.iter().all(|p| p.continued));
}

#[test]
fn writer_numbers_lines_caps_and_continues_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.log");
    let piece = |t: &str| Piece {
        text: t.into(),
        continued: false,
    };
    let mut w = LogWriter::open(&path, 1 << 20).unwrap();
    w.append(Stream::Stdout, piece("one")).unwrap();
    w.append(Stream::Stderr, piece("two  spaces")).unwrap();
    assert_eq!(w.write_system("a\nb".into()).len(), 2);
    let (summary, _) = w.close();
    assert_eq!(summary.lines, 4);
    // A write cut short leaves a partial line: reopening drops it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"2026-11-27T04:03:14.123Z out half")
        .unwrap();
    let mut w = LogWriter::open(&path, 1 << 20).unwrap();
    assert_eq!(w.append(Stream::Stdout, piece("five")).unwrap().seq, 5);
    w.close();
    let lines = LogCursor::open(&path, 0)
        .unwrap()
        .read(100, 1 << 20)
        .unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["one", "two  spaces", "a", "b", "five"]);

    let mut w = LogWriter::open(&dir.path().join("c.log"), 200).unwrap();
    let stored = (0..100)
        .filter(|i| {
            w.append(Stream::Stdout, piece(&format!("line {i}")))
                .is_some()
        })
        .count();
    let (summary, marker) = w.close();
    assert!(summary.truncated && stored < 100);
    assert!(marker[0].text.contains("more lines"));
}

#[test]
fn a_disk_below_the_reserve_stops_the_log_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.log");
    // No disk has u64::MAX bytes free: the first check fails.
    let mut w = LogWriter::open(&path, u64::MAX)
        .unwrap()
        .with_disk_reserve(dir.path(), u64::MAX);
    let line = "x".repeat(1000);
    let mut stored = 0u64;
    for _ in 0..6000 {
        let piece = Piece {
            text: line.clone(),
            continued: false,
        };
        if w.append(Stream::Stdout, piece).is_some() && w.flush() {
            stored += 1;
        }
    }
    let failure = w.failure().cloned().expect("stopped at the reserve");
    assert!(failure.error.contains("nearly full"), "{}", failure.error);
    assert!(stored > 1000 && stored < 6000, "{stored}");
    assert_eq!(
        failure.stored_lines + failure.lost_lines,
        6000,
        "{failure:?}"
    );
}

#[test]
fn an_announced_line_carries_the_time_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.log");
    let mut w = LogWriter::open(&path, 1 << 20).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-04T01:02:03.123456789Z")
        .unwrap()
        .with_timezone(&Utc);
    let piece = Piece {
        text: "x".into(),
        continued: false,
    };
    let live = w.append_at(Stream::Stdout, piece, at).unwrap();
    let system = w.write_system("note".into()).pop().unwrap();
    w.close();
    let stored = LogCursor::open(&path, 0)
        .unwrap()
        .read(10, 1 << 20)
        .unwrap();
    assert_eq!(live.ts, stored[0].ts, "the live stream and a reload agree");
    assert_eq!(system.ts, stored[1].ts);
}
