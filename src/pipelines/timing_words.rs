//! A schedule in plain words: "every 15 minutes", "at 02:00 on weekdays,
//! Europe/Berlin". Common cron shapes get a sentence; anything else falls back to
//! croner's own description.

use super::timing::{Timing, Trigger};

/// The schedule as a sentence, with its time zone.
pub fn describe(timing: &Timing) -> String {
    let zone = timing.tz.name();
    match &timing.trigger {
        Trigger::Interval { seconds } => format!("every {}", duration_words(*seconds)),
        Trigger::Once { at } => format!(
            "once, at {}",
            at.with_timezone(&timing.tz).format("%Y-%m-%d %H:%M:%S %Z")
        ),
        Trigger::Cron { expr, cron } => {
            let words = cron_words(expr).unwrap_or_else(|| cron.describe());
            // Sub-hour rhythms read the same in every zone.
            if words.starts_with("every") && !words.contains(" at ") {
                words
            } else {
                format!("{words}, {zone}")
            }
        }
    }
}

/// "90 seconds" reads better as "90 seconds"; 3600 as "hour"; 7200 as "2 hours".
pub fn duration_words(seconds: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    for (size, unit) in UNITS {
        if seconds >= size && seconds % size == 0 {
            let n = seconds / size;
            return if n == 1 {
                unit.to_string()
            } else {
                format!("{n} {unit}s")
            };
        }
    }
    format!("{seconds} seconds")
}

fn cron_words(expr: &str) -> Option<String> {
    let mut fields: Vec<&str> = expr.split_whitespace().collect();
    let seconds = if fields.len() == 6 {
        fields.remove(0)
    } else {
        "0"
    };
    let [minute, hour, dom, month, dow] = fields.as_slice() else {
        return None;
    };
    let every_day = *dom == "*" && *month == "*" && matches!(*dow, "*" | "?");
    if seconds != "0" {
        if *minute == "*" && *hour == "*" && every_day {
            return match seconds {
                "*" => Some("every second".into()),
                s => Some(format!("every {}", duration_words(step(s)?))),
            };
        }
        return None;
    }
    if *hour == "*" && every_day {
        if *minute == "*" {
            return Some("every minute".into());
        }
        if let Some(n) = step(minute) {
            return Some(format!("every {}", duration_words(n * 60)));
        }
        let m: u32 = minute.parse().ok()?;
        return Some(format!("every hour at :{m:02}"));
    }
    let m: u32 = minute.parse().ok()?;
    if let Some(n) = step(hour) {
        let rhythm = format!("every {} at :{m:02}", duration_words(n * 3600));
        return Some(with_days(rhythm, dom, month, dow));
    }
    let hours: Option<Vec<u32>> = hour.split(',').map(|h| h.parse().ok()).collect();
    let times: Vec<String> = hours?.iter().map(|h| format!("{h:02}:{m:02}")).collect();
    let at = format!("at {}", join_words(&times));
    Some(with_days(at, dom, month, dow))
}

/// `*/N` → N.
fn step(field: &str) -> Option<u64> {
    field.strip_prefix("*/")?.parse().ok().filter(|n| *n > 0)
}

fn with_days(time: String, dom: &str, month: &str, dow: &str) -> String {
    let days = match (dom, dow.to_ascii_uppercase().as_str()) {
        ("*", "*" | "?") => "every day".to_string(),
        ("*", "1-5" | "MON-FRI") => "on weekdays".to_string(),
        ("*", "0,6" | "6,0" | "6-7" | "SAT,SUN" | "SUN,SAT") => "on weekends".to_string(),
        ("*", list) => match list
            .split(',')
            .map(weekday_name)
            .collect::<Option<Vec<_>>>()
        {
            Some(names) => format!("on {}", join_words(&names)),
            None => format!("on day-of-week {dow}"),
        },
        (d, "*" | "?") => match d.parse::<u32>() {
            Ok(n) => format!("on day {n} of the month"),
            Err(_) => format!("on day-of-month {d}"),
        },
        (d, _) => format!("on day-of-month {d} or day-of-week {dow}"),
    };
    if days == "every day" && time.starts_with("every") && month == "*" {
        return time;
    }
    let months = if month == "*" {
        String::new()
    } else {
        format!(" in month {month}")
    };
    format!("{time} {days}{months}")
}

fn weekday_name(field: &str) -> Option<String> {
    let name = match field {
        "0" | "7" | "SUN" => "Sunday",
        "1" | "MON" => "Monday",
        "2" | "TUE" => "Tuesday",
        "3" | "WED" => "Wednesday",
        "4" | "THU" => "Thursday",
        "5" | "FRI" => "Friday",
        "6" | "SAT" => "Saturday",
        _ => return None,
    };
    Some(name.to_string())
}

fn join_words(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
