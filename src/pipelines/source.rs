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

/// `text` with every webhook key hidden: the string value after each
/// `"webhook_key"` (found by scanning, so an invalid file is covered too) and
/// every key in `known` (the pipeline's parsed keys) wherever it appears.
pub fn without_webhook_keys(text: &str, known: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    const FIELD: &str = "\"webhook_key\"";
    while let Some(at) = rest.find(FIELD) {
        let (head, tail) = rest.split_at(at + FIELD.len());
        out.push_str(head);
        let value_start = tail
            .trim_start()
            .strip_prefix(':')
            .map(str::trim_start)
            .and_then(|v| v.strip_prefix('"'));
        let Some(value) = value_start else {
            rest = tail;
            continue;
        };
        // Up to the closing quote that is not escaped (or the end of the file).
        let mut end = value.len();
        let mut escaped = false;
        for (i, c) in value.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = i;
                    break;
                }
                _ => escaped = false,
            }
        }
        out.push_str(&tail[..tail.len() - value.len()]);
        out.push_str(HIDDEN_KEY);
        rest = &value[end..];
    }
    out.push_str(rest);
    known
        .iter()
        .filter(|k| !k.is_empty())
        .fold(out, |text, key| text.replace(key, HIDDEN_KEY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_keys_are_hidden_in_valid_and_broken_files() {
        let valid =
            r#"{"webhook_key": "k-123", "schedules": [{"id": "a", "webhook_key" : "k\"456"}]}"#;
        let shown = without_webhook_keys(valid, &[]);
        assert!(
            !shown.contains("k-123") && !shown.contains("456"),
            "{shown}"
        );
        assert_eq!(shown.matches(HIDDEN_KEY).count(), 2);
        assert!(shown.contains(r#""id": "a""#), "the rest is kept: {shown}");
        // Cut off mid-value, and a key repeated in main.py.
        let broken = r#"{"webhook_key": "unterminated"#;
        assert!(!without_webhook_keys(broken, &[]).contains("unterminated"));
        let code = "URL = 'https://x/api/webhooks/p/k-123'\n";
        assert!(!without_webhook_keys(code, &["k-123"]).contains("k-123"));
        assert_eq!(without_webhook_keys("no keys", &["", "zz"]), "no keys");
    }
}
