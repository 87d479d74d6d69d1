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
/// (it does unless the value holds `'` and no `"`). What `str.isprintable()`
/// calls non-printable is escaped as Python does, in the shortest of `\xNN`,
/// `\uNNNN`, `\UNNNNNNNN`.
pub fn python_repr_inner(value: &str, escape_single: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\'' if escape_single => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !is_python_printable(c) => {
                let code = c as u32;
                let _ = match code {
                    0..=0xff => write!(out, "\\x{code:02x}"),
                    0x100..=0xffff => write!(out, "\\u{code:04x}"),
                    _ => write!(out, "\\U{code:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out
}

/// Python's `str.isprintable()` for one character: not in the categories
/// Other (Cc, Cf, Cs, Co, Cn) or Separator (Zl, Zp, Zs), except the space.
fn is_python_printable(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    if c == ' ' {
        return true;
    }
    !matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::SpaceSeparator
    )
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
        assert_eq!(python_repr_inner("a\u{a0}b\u{ad}", true), r"a\xa0b\xad");
        assert_eq!(
            python_repr_inner("👨\u{200d}👩 \u{3000}\u{e0001}", true),
            r"👨\u200d👩 \u3000\U000e0001"
        );
    }
}
