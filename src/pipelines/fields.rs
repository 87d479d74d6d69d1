//! Typed readers for the JSON fields of pipeline metadata. Each reader takes a
//! field out of the object, checks it, and records a precise problem on failure
//! instead of stopping, so one file reports all of its problems at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::ranges::{self, Range};
pub use super::units::parse_memory;

/// One problem (or warning) with one field of a metadata file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldIssue {
    /// The file the problem is in, when it is not the pipeline's metadata file
    /// (e.g. `requirements.txt`); `None` means the metadata file (or the directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Dotted path of the field, e.g. `retry_strategy.delay` or `tags[2]`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl FieldIssue {
    /// A problem with a whole file other than the metadata file.
    pub fn in_file(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: Some(file.to_string()),
            field: String::new(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "field `{}`: {}", self.field, self.message)
        }
    }
}

/// A memory amount as written (`"512m"`) and in bytes. Serialises as written.
#[derive(Debug, Clone, PartialEq)]
pub struct MemorySize {
    pub text: String,
    pub bytes: u64,
}

impl Serialize for MemorySize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Takes fields out of one JSON object, collecting problems under a path prefix.
pub struct FieldReader<'a> {
    object: Map<String, Value>,
    prefix: String,
    pub errors: &'a mut Vec<FieldIssue>,
}

impl<'a> FieldReader<'a> {
    pub fn new(object: Map<String, Value>, prefix: &str, errors: &'a mut Vec<FieldIssue>) -> Self {
        Self {
            object,
            prefix: prefix.to_string(),
            errors,
        }
    }

    pub fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let field = self.path(key);
        self.errors.push(FieldIssue {
            file: None,
            field,
            message: message.into(),
        });
    }

    /// The raw value of a field; `null` counts as absent.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.object.remove(key).filter(|v| !v.is_null())
    }

    /// Every key no reader consumed is an error "unknown field in `what`" (nested
    /// objects are strict; the top level only warns).
    pub fn reject_leftovers(&mut self, what: &str) {
        for field in self.leftover_keys() {
            self.errors.push(FieldIssue {
                file: None,
                field,
                message: format!("unknown field in {what}"),
            });
        }
    }

    /// Keys not consumed by any reader (reported as warnings by the caller).
    pub fn leftover_keys(&self) -> Vec<String> {
        self.object.keys().map(|k| self.path(k)).collect()
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            other => {
                self.error(key, format!("must be a string, got {}", kind(&other)));
                None
            }
        }
    }

    pub fn non_empty_string(&mut self, key: &str) -> Option<String> {
        let s = self.string(key)?;
        if s.trim().is_empty() {
            self.error(key, "must not be empty");
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, key: &str) -> Option<bool> {
        match self.take(key)? {
            Value::Bool(b) => Some(b),
            other => {
                self.error(key, format!("must be true or false, got {}", kind(&other)));
                None
            }
        }
    }

    /// A number within `range` (whole numbers and fractions alike).
    pub fn number_in(&mut self, key: &str, range: &Range<f64>) -> Option<f64> {
        let value = self.take(key)?;
        match value.as_f64() {
            Some(v) if v.is_finite() && range.contains(v) => Some(v),
            _ => {
                self.error(key, out_of_range(range, &value));
                None
            }
        }
    }

    /// A whole number within `range`; `30.0` counts as whole.
    pub fn integer_in(&mut self, key: &str, range: &Range<u64>) -> Option<u64> {
        let value = self.take(key)?;
        match whole_number(&value) {
            Some(v) if range.contains(v) => Some(v),
            _ => {
                self.error(key, out_of_range(range, &value));
                None
            }
        }
    }

    /// A memory size like `"512m"` within `range` (in bytes).
    pub fn memory(&mut self, key: &str, range: &Range<u64>) -> Option<MemorySize> {
        let value = self.take(key)?;
        let text = match &value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                self.error(
                    key,
                    format!("must be a memory size like \"512m\", got {}", kind(other)),
                );
                return None;
            }
        };
        if text.trim_start().starts_with('-') {
            self.error(key, format!("`{}`: must not be negative", shown(&text)));
            return None;
        }
        match parse_memory(&text) {
            Ok(bytes) if range.contains(bytes) => Some(MemorySize { text, bytes }),
            Ok(_) => {
                self.error(
                    key,
                    format!(
                        "`{}` is out of range: must be from {} to {}",
                        shown(&text),
                        crate::byte_size::human_bytes(range.min),
                        crate::byte_size::human_bytes(range.max)
                    ),
                );
                None
            }
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// A date or date-time bound of a schedule, read in the schedule's time zone
    /// (see [`super::timing::parse_instant`]).
    pub fn instant(
        &mut self,
        key: &str,
        tz: chrono_tz::Tz,
        edge: super::timing::DayEdge,
    ) -> Option<DateTime<Utc>> {
        let text = self.string(key)?;
        match super::timing::parse_instant(&text, tz, edge) {
            Ok(dt) => Some(dt),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// An IANA time zone name; `None` (with an error) if unknown.
    pub fn timezone(&mut self, key: &str) -> Option<chrono_tz::Tz> {
        let text = self.non_empty_string(key)?;
        match super::timing::parse_timezone(&text) {
            Ok(tz) => Some(tz),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// One of a fixed set of words, parsed by `parse`.
    pub fn policy<T>(&mut self, key: &str, parse: fn(&str) -> Result<T, String>) -> Option<T> {
        let text = self.string(key)?;
        match parse(&text) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(key, message);
                None
            }
        }
    }

    /// A list of at most `max_items` strings.
    pub fn string_list(&mut self, key: &str, max_items: usize) -> Vec<String> {
        let Some(value) = self.take(key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.error(
                key,
                format!("must be a list of strings, got {}", kind(&value)),
            );
            return Vec::new();
        };
        if !self.within(key, items.len(), max_items) {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Value::String(s) => out.push(s),
                other => self.error(
                    &format!("{key}[{i}]"),
                    format!("must be a string, got {}", kind(&other)),
                ),
            }
        }
        out
    }

    /// An object of at most `MAX_ENV_KEYS` environment variables; numbers and
    /// booleans are accepted and kept as text.
    pub fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let Some(value) = self.take(key) else {
            return BTreeMap::new();
        };
        let Value::Object(map) = value else {
            self.error(
                key,
                format!(
                    "must be an object of NAME: \"value\" pairs, got {}",
                    kind(&value)
                ),
            );
            return BTreeMap::new();
        };
        if !self.within(key, map.len(), ranges::MAX_ENV_KEYS) {
            return BTreeMap::new();
        }
        let mut out = BTreeMap::new();
        for (name, v) in map {
            if !is_env_name(&name) {
                self.error(
                    &format!("{key}.{}", shown(&name)),
                    "is not a valid environment variable name (letters, digits, `_`; not starting with a digit; at most 256 characters)",
                );
                continue;
            }
            match v {
                Value::String(s) if s.len() > ranges::MAX_ENV_VALUE_BYTES => self.error(
                    &format!("{key}.{name}"),
                    format!(
                        "is {} bytes long; at most {} are allowed",
                        s.len(),
                        ranges::MAX_ENV_VALUE_BYTES
                    ),
                ),
                // The kernel cannot pass a NUL in the environment: every run would fail.
                Value::String(s) if s.contains('\0') => {
                    self.error(&format!("{key}.{name}"), "contains a NUL character")
                }
                Value::String(s) => {
                    out.insert(name, s);
                }
                Value::Number(n) => {
                    out.insert(name, n.to_string());
                }
                Value::Bool(b) => {
                    out.insert(name, b.to_string());
                }
                other => self.error(
                    &format!("{key}.{name}"),
                    format!("must be a string, got {}", kind(&other)),
                ),
            }
        }
        out
    }

    /// Whether a list or map of `len` items is within `max` (records the error if not).
    pub fn within(&mut self, key: &str, len: usize, max: usize) -> bool {
        if len > max {
            self.error(key, format!("has {len} entries; at most {max} are allowed"));
            return false;
        }
        true
    }

    /// A nested object for a sub-reader, or `None` (with an error) if it is not an object.
    pub fn object(&mut self, key: &str) -> Option<Map<String, Value>> {
        match self.take(key)? {
            Value::Object(map) => Some(map),
            other => {
                self.error(key, format!("must be an object, got {}", kind(&other)));
                None
            }
        }
    }

    /// A list of at most `max_items` objects; non-objects are reported and skipped.
    pub fn object_list(
        &mut self,
        key: &str,
        max_items: usize,
    ) -> Vec<(String, Map<String, Value>)> {
        let Some(value) = self.take(key) else {
            return Vec::new();
        };
        let Value::Array(items) = value else {
            self.error(
                key,
                format!("must be a list of objects, got {}", kind(&value)),
            );
            return Vec::new();
        };
        if !self.within(key, items.len(), max_items) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("{key}[{i}]");
            match item {
                Value::Object(map) => out.push((self.path(&path), map)),
                other => self.error(&path, format!("must be an object, got {}", kind(&other))),
            }
        }
        out
    }
}

/// A JSON number that is a whole number >= 0 (`30.0` included), saturating at `u64::MAX`.
fn whole_number(value: &Value) -> Option<u64> {
    let Value::Number(n) = value else { return None };
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0 && *f >= 0.0)
            // `as` saturates: 1e300 becomes u64::MAX, which every range rejects.
            .map(|f| f as u64)
    })
}

/// "must be a whole number from 0 to 100 (retries), got 4294967295"
fn out_of_range<T: std::fmt::Display>(range: &Range<T>, got: &Value) -> String {
    let got = match got {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_string(),
    };
    format!(
        "must be a number from {} to {} ({}), got {got}",
        range.min, range.max, range.unit
    )
}

/// A value from the file as it appears in a message: at most 64 characters.
pub fn shown(text: &str) -> String {
    const MAX: usize = 64;
    // Control characters (NUL, ESC…) would reach a terminal or a page raw.
    let visible = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect()
    };
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", visible(&text[..end])),
        None => visible(text),
    }
}

pub fn is_env_name(name: &str) -> bool {
    if name.len() > 256 {
        return false;
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert!(is_env_name("LOG_LEVEL"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A-B"));
        assert!(!is_env_name(""));
    }
}
