//! How a stored log line reads in the browser. ANSI colour and style codes
//! (SGR) become `<span class="a-…">`, every other escape or control sequence is
//! dropped (the `vte` parser decides what a sequence is), and all text is
//! HTML-escaped. Lines that read like an error are marked, so stderr that only
//! informs (uv's "Resolved 3 packages") does not look like a failure.

use std::fmt::Write;

use crate::runner::logs::{LogLine, Stream};

/// One line, ready for `fragments/log_lines.html`.
pub struct LineView {
    pub seq: u64,
    pub time: String,
    /// `out`, `err` or `sys`, plus `bad` when the line reads like an error.
    pub class: String,
    /// Escaped text with style spans.
    pub html: String,
}

impl LineView {
    pub fn new(line: &LogLine) -> Self {
        let text = plain_and_html(&line.text);
        let mut class = line.stream.css_class().to_string();
        if line.stream != Stream::Stdout && reads_like_an_error(&text.0) {
            class.push_str(" bad");
        }
        Self {
            seq: line.seq,
            time: line.ts.format("%H:%M:%S%.3f").to_string(),
            class,
            html: text.1,
        }
    }
}

/// Words that, at the start of a line or after a log level position, mean a
/// failure. Checked on stderr and Fast-Flow's own lines only.
fn reads_like_an_error(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with("Traceback (most recent call last)") {
        return true;
    }
    // `ValueError: …`, `requests.exceptions.HTTPError: …`, `error: …` (uv, pip).
    let head = t.split(':').next().unwrap_or("");
    if !head.contains(' ') && head.len() < 120 {
        let last = head.rsplit('.').next().unwrap_or(head);
        let lower = last.to_ascii_lowercase();
        if lower == "error" || last.ends_with("Error") || last.ends_with("Exception") {
            return t.len() > head.len();
        }
    }
    // Logging formats: `2026-12-04 10:00:00 ERROR …`, `[CRITICAL] …`, `- ERROR -`.
    t.split(|c: char| c.is_whitespace() || "[]|-:".contains(c))
        .filter(|w| !w.is_empty())
        .take(10)
        .any(|w| matches!(w, "ERROR" | "CRITICAL" | "FATAL"))
}

/// The text without escape sequences, and its HTML with style spans.
fn plain_and_html(text: &str) -> (String, String) {
    let mut out = Styled::default();
    if !text.contains('\u{1b}') && !text.contains('\u{9b}') {
        // The common case: no sequences, only escaping.
        for c in text.chars() {
            out.print_plain(c);
        }
        return (out.plain, out.html);
    }
    vte::Parser::new().advance(&mut out, text.as_bytes());
    out.close();
    (out.plain, out.html)
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
struct Style {
    /// 0–15: the 16 terminal colours.
    fg: Option<u8>,
    bg: Option<u8>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

impl Style {
    fn classes(&self) -> String {
        let mut c = Vec::new();
        if let Some(fg) = self.fg {
            c.push(format!("a-f{fg}"));
        }
        if let Some(bg) = self.bg {
            c.push(format!("a-g{bg}"));
        }
        for (on, name) in [
            (self.bold, "a-b"),
            (self.dim, "a-d"),
            (self.italic, "a-i"),
            (self.underline, "a-u"),
        ] {
            if on {
                c.push(name.to_string());
            }
        }
        c.join(" ")
    }

    /// One SGR parameter (with its sub-parameters, e.g. `38:5:196`), and the
    /// rest for the `38;5;n` form.
    fn apply(&mut self, params: &mut dyn Iterator<Item = &[u16]>) {
        while let Some(param) = params.next() {
            let code = param.first().copied().unwrap_or(0);
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => (self.bold, self.dim) = (false, false),
                23 => self.italic = false,
                24 => self.underline = false,
                30..=37 => self.fg = Some((code - 30) as u8),
                90..=97 => self.fg = Some((code - 90 + 8) as u8),
                39 => self.fg = None,
                40..=47 => self.bg = Some((code - 40) as u8),
                100..=107 => self.bg = Some((code - 100 + 8) as u8),
                49 => self.bg = None,
                38 | 48 => {
                    // 256 colours (`5;n`): the first 16 map to classes, the rest are
                    // left out; true colour (`2;r;g;b`) would need inline styles,
                    // which the CSP forbids, and is left out too.
                    let rest: Vec<u16> = if param.len() > 1 {
                        param[1..].to_vec()
                    } else {
                        match params.next().and_then(|p| p.first().copied()) {
                            Some(5) => params.next().map(|p| p.to_vec()).unwrap_or_default(),
                            Some(2) => {
                                params.next();
                                params.next();
                                params.next();
                                Vec::new()
                            }
                            _ => Vec::new(),
                        }
                    };
                    let colour = match rest.as_slice() {
                        [5, n, ..] | [n] if *n < 16 => Some(*n as u8),
                        _ => None,
                    };
                    if code == 38 {
                        self.fg = colour;
                    } else {
                        self.bg = colour;
                    }
                }
                _ => {}
            }
        }
    }
}

#[derive(Default)]
struct Styled {
    plain: String,
    html: String,
    style: Style,
    /// The style of the open span, if one is open.
    open: Option<Style>,
}

impl Styled {
    fn print_plain(&mut self, c: char) {
        self.plain.push(c);
        match c {
            '<' => self.html.push_str("&lt;"),
            '>' => self.html.push_str("&gt;"),
            '&' => self.html.push_str("&amp;"),
            '"' => self.html.push_str("&quot;"),
            '\'' => self.html.push_str("&#39;"),
            c if c.is_control() && c != '\t' => {}
            c => self.html.push(c),
        }
    }

    fn close(&mut self) {
        if self.open.take().is_some() {
            self.html.push_str("</span>");
        }
    }
}

impl vte::Perform for Styled {
    fn print(&mut self, c: char) {
        if self.open != Some(self.style) {
            self.close();
            if self.style != Style::default() {
                let _ = write!(self.html, r#"<span class="{}">"#, self.style.classes());
                self.open = Some(self.style);
            }
        }
        self.print_plain(c);
    }

    fn execute(&mut self, byte: u8) {
        if byte == b'\t' {
            self.print('\t');
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, _: &[u8], ignore: bool, action: char) {
        if action == 'm' && !ignore {
            self.style.apply(&mut params.iter());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(text: &str) -> String {
        plain_and_html(text).1
    }

    #[test]
    fn colours_become_classes_and_text_is_escaped() {
        assert_eq!(
            html("\u{1b}[31mfailed <b>\u{1b}[0m ok"),
            r#"<span class="a-f1">failed &lt;b&gt;</span> ok"#
        );
        assert_eq!(
            html("\u{1b}[1;92mPASS\u{1b}[22m!"),
            r#"<span class="a-f10 a-b">PASS</span><span class="a-f10">!</span>"#
        );
        assert_eq!(
            html("\u{1b}[38;5;4mblue\u{1b}[39m"),
            r#"<span class="a-f4">blue</span>"#
        );
        assert_eq!(html("\u{1b}[38;2;1;2;3mtrue"), "true");
    }

    #[test]
    fn hostile_sequences_leave_only_escaped_text() {
        // A hyperlink (OSC 8), a title change, cursor moves, an unterminated CSI,
        // a bell and a quote that would close an attribute.
        let text = "\u{1b}]8;;javascript:alert(1)\u{7}click\u{1b}]8;;\u{7} \u{1b}]0;title\u{7}\u{1b}[2J\u{1b}[10;10H\"x'\u{7}\u{1b}[";
        let out = html(text);
        assert_eq!(out, "click &quot;x&#39;");
        assert_eq!(
            html("\u{1b}[31m\"><script>"),
            r#"<span class="a-f1">&quot;&gt;&lt;script&gt;</span>"#
        );
        // Thousands of parameters are ignored, not a panic.
        let many = format!("\u{1b}[{}mX", "1;".repeat(5000));
        assert_eq!(html(&many), "X");
    }

    #[test]
    fn errors_are_told_from_information() {
        for line in [
            "Traceback (most recent call last):",
            "ValueError: bad input",
            "requests.exceptions.HTTPError: 500",
            "error: Failed to prepare distributions",
            "2026-12-04 10:00:00,123 ERROR main: boom",
            "[CRITICAL] disk full",
        ] {
            assert!(reads_like_an_error(line), "{line}");
        }
        for line in [
            "Resolved 3 packages in 12ms",
            "Installed 1 package in 4ms",
            " + requests==2.32.3",
            "WARNING: low memory",
            "errors were expected and handled: none",
            "Error",
        ] {
            assert!(!reads_like_an_error(line), "{line}");
        }
    }
}
