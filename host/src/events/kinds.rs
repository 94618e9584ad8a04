//! Event kinds and the patterns that select them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest event kind, in bytes.
pub const MAX_KIND_BYTES: usize = 128;

/// Whether `kind` is 1–128 ASCII letters, digits, `.`, `_` and `-`.
pub fn is_valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_KIND_BYTES
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Selects event kinds: `*` (every kind), `call.*` (`call.` and below) or an exact kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindPattern {
    /// Every kind.
    Any,
    /// Kinds starting with this prefix, which ends in `.`.
    Prefix(String),
    /// Exactly this kind.
    Exact(String),
}

impl KindPattern {
    /// Parses `*`, `prefix.*` or an exact kind.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let (kind, pattern): (&str, fn(String) -> Self) = match text.strip_suffix(".*") {
            Some(prefix) => (prefix, |p| Self::Prefix(format!("{p}."))),
            None => (text, Self::Exact),
        };
        if is_valid_kind(kind) {
            Ok(pattern(kind.to_owned()))
        } else {
            Err(format!(
                "`{text}` is not an event kind pattern: use `*`, `prefix.*` or a kind of ASCII letters, digits, `.`, `_` and `-`"
            ))
        }
    }

    /// Whether `kind` is selected.
    pub fn matches(&self, kind: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(prefix) => kind.starts_with(prefix.as_str()),
            Self::Exact(exact) => kind == exact,
        }
    }
}

/// Whether any of `patterns` selects `kind`.
pub fn any_matches(patterns: &[KindPattern], kind: &str) -> bool {
    patterns.iter().any(|p| p.matches(kind))
}

impl fmt::Display for KindPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("*"),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
            Self::Exact(kind) => f.write_str(kind),
        }
    }
}

impl Serialize for KindPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KindPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_select_every_kind_a_family_or_one_kind() {
        let any = KindPattern::parse("*").expect("any");
        let calls = KindPattern::parse("call.*").expect("prefix");
        let answered = KindPattern::parse("call.answered").expect("exact");
        assert!(any.matches("x"));
        assert!(calls.matches("call.answered") && !calls.matches("callback.done"));
        assert!(answered.matches("call.answered") && !answered.matches("call.answered.late"));
        assert_eq!(calls.to_string(), "call.*");
        for bad in ["", "call.**", "call answered", ".*x"] {
            assert!(KindPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
