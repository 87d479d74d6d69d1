//! Source files highlighted on the server (syntect, class-based spans: the
//! stylesheet colours them, the Content-Security-Policy needs no inline style).
//! Text is escaped by the generator; a file too long to highlight quickly is
//! shown plain.

use std::sync::OnceLock;

use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

use crate::pipelines::source::SourceFile;

/// Files with more lines than this are shown without colours.
const MAX_HIGHLIGHTED_LINES: usize = 5_000;

/// One file ready for the page.
pub struct SourceView {
    pub name: String,
    /// Escaped HTML of the text (with highlight spans), or empty when `error` is set.
    pub html: String,
    pub error: String,
    pub cut: bool,
    pub lines: usize,
}

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(SyntaxSet::load_defaults_newlines)
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
        Some(s) if text.lines().count() <= MAX_HIGHLIGHTED_LINES => s,
        _ => return escape(text),
    };
    let mut generator = ClassedHTMLGenerator::new_with_class_style(
        syntax,
        set,
        ClassStyle::SpacedPrefixed { prefix: "hl-" },
    );
    for line in LinesWithEndings::from(text) {
        if generator
            .parse_html_for_line_which_includes_newline(line)
            .is_err()
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
    fn unknown_kinds_are_plain_escaped_text() {
        assert_eq!(highlight("requirements.txt", "a<b\n"), "a&#60;b\n");
    }
}
