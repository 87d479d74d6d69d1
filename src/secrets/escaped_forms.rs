//! How Python prints a string inside other values, so the masker can find a
//! secret there too: the text between the quotes of `json.dumps(s)` (with and
//! without `ensure_ascii`) and of `repr(s)`.

use std::fmt::Write;

/// The inside of `json.dumps(value, ensure_ascii=…)`.
pub fn json_escaped(value: &str, ensure_ascii: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => push_u(&mut out, c as u32),
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u(&mut out, u32::from(*unit));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn push_u(out: &mut String, unit: u32) {
    let _ = write!(out, "\\u{unit:04x}");
}

/// The inside of `repr(value)`; `escape_single` when Python quotes it with `'`
/// (it does unless the value holds `'` and no `"`). Control characters are
/// escaped as Python does; other non-printable characters are left as they are.
pub fn python_repr_inner(value: &str, escape_single: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\'' if escape_single => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected strings as CPython 3.11 prints them (json.dumps / repr, quotes removed).
    #[test]
    fn match_what_python_prints() {
        assert_eq!(json_escaped("a\"b\\c\nd", true), r#"a\"b\\c\nd"#);
        assert_eq!(json_escaped("p\u{e4}ss\u{2192}", true), r"p\u00e4ss\u2192");
        assert_eq!(json_escaped("p\u{e4}ss", false), "p\u{e4}ss");
        assert_eq!(json_escaped("x\u{1f511}y", true), r"x\ud83d\udd11y");
        assert_eq!(json_escaped("a\u{1}\u{7f}", true), r"a\u0001\u007f");
        assert_eq!(json_escaped("a\u{1}\u{7f}", false), "a\\u0001\u{7f}");
        assert_eq!(python_repr_inner("it's\\x\r\t", true), r"it\'s\\x\r\t");
        assert_eq!(python_repr_inner("it's", false), "it's");
        assert_eq!(
            python_repr_inner("a\u{0}b\u{7f}\u{85}", true),
            r"a\x00b\x7f\x85"
        );
        assert_eq!(python_repr_inner("pässwörd→", true), "pässwörd→");
    }
}
