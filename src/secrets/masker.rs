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
    /// The matcher could not be built: every line is hidden (fail closed).
    hide_all: bool,
}

/// What a line becomes when masking is not available.
const HIDDEN_LINE: &str = "*** (line hidden: secret masking could not be set up)";

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
    fn push(out: &mut Vec<String>, form: &str) {
        if is_maskable(form) {
            out.push(form.to_string());
            out.push(form.trim().to_string());
        }
    }
    let mut out = Vec::new();
    push(&mut out, value);
    if value.contains('\n') {
        for line in value.split('\n') {
            push(&mut out, line.trim_end_matches('\r'));
        }
    }
    // A JSON document (a service-account key, say) is often printed parsed: each
    // string in it of eight characters or more is hidden on its own too.
    if value.trim_start().starts_with(['{', '['])
        && let Ok(doc) = serde_json::from_str::<serde_json::Value>(value)
    {
        let mut leaves = Vec::new();
        json_strings(&doc, &mut leaves);
        for leaf in leaves.into_iter().filter(|l| l.trim().chars().count() >= 8) {
            out.extend(forms(leaf));
        }
    }
    for escaped in [
        json_escaped(value, false),
        json_escaped(value, true),
        python_repr_inner(value, false),
        python_repr_inner(value, true),
    ] {
        if escaped != value {
            push(&mut out, &escaped);
        }
    }
    out
}

/// The string values anywhere in `doc`.
fn json_strings<'a>(doc: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match doc {
        serde_json::Value::String(s) => out.push(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
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
        match AhoCorasick::new(&patterns) {
            Ok(matcher) => Self {
                matcher: Some(matcher),
                hide_all: false,
            },
            Err(_) => Self {
                matcher: None,
                hide_all: true,
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none() && !self.hide_all
    }

    /// `text` with every secret value replaced by `***`; where matches overlap
    /// or touch, the whole stretch they cover becomes one `***`.
    pub fn mask(&self, text: &str) -> String {
        if self.hide_all {
            return HIDDEN_LINE.to_string();
        }
        let Some(m) = &self.matcher else {
            return text.to_string();
        };
        // Overlapping matches arrive in order of their end; each new one swallows
        // the merged spans it reaches, so memory stays one entry per masked
        // stretch however many matches there are.
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for hit in m.find_overlapping_iter(text) {
            let (mut start, end) = (hit.start(), hit.end());
            while let Some(&(s, e)) = spans.last() {
                if e < start {
                    break;
                }
                start = start.min(s);
                spans.pop();
            }
            spans.push((start, end));
        }
        if spans.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            out.push_str(&text[at..start]);
            out.push_str(MASK);
            at = end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Masks `text` in place; allocates only when something matched.
    pub fn mask_in_place(&self, text: &mut String) {
        if self.hide_all {
            *text = HIDDEN_LINE.to_string();
        } else if let Some(m) = &self.matcher
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
    fn strings_inside_a_json_secret_are_masked_when_printed_parsed() {
        let key = r#"{"type": "service_account", "private_key_id": "0123456789abcdef",
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\n-----END PRIVATE KEY-----\n",
            "n": 42, "short": "abc"}"#;
        let m = masker(&[key]);
        assert_eq!(m.mask("id 0123456789abcdef"), "id ***");
        assert_eq!(m.mask("MIIEvQIBADAN"), "***");
        assert_eq!(m.mask("short abc n 42"), "short abc n 42");
    }

    #[test]
    fn periodic_secrets_on_a_long_line_need_no_memory_per_match() {
        let values: Vec<String> = (4..40).map(|n| "a".repeat(n)).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let m = masker(&refs);
        let line = format!("x{}y", "a".repeat(200_000));
        assert_eq!(m.mask(&line), "x***y");
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
