//! Values written as text in `pipeline.json` and in settings: Docker-style memory
//! sizes (`"512m"`). Errors quote the value, shortened. Date-times are read in a
//! schedule's time zone by `timing::parse_instant`.

use super::fields::shown;

/// Parses Docker-style memory sizes: a number (fractions allowed) with an optional
/// unit b, k, m, g, t (optionally followed by `b`/`ib`), case-insensitive; no unit means bytes.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let quoted = shown(text);
    let s = text.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "`{quoted}` is not a memory size: expected a number with an optional unit, e.g. \"512m\", \"1g\", \"1.5g\""
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{quoted}`: `{}` is not a number", shown(number)))?;
    let multiplier: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "`{quoted}`: unknown unit `{}` (use b, k, m, g or t, e.g. \"512m\")",
                shown(other)
            ));
        }
    };
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("`{quoted}` is too large"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("1G"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5g"), Ok(3 << 29));
        assert_eq!(parse_memory("100"), Ok(100));
        assert_eq!(parse_memory("64MiB"), Ok(64 << 20));
        assert!(
            parse_memory("12 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_memory("m").is_err());
        assert!(parse_memory("1.2.3g").is_err());
    }
}
