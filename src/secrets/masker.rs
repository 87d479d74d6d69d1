//! Hides secret values in text a run produces: every occurrence of a value
//! (also inside other text) becomes `***` before the text is stored, streamed or
//! put into an error message.

use aho_corasick::{AhoCorasick, MatchKind};

use super::SecretString;

/// What replaces a secret value.
pub const MASK: &str = "***";
/// Values shorter than this are not masked: `***` in place of every `a` or `42`
/// would wreck the log and hide nothing (documented in docs/secrets.md).
pub const MIN_MASKED_CHARS: usize = 4;

/// Replaces the values it was built with; empty (a no-op) by default.
#[derive(Clone, Default)]
pub struct Masker {
    matcher: Option<AhoCorasick>,
}

impl Masker {
    /// A masker for `values`. A value that spans lines is also masked line by
    /// line, since logs are stored one line at a time (a PEM key, say). Returns
    /// the masker and how many values were too short to mask.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a SecretString>) -> (Self, usize) {
        let mut patterns: Vec<&str> = Vec::new();
        let mut too_short = 0;
        for value in values {
            let value = value.expose();
            if value.chars().count() < MIN_MASKED_CHARS {
                too_short += usize::from(!value.is_empty());
                continue;
            }
            patterns.push(value);
            if value.contains('\n') {
                patterns.extend(
                    value
                        .split('\n')
                        .map(|l| l.trim_end_matches('\r'))
                        .filter(|l| l.chars().count() >= MIN_MASKED_CHARS),
                );
            }
        }
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return (Self::default(), too_short);
        }
        // Longest first where matches overlap: a secret that contains another is
        // hidden whole, not as `***` plus the rest of it.
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .ok();
        (Self { matcher }, too_short)
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret value replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        match &self.matcher {
            Some(m) => m.replace_all(text, &vec![MASK; m.patterns_len()]),
            None => text.to_string(),
        }
    }

    /// Masks `text` in place; allocates only when something matched.
    pub fn mask_in_place(&self, text: &mut String) {
        if let Some(m) = &self.matcher
            && m.is_match(text.as_str())
        {
            *text = self.mask(text);
        }
    }
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.matcher.as_ref().map_or(0, |m| m.patterns_len());
        write!(f, "Masker({count} values, redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> (Masker, usize) {
        let values: Vec<SecretString> = values.iter().map(|v| SecretString::new(*v)).collect();
        Masker::new(&values)
    }

    #[test]
    fn masks_every_occurrence_also_inside_other_text() {
        let (m, short) = masker(&["hunter22", "s3cr3t-token"]);
        assert_eq!(short, 0);
        assert_eq!(
            m.mask("pw=hunter22;tok=xs3cr3t-tokenx hunter22"),
            "pw=***;tok=x***x ***"
        );
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn longest_secret_wins_where_two_overlap() {
        let (m, _) = masker(&["abcd", "abcdefgh"]);
        assert_eq!(m.mask("xxabcdefghyy abcd"), "xx***yy ***");
    }

    #[test]
    fn short_values_are_counted_not_masked() {
        let (m, short) = masker(&["abc", "", "abcd"]);
        assert_eq!(short, 1);
        assert_eq!(m.mask("abc abcd"), "abc ***");
        let (m, short) = masker(&["no"]);
        assert!(m.is_empty());
        assert_eq!(short, 1);
        assert_eq!(m.mask("no no"), "no no");
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line() {
        let (m, _) = masker(&["-----BEGIN KEY-----\r\nAAAABBBB\nCC\n-----END KEY-----"]);
        assert_eq!(m.mask("-----BEGIN KEY-----"), "***");
        assert_eq!(m.mask("  AAAABBBB"), "  ***");
        // A line under four characters stays (it is not a secret on its own).
        assert_eq!(m.mask("CC"), "CC");
    }

    #[test]
    fn masks_multibyte_values_and_keeps_utf8_intact() {
        let (m, _) = masker(&["pässwörd"]);
        let mut text = String::from("→pässwörd←");
        m.mask_in_place(&mut text);
        assert_eq!(text, "→***←");
    }

    #[test]
    fn debug_shows_no_value() {
        let (m, _) = masker(&["hunter22"]);
        assert!(!format!("{m:?}").contains("hunter22"));
    }
}
