//! Framed replay chunks shared between viewers. Viewers that fall behind a loud
//! run read on from the file; many of them replay the same lines, so each aligned
//! chunk of lines is framed once and its bytes reused, within a memory cap. A log
//! file is append-only, so a complete chunk never changes.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex, PoisonError};

use axum::body::Bytes;

/// Lines per chunk; a replay step that starts on a chunk boundary reads one chunk.
pub const CHUNK_LINES: u64 = 2000;
/// What all cached chunks may hold together; the oldest are dropped first.
const MAX_CACHED_BYTES: usize = 16 * 1024 * 1024;

/// A complete chunk: its events and where the line after it starts.
#[derive(Clone)]
pub struct Chunk {
    pub framed: Bytes,
    pub last_seq: u64,
    pub end_offset: u64,
}

type Key = (PathBuf, usize, u64);

#[derive(Default)]
struct Cache {
    chunks: HashMap<Key, Chunk>,
    order: VecDeque<Key>,
    bytes: usize,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

/// The chunk of lines that starts with `first_seq` (if it starts a chunk) in `format`.
pub fn get(path: &std::path::Path, format: usize, first_seq: u64) -> Option<Chunk> {
    let index = chunk_index(first_seq)?;
    let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .chunks
        .get(&(path.to_path_buf(), format, index))
        .cloned()
}

/// Keeps a chunk that starts at `first_seq` and holds exactly [`CHUNK_LINES`] lines.
pub fn put(path: &std::path::Path, format: usize, first_seq: u64, chunk: Chunk) {
    let Some(index) = chunk_index(first_seq) else {
        return;
    };
    if first_seq.checked_add(CHUNK_LINES - 1) != Some(chunk.last_seq)
        || chunk.framed.len() > MAX_CACHED_BYTES / 4
    {
        return;
    }
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (path.to_path_buf(), format, index);
    cache.bytes += chunk.framed.len();
    if let Some(old) = cache.chunks.insert(key.clone(), chunk) {
        cache.bytes -= old.framed.len();
    } else {
        cache.order.push_back(key);
    }
    while cache.bytes > MAX_CACHED_BYTES {
        let Some(oldest) = cache.order.pop_front() else {
            break;
        };
        if let Some(gone) = cache.chunks.remove(&oldest) {
            cache.bytes -= gone.framed.len();
        }
    }
}

/// The chunk that `seq` starts, if it starts one (chunks begin at 1, 2001, …).
pub fn chunk_index(seq: u64) -> Option<u64> {
    let zero_based = seq.checked_sub(1)?;
    (zero_based % CHUNK_LINES == 0).then_some(zero_based / CHUNK_LINES)
}

/// How many lines a step starting at `seq` reads to end on a chunk boundary.
pub fn lines_to_boundary(seq: u64) -> u64 {
    CHUNK_LINES - seq.saturating_sub(1) % CHUNK_LINES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_align_and_only_complete_ones_are_kept() {
        assert_eq!(chunk_index(1), Some(0));
        assert_eq!(chunk_index(2001), Some(1));
        assert_eq!(chunk_index(2), None);
        assert_eq!(chunk_index(0), None);
        assert_eq!(lines_to_boundary(1), 2000);
        assert_eq!(lines_to_boundary(1999), 2);
        let path = std::path::Path::new("/nonexistent/replay-cache-test.log");
        let chunk = |last_seq| Chunk {
            framed: Bytes::from_static(b"data: x\n\n"),
            last_seq,
            end_offset: 10,
        };
        put(path, 0, 1, chunk(1500));
        assert!(get(path, 0, 1).is_none(), "a partial chunk is not kept");
        put(path, 0, 1, chunk(2000));
        assert_eq!(get(path, 0, 1).map(|c| c.last_seq), Some(2000));
        assert!(get(path, 1, 1).is_none(), "formats are apart");
    }
}
