//! Hides secret values in text a run produces: every occurrence of a value
//! (also inside other text, and where two values overlap) becomes `***` before
//! the text is stored, streamed or put into an error message. Besides the value
//! itself, the forms in which programs commonly print it are hidden too: its
//! lines (logs are stored line by line), and its escaped forms in Python's
//! `repr` and in JSON (`print(config)`, `json.dumps`, `logging` with `%r`).

use aho_corasick::AhoCorasick;

use super::SecretString;
use super::escaped_forms::{json_escaped, python_repr_inner};

/// What replaces a secret value.
pub const MASK: &str = "***";
/// Values (and lines of values) with fewer characters than this, not counting
/// surrounding white space, are not masked: `***` in place of every `42` or
/// every indent would wreck the log and hide nothing (docs/secrets.md).
pub const MIN_MASKED_CHARS: usize = 4;

/// Replaces the values it was built with; empty (a no-op) by default.
#[derive(Clone, Default)]
pub struct Masker {
    matcher: Option<AhoCorasick>,
}

/// Whether `text` is long enough to be masked on its own.
pub fn is_maskable(text: &str) -> bool {
    text.trim().chars().count() >= MIN_MASKED_CHARS
}

/// Whether some part of `value` that a log line could show alone is too short
/// to be masked: the value itself, or one of its non-blank lines.
pub fn has_unmasked_part(value: &str) -> bool {
    !value.trim().is_empty()
        && (!is_maskable(value)
            || (value.contains('\n')
                && value
                    .split('\n')
                    .any(|l| !l.trim().is_empty() && !is_maskable(l))))
}

/// Every form of `value` to hide.
fn forms(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |form: &str| {
        if is_maskable(form) {
            out.push(form.to_string());
            out.push(form.trim().to_string());
        }
    };
    push(value);
    if value.contains('\n') {
        for line in value.split('\n') {
            push(line.trim_end_matches('\r'));
        }
    }
    for escaped in [
        json_escaped(value, false),
        json_escaped(value, true),
        python_repr_inner(value, false),
        python_repr_inner(value, true),
    ] {
        if escaped != value {
            push(&escaped);
        }
    }
    out
}

impl Masker {
    /// A masker for `values`.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut patterns: Vec<String> =
            values.into_iter().flat_map(|v| forms(v.expose())).collect();
        patterns.sort_unstable();
        patterns.dedup();
        if patterns.is_empty() {
            return Self::default();
        }
        // Standard semantics, so overlapping matches are all found and merged.
        let matcher = AhoCorasick::new(&patterns).ok();
        Self { matcher }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret value replaced by `***`; where matches overlap
    /// or touch, the whole stretch they cover becomes one `***`.
    pub fn mask(&self, text: &str) -> String {
        let Some(m) = &self.matcher else {
            return text.to_string();
        };
        let mut spans: Vec<(usize, usize)> = m
            .find_overlapping_iter(text)
            .map(|hit| (hit.start(), hit.end()))
            .collect();
        if spans.is_empty() {
            return text.to_string();
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut current = spans[0];
        for &(start, end) in &spans[1..] {
            if start <= current.1 {
                current.1 = current.1.max(end);
            } else {
                out.push_str(&text[at..current.0]);
                out.push_str(MASK);
                at = current.1;
                current = (start, end);
            }
        }
        out.push_str(&text[at..current.0]);
        out.push_str(MASK);
        out.push_str(&text[current.1..]);
        out
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
        write!(f, "Masker({count} patterns, redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Masker {
        let values: Vec<SecretString> = values.iter().map(|v| SecretString::new(*v)).collect();
        Masker::new(&values)
    }

    #[test]
    fn masks_every_occurrence_also_inside_other_text() {
        let m = masker(&["hunter22", "s3cr3t-token"]);
        assert_eq!(
            m.mask("pw=hunter22;tok=xs3cr3t-tokenx hunter22"),
            "pw=***;tok=x***x ***"
        );
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn overlapping_and_nested_secrets_are_hidden_whole() {
        let m = masker(&["1234abcd", "abcd5678"]);
        assert_eq!(m.mask("x1234abcd5678y"), "x***y");
        let m = masker(&["abcd", "abcdefgh"]);
        assert_eq!(m.mask("xxabcdefghyy abcd"), "xx***yy ***");
    }

    #[test]
    fn short_values_and_blank_lines_are_not_masked_but_counted() {
        let m = masker(&["abc", "", "abcd", "  ab  "]);
        assert_eq!(m.mask("abc abcd ab"), "abc *** ab");
        assert!(masker(&["no"]).is_empty());
        assert!(has_unmasked_part("abc"));
        assert!(has_unmasked_part("ab\ncd\nef"), "every line is short");
        assert!(!has_unmasked_part("abcdef\n\nghijkl"));
        // An indented block must not turn every indent of the log into `***`.
        let m = masker(&["line one\n    \nline two"]);
        assert_eq!(m.mask("    raise"), "    raise");
        assert_eq!(m.mask("line two"), "***");
    }

    #[test]
    fn multi_line_values_are_masked_line_by_line_and_whole_when_escaped() {
        let m = masker(&["-----BEGIN KEY-----\r\nAAAABBBB\nCC\n-----END KEY-----"]);
        assert_eq!(m.mask("-----BEGIN KEY-----"), "***");
        assert_eq!(m.mask("  AAAABBBB"), "  ***");
        assert_eq!(m.mask("CC"), "CC");
        // `print(repr(key))` and `json.dumps(key)` put it on one line, escaped.
        assert_eq!(
            m.mask(r"'-----BEGIN KEY-----\r\nAAAABBBB\nCC\n-----END KEY-----'"),
            "'***'"
        );
    }

    #[test]
    fn escaped_forms_of_python_and_json_are_masked() {
        let m = masker(&["a.b*c+(d)[e]$^|\\x", "abc\rdefghij", "pässwörd→"]);
        // repr() and json.dumps() of the three values, as Python prints them.
        for printed in [
            r"{'S_REGEX': 'a.b*c+(d)[e]$^|\\x'}",
            r"{'S_CR': 'abc\rdefghij'}",
            r#"{"S_UNI": "p\u00e4ssw\u00f6rd\u2192"}"#,
            "{'S_UNI': 'pässwörd→'}",
        ] {
            let masked = m.mask(printed);
            assert!(masked.contains("***"), "{printed} -> {masked}");
            assert!(
                !masked.contains("defghij") && !masked.contains("ssw"),
                "{masked}"
            );
        }
    }

    #[test]
    fn masks_multibyte_values_and_keeps_utf8_intact() {
        let m = masker(&["pässwörd"]);
        let mut text = String::from("→pässwörd←");
        m.mask_in_place(&mut text);
        assert_eq!(text, "→***←");
    }

    #[test]
    fn debug_shows_no_value() {
        assert!(!format!("{:?}", masker(&["hunter22"])).contains("hunter22"));
    }
}
