//! The audit log as CSV (RFC 4180), safe to open in a spreadsheet: a field
//! that a spreadsheet would run as a formula (it starts with `=`, `+`, `-`,
//! `@`, a tab or a carriage return) is prefixed with `'`, as OWASP advises,
//! and a field with a separator any importer might split on (`,` `;` tab) is
//! quoted, so no part of it starts a cell of its own.

use crate::db::audit_log::Entry;

pub const HEADER: &str = "id,at_utc,actor,actor_id,client_addr,action,target,outcome,detail\r\n";

/// One field, quoted when it needs to be, defused when it could be a formula.
pub fn field(raw: &str) -> String {
    let defused = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_string()
    };
    if defused.contains([',', ';', '\t', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

pub fn row(e: &Entry) -> String {
    let fields = [
        e.id.to_string(),
        // A form spreadsheets read as a date and time.
        e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        e.actor.clone(),
        e.actor_id.clone().unwrap_or_default(),
        e.client_addr.clone().unwrap_or_default(),
        e.action.clone(),
        e.target.clone().unwrap_or_default(),
        e.outcome.clone(),
        e.detail.clone().unwrap_or_default(),
    ];
    let mut line = fields
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_quotes_escaped() {
        assert_eq!(
            field("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("-2+3"), "'-2+3");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("\tx"), "\"'\tx\"");
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(field("x;=cmd|' /C calc'!A0"), "\"x;=cmd|' /C calc'!A0\"");
    }
}
