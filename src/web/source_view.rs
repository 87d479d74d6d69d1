//! Source files highlighted on the server (syntect, class-based spans: the
//! stylesheet colours them, the Content-Security-Policy needs no inline style).
//! Text is escaped by the generator; a file too long to highlight quickly is
//! shown plain.

use std::sync::OnceLock;

use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

use crate::pipelines::source::SourceFile;

/// Files with more lines or bytes than this are shown without colours, and so is
/// a file whose highlighting takes longer than the time budget: a hostile
/// file (thousands of nested f-strings) costs seconds of CPU and tens of MiB of
/// spans otherwise, and any reader may open the source tab.
const MAX_HIGHLIGHTED_LINES: usize = 5_000;
const MAX_HIGHLIGHTED_BYTES: usize = 128 * 1024;
const HIGHLIGHT_BUDGET: std::time::Duration = std::time::Duration::from_millis(250);

/// One file ready for the page.
pub struct SourceView {
    pub name: String,
    /// Escaped HTML of the text (with highlight spans), or empty when `error` is set.
    pub html: String,
    pub error: String,
    pub cut: bool,
    pub lines: usize,
}

/// The syntaxes, loaded once with Python's and JSON's rules compiled (syntect
/// compiles a rule's regex on first use), so the time budget measures the file.
fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(|| {
        let set = SyntaxSet::load_defaults_newlines();
        let samples = [
            ("py", include_str!("../runner/runtime/sitecustomize.py")),
            ("json", "{\"a\": [1, 2.5, true, null, \"\\u005f\"]}\n"),
        ];
        for (extension, sample) in samples {
            if let Some(syntax) = set.find_syntax_by_extension(extension) {
                let mut warm = ClassedHTMLGenerator::new_with_class_style(
                    syntax,
                    &set,
                    ClassStyle::SpacedPrefixed { prefix: "hl-" },
                );
                for line in LinesWithEndings::from(sample) {
                    let _ = warm.parse_html_for_line_which_includes_newline(line);
                }
            }
        }
        set
    })
}

fn escape(text: &str) -> String {
    askama::filters::escape(text, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default()
}

/// Highlights `text` as the language its file name says (Python, JSON, plain).
pub fn highlight(name: &str, text: &str) -> String {
    let set = syntaxes();
    let extension = match name.rsplit('.').next() {
        Some("py") => "py",
        Some("json") => "json",
        _ => "",
    };
    let syntax = match set.find_syntax_by_extension(extension) {
        Some(s)
            if text.len() <= MAX_HIGHLIGHTED_BYTES
                && text.lines().count() <= MAX_HIGHLIGHTED_LINES =>
        {
            s
        }
        _ => return escape(text),
    };
    let mut generator = ClassedHTMLGenerator::new_with_class_style(
        syntax,
        set,
        ClassStyle::SpacedPrefixed { prefix: "hl-" },
    );
    let started = std::time::Instant::now();
    for line in LinesWithEndings::from(text) {
        if generator
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
            || started.elapsed() > HIGHLIGHT_BUDGET
        {
            return escape(text);
        }
    }
    generator.finalize()
}

pub fn views(files: Vec<SourceFile>) -> Vec<SourceView> {
    files
        .into_iter()
        .map(|f| match f.text {
            Ok(text) => SourceView {
                html: highlight(&f.name, &text),
                lines: text.lines().count(),
                name: f.name,
                error: String::new(),
                cut: f.cut,
            },
            Err(error) => SourceView {
                name: f.name,
                html: String::new(),
                error,
                cut: false,
                lines: 0,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::highlight;

    #[test]
    fn python_gets_classes_and_stays_escaped() {
        let html = highlight("main.py", "import os\nprint('<script>&')  # done\n");
        assert!(html.contains("hl-keyword"), "{html}");
        assert!(html.contains("hl-comment"), "{html}");
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script>"),
            "{html}"
        );
    }

    #[test]
    fn a_file_too_big_to_highlight_is_plain_and_not_much_bigger() {
        // The shape that cost seconds and 33 MB of spans per request.
        let line = "x = f\"{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}{k}{l}{m}{n}\"\n";
        let text = line.repeat(4_999);
        let html = highlight("main.py", &text);
        assert!(!html.contains("hl-"), "highlighted past the byte cap");
        assert!(
            html.len() < text.len() * 2,
            "{} bytes from {}",
            html.len(),
            text.len()
        );
    }

    #[test]
    fn unknown_kinds_are_plain_escaped_text() {
        assert_eq!(highlight("requirements.txt", "a<b\n"), "a&#60;b\n");
    }
}
