//! The three roles of Fast-Flow, ordered: `READONLY` < `WRITE` < `ADMIN`.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Reads everything a user may see; changes nothing.
    Readonly,
    /// Also starts, cancels and retries runs and changes pipelines' settings.
    Write,
    /// Also manages users, secrets and the server's settings.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Readonly => "READONLY",
            Self::Write => "WRITE",
            Self::Admin => "ADMIN",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of `readonly`, `write`, `admin` (any case).
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a role: use readonly, write or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "READONLY" | "READ" => Ok(Self::Readonly),
            "WRITE" => Ok(Self::Write),
            "ADMIN" => Ok(Self::Admin),
            _ => Err(UnknownRole(crate::pipelines::fields::shown(s))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_in_any_case_and_are_ordered() {
        assert_eq!("admin".parse::<Role>().ok(), Some(Role::Admin));
        assert_eq!("ReadOnly".parse::<Role>().ok(), Some(Role::Readonly));
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Readonly < Role::Write && Role::Write < Role::Admin);
        assert_eq!(Role::Write.to_string(), "WRITE");
    }
}
