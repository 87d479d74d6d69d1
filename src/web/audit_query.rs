//! The audit log's filters as a query string reads them (shared by
//! `GET /api/audit`, its CSV export and the Audit page), each checked with a
//! clear error: `actor`, `action` (a prefix ending in `.` matches a family),
//! `outcome`, `since` / `until` (RFC 3339 or `YYYY-MM-DD`), `before` (an entry
//! id: the next page) and `limit` (1–500, default 50).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::AppError;
use crate::db::audit_log::Filter;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

fn when(field: &str, raw: &str, end_of_day: bool) -> Result<DateTime<Utc>, AppError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        AppError::BadRequest(format!(
            "`{field}`: {:?} is not a date (YYYY-MM-DD) or an RFC 3339 time",
            crate::pipelines::fields::shown(raw)
        ))
    })?;
    // `until=2026-12-04` includes that whole day.
    let day = if end_of_day {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// The filter and the page size a query asks for.
pub fn parse(q: &HashMap<String, String>) -> Result<(Filter, i64), AppError> {
    let text = |k: &str| {
        q.get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(200).collect::<String>())
    };
    let mut f = Filter {
        actor: text("actor"),
        action: text("action"),
        outcome: text("outcome"),
        ..Filter::default()
    };
    if let Some(o) = &f.outcome
        && !matches!(o.as_str(), "ok" | "denied" | "failed")
    {
        return Err(AppError::BadRequest(
            "`outcome`: one of ok, denied, failed".into(),
        ));
    }
    if let Some(s) = text("since") {
        f.since = Some(when("since", &s, false)?);
    }
    if let Some(u) = text("until") {
        f.until = Some(when("until", &u, true)?);
    }
    if let Some(b) = text("before") {
        f.before_id =
            Some(b.parse().map_err(|_| {
                AppError::BadRequest("`before`: an entry id (a whole number)".into())
            })?);
    }
    let limit = match text("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(AppError::BadRequest(format!(
                    "`limit`: a whole number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    Ok((f, limit))
}

/// The query string of a filter (for links to the next page and the export).
pub fn query_string(q: &HashMap<String, String>, drop: &[&str]) -> String {
    let mut pairs: Vec<(&String, &String)> = q
        .iter()
        .filter(|(k, v)| !v.is_empty() && !drop.contains(&k.as_str()))
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "actor" | "action" | "outcome" | "since" | "until" | "limit"
            )
        })
        .collect();
    pairs.sort();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_are_read_and_bad_ones_named() {
        let (f, limit) = parse(&q(&[
            ("action", "login."),
            ("until", "2026-12-04"),
            ("limit", "10"),
        ]))
        .unwrap();
        assert_eq!(f.action.as_deref(), Some("login."));
        assert_eq!(limit, 10);
        assert_eq!(
            f.until.unwrap().to_rfc3339(),
            "2026-12-05T00:00:00+00:00",
            "the whole day"
        );
        for (k, v, named) in [
            ("limit", "0", "`limit`"),
            ("limit", "501", "`limit`"),
            ("before", "x", "`before`"),
            ("outcome", "maybe", "`outcome`"),
            ("since", "last week", "`since`"),
        ] {
            let e = parse(&q(&[(k, v)])).unwrap_err();
            assert!(e.message().contains(named), "{k}={v}: {}", e.message());
        }
        assert_eq!(parse(&q(&[])).unwrap().1, DEFAULT_LIMIT);
    }

    #[test]
    fn the_query_string_keeps_only_filters() {
        let s = query_string(
            &q(&[
                ("actor", "a b"),
                ("before", "9"),
                ("evil", "x"),
                ("limit", "5"),
            ]),
            &["limit"],
        );
        assert_eq!(s, "actor=a+b");
    }
}
