//! A pipeline's source files as the UI shows them (`main.py`, `requirements.txt`,
//! the metadata file): read through `confined`, so a link out of the directory
//! is refused, and cut at a size a page can carry.

use std::path::Path;

use super::confined::PipelineDir;

/// The most of one file a page shows.
pub const MAX_SHOWN_BYTES: u64 = 256 * 1024;

/// One file for display.
pub struct SourceFile {
    pub name: String,
    /// The text (invalid UTF-8 replaced), or why it cannot be shown.
    pub text: Result<String, String>,
    /// The file was longer than [`MAX_SHOWN_BYTES`] and only its start is shown.
    pub cut: bool,
}

/// The pipeline's files that exist, in the order a reader wants them.
pub fn files(dir: &Path, metadata_file: Option<&str>) -> Vec<SourceFile> {
    let names = ["main.py", "requirements.txt"]
        .into_iter()
        .chain(metadata_file)
        .map(str::to_string);
    let opened = PipelineDir::open(dir);
    names
        .filter_map(|name| {
            let dir = match &opened {
                Ok(d) => d,
                Err(e) => {
                    return Some(SourceFile {
                        text: Err(format!("the pipeline directory cannot be opened: {e}")),
                        name,
                        cut: false,
                    });
                }
            };
            match dir.read_prefix(&name, MAX_SHOWN_BYTES) {
                Ok(None) => None,
                Ok(Some(f)) => Some(SourceFile {
                    text: Ok(String::from_utf8_lossy(&f.bytes).into_owned()),
                    cut: !f.complete,
                    name,
                }),
                Err(problem) => Some(SourceFile {
                    text: Err(problem.to_string()),
                    cut: false,
                    name,
                }),
            }
        })
        .collect()
}

/// What a webhook key is replaced with for readers who may not start runs.
pub const HIDDEN_KEY: &str = "•••• (shown to the WRITE and ADMIN roles only)";

/// `text` with every webhook key hidden: the value of each `"webhook_key"`
/// field (and of `notify`'s `"webhook"` URL) however its name is spelled (JSON escapes such as `\u005f` decoded),
/// found on the string tokens so a file that does not parse is covered too;
/// every key in `known` (the pipeline's parsed keys) wherever it appears; and, in
/// a `metadata` file whose strings cannot be told apart (an unterminated string, quotes JSON
/// does not have) that mentions a webhook, everything.
pub fn without_webhook_keys(text: &str, known: &[&str], metadata: bool) -> String {
    let strings = string_tokens(text);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    // A key whose value is not a string (an object, a list) cannot be cut out alone.
    let mut not_a_string = false;
    for (i, token) in strings.iter().enumerate() {
        let is_field_name = (token.decoded.eq_ignore_ascii_case("webhook_key")
            || token.decoded.eq_ignore_ascii_case("webhook"))
            && text[token.end..].trim_start().starts_with(':');
        if is_field_name {
            let after = text[token.end..].trim_start()[1..].trim_start();
            not_a_string |= !after.starts_with('"') && !after.starts_with("null");
        }
        let Some(value) = strings.get(i + 1).filter(|_| is_field_name) else {
            continue;
        };
        let between = &text[token.end..value.start];
        if between.trim() != ":" || value.start < copied {
            continue;
        }
        out.push_str(&text[copied..value.start]);
        out.push('"');
        out.push_str(HIDDEN_KEY);
        out.push('"');
        copied = value.end;
    }
    out.push_str(&text[copied..]);
    let out = known
        .iter()
        .filter(|k| !k.is_empty())
        .fold(out, |text, key| text.replace(key, HIDDEN_KEY));
    let unclear = strings.last().is_some_and(|t| !t.closed) || text.contains('\'') || not_a_string;
    if metadata && unclear && text.to_ascii_lowercase().contains("webhook") {
        return format!("{HIDDEN_KEY}: this file mentions a webhook key and cannot be read safely");
    }
    out
}

/// One `"…"` string of a JSON-like text: its byte span (quotes included) and value.
struct StringToken {
    start: usize,
    end: usize,
    decoded: String,
    closed: bool,
}

/// Every double-quoted string in `text`, escapes decoded (`\uXXXX` included).
fn string_tokens(text: &str) -> Vec<StringToken> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        let mut raw = String::new();
        let mut j = i + 1;
        let mut closed = false;
        while j < bytes.len() {
            match bytes[j] {
                b'"' => {
                    closed = true;
                    j += 1;
                    break;
                }
                b'\\' => {
                    raw.push_str(&text[j..(j + 2).min(text.len())]);
                    j += 2;
                }
                _ => {
                    let c = text[j..].chars().next().unwrap_or('\0');
                    raw.push(c);
                    j += c.len_utf8().max(1);
                }
            }
        }
        let end = j.min(text.len());
        let decoded = serde_json::from_str::<String>(&format!("\"{raw}\"")).unwrap_or(raw);
        tokens.push(StringToken {
            start,
            end,
            decoded,
            closed,
        });
        i = end;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_keys_are_hidden_in_valid_and_broken_files() {
        let valid =
            r#"{"webhook_key": "k-123", "schedules": [{"id": "a", "webhook_key" : "k\"456"}]}"#;
        let shown = without_webhook_keys(valid, &[], true);
        assert!(
            !shown.contains("k-123") && !shown.contains("456"),
            "{shown}"
        );
        assert_eq!(shown.matches(HIDDEN_KEY).count(), 2);
        assert!(shown.contains(r#""id": "a""#), "the rest is kept: {shown}");
        // Cut off mid-value, and a key repeated in main.py.
        let broken = r#"{"webhook_key": "unterminated"#;
        assert!(!without_webhook_keys(broken, &[], true).contains("unterminated"));
        let code = "URL = 'https://x/api/webhooks/p/k-123'\n";
        let shown = without_webhook_keys(code, &["k-123"], false);
        assert!(
            !shown.contains("k-123") && shown.starts_with("URL = 'https://x/api/webhooks/p/"),
            "{shown}"
        );
        assert_eq!(
            without_webhook_keys("no keys", &["", "zz"], true),
            "no keys"
        );
        // notify.webhook, even with `\/` escapes that the parsed URL does not match.
        let notify =
            r#"{"notify": {"webhook": "https:\/\/hooks.slack.com\/services\/T\/B\/tok3n"}}"#;
        let shown = without_webhook_keys(
            notify,
            &["https://hooks.slack.com/services/T/B/tok3n"],
            true,
        );
        assert!(!shown.contains("tok3n"), "{shown}");
        // A webhook given as an object (invalid, so not parsed) is hidden too.
        let object = r#"{"notify": {"webhook": {"url": "https://x/SECRETOBJ"}}}"#;
        assert!(!without_webhook_keys(object, &[], true).contains("SECRETOBJ"));
    }

    #[test]
    fn escaped_names_and_unreadable_files_hide_the_key_too() {
        let escaped = r#"{"webhook\u005fkey":"s3cr3t\u002dplain"}"#;
        let shown = without_webhook_keys(escaped, &[], true);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let upper = r#"{"WEBHOOK_KEY" : "k9"}"#;
        assert!(!without_webhook_keys(upper, &[], true).contains("k9"));
        let single = "{\"webhook_key\": 'BROKENKEY789', }";
        assert!(!without_webhook_keys(single, &[], true).contains("BROKENKEY789"));
        let fine = r#"{"description": "it's fine", "tags": ["a"]}"#;
        assert_eq!(
            without_webhook_keys(fine, &[], true),
            fine,
            "a file without keys is kept"
        );
    }
}
