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

/// Which pipelines a state filter keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// Valid and enabled: it can run.
    Ready,
    Invalid,
    Disabled,
}

impl StateFilter {
    pub const ALL: [(&'static str, StateFilter); 3] = [
        ("ready", Self::Ready),
        ("invalid", Self::Invalid),
        ("disabled", Self::Disabled),
    ];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == text).map(|(_, s)| *s)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }

    fn keeps(self, p: &Pipeline) -> bool {
        match self {
            Self::Ready => p.is_valid() && p.metadata.enabled,
            Self::Invalid => !p.is_valid(),
            Self::Disabled => p.is_valid() && !p.metadata.enabled,
        }
    }
}

/// A search, lower-cased once, and optional tag and state filters; empty matches everything.
pub struct Search(String, Option<String>, Option<StateFilter>);

impl Search {
    /// `None` when `text` is longer than [`MAX_SEARCH_CHARS`].
    pub fn new(text: &str) -> Option<Self> {
        let text = text.trim();
        (text.chars().count() <= MAX_SEARCH_CHARS).then(|| Self(text.to_lowercase(), None, None))
    }

    /// Keeps only pipelines with exactly this tag.
    pub fn with_tag(mut self, tag: Option<String>) -> Self {
        self.1 = tag;
        self
    }

    pub fn with_state(mut self, state: Option<StateFilter>) -> Self {
        self.2 = state;
        self
    }

    /// Whether the name, a tag or the description contains the search, ignoring case.
    pub fn matches(&self, p: &Pipeline) -> bool {
        let has = |text: &str| text.to_lowercase().contains(&self.0);
        let text = self.0.is_empty()
            || has(&p.name)
            || p.metadata.tags.iter().any(|t| has(t))
            || p.metadata.description.as_deref().is_some_and(has);
        let tag = self
            .1
            .as_ref()
            .is_none_or(|t| p.metadata.tags.iter().any(|x| x == t));
        text && tag && self.2.is_none_or(|s| s.keeps(p))
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

/// Every tag of the snapshot's pipelines, sorted, once each.
pub fn all_tags(snapshot: &Snapshot) -> Vec<String> {
    let tags: std::collections::BTreeSet<&String> = snapshot
        .pipelines
        .values()
        .flat_map(|p| p.metadata.tags.iter())
        .collect();
    tags.into_iter().cloned().collect()
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
