//! Which pipelines a list shows: a search over names, tags and descriptions, and
//! one page of the name-sorted result. Shared by the pipelines page and
//! `GET /api/pipelines`, so both cost the same with 5 000 pipelines as with 100.

use std::sync::Arc;

use crate::pipelines::{Pipeline, Snapshot};

/// Pipelines per page of the list page.
pub const PAGE_SIZE: usize = 100;
/// Longest search accepted, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// One page of matching pipelines.
pub struct Selection {
    pub pipelines: Vec<Arc<Pipeline>>,
    /// How many pipelines match the search (all pages).
    pub matching: usize,
}

/// A search, lower-cased once; empty matches everything.
pub struct Search(String);

impl Search {
    /// `None` when `text` is longer than [`MAX_SEARCH_CHARS`].
    pub fn new(text: &str) -> Option<Self> {
        let text = text.trim();
        (text.chars().count() <= MAX_SEARCH_CHARS).then(|| Self(text.to_lowercase()))
    }

    /// Whether the name, a tag or the description contains the search, ignoring case.
    pub fn matches(&self, p: &Pipeline) -> bool {
        let has = |text: &str| text.to_lowercase().contains(&self.0);
        self.0.is_empty()
            || has(&p.name)
            || p.metadata.tags.iter().any(|t| has(t))
            || p.metadata.description.as_deref().is_some_and(has)
    }
}

/// The pipelines matching `search`, in name order, from `offset`, at most `limit`.
pub fn select(snapshot: &Snapshot, search: &Search, offset: usize, limit: usize) -> Selection {
    let mut matching = 0;
    let mut pipelines = Vec::with_capacity(limit.min(snapshot.pipelines.len()));
    for p in snapshot.pipelines.values().filter(|p| search.matches(p)) {
        if matching >= offset && pipelines.len() < limit {
            pipelines.push(Arc::clone(p));
        }
        matching += 1;
    }
    Selection {
        pipelines,
        matching,
    }
}

/// Pages needed for `matching` pipelines (at least one, shown empty).
pub fn page_count(matching: usize) -> usize {
    matching.div_ceil(PAGE_SIZE).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_refuses_overlong_text_and_ignores_case_and_blanks() {
        assert!(Search::new(&"x".repeat(MAX_SEARCH_CHARS)).is_some());
        assert!(Search::new(&"x".repeat(MAX_SEARCH_CHARS + 1)).is_none());
        assert!(Search::new("  ").is_some_and(|s| s.0.is_empty()));
        assert_eq!(Search::new(" ETL ").map(|s| s.0), Some("etl".into()));
        assert_eq!(page_count(0), 1);
        assert_eq!(page_count(100), 1);
        assert_eq!(page_count(101), 2);
    }
}
