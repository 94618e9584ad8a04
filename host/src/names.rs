//! Validated identifiers used across the host.
//!
//! Each newtype is parsed once at the edge (API path, manifest, header) and
//! carries the proof of its validity inside.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a string is not a valid identifier of some kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind}: {rule}")]
pub struct InvalidName {
    /// What kind of identifier was expected.
    pub kind: &'static str,
    /// The rejected value (shortened when long).
    pub value: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

fn check(
    kind: &'static str,
    rule: &'static str,
    value: &str,
    max_len: usize,
    first: fn(char) -> bool,
    rest: fn(char) -> bool,
) -> Result<(), InvalidName> {
    let mut chars = value.chars();
    let valid = value.len() <= max_len && chars.next().is_some_and(first) && chars.all(rest);
    if valid {
        Ok(())
    } else {
        Err(InvalidName {
            kind,
            value: value.chars().take(80).collect(),
            rule,
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, $max:literal, $first:expr, $rest:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses `value`, returning an error that states the rule it breaks.
            pub fn parse(value: &str) -> Result<Self, InvalidName> {
                check($kind, $rule, value, $max, $first, $rest)?;
                Ok(Self(value.to_owned()))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn lower_alpha(c: char) -> bool {
    c.is_ascii_lowercase()
}

fn kebab(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

fn kebab_or_snake(c: char) -> bool {
    kebab(c) || c == '_'
}

fn snake(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

fn tenant_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

name_type!(
    /// A connector's name: lowercase letters, digits and `-`, starting with a letter.
    ConnectorName,
    "connector name",
    "1-63 characters of a-z, 0-9 and '-', starting with a letter",
    63,
    lower_alpha,
    kebab
);

name_type!(
    /// An operation's name: lowercase letters, digits, `-` and `_`, starting with a letter.
    OperationName,
    "operation name",
    "1-63 characters of a-z, 0-9, '-' and '_', starting with a letter",
    63,
    lower_alpha,
    kebab_or_snake
);

name_type!(
    /// A config key or secret name: `snake_case`, starting with a letter.
    SettingKey,
    "config key or secret name",
    "1-63 characters of a-z, 0-9 and '_', starting with a letter",
    63,
    lower_alpha,
    snake
);

name_type!(
    /// A tenant id: letters, digits, `-`, `_` and `.`.
    TenantId,
    "tenant id",
    "1-64 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
    64,
    tenant_char,
    tenant_char
);

impl TenantId {
    /// The tenant used when a caller names none.
    pub fn default_tenant() -> Self {
        Self("default".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_names_accept_kebab_case_and_reject_the_rest() {
        assert!(ConnectorName::parse("logistics-tracking").is_ok());
        for bad in [
            "",
            "Logistics",
            "1abc",
            "a_b",
            "a b",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(
                ConnectorName::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(ConnectorName::parse(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn the_error_names_the_kind_and_the_rule() {
        let err = SettingKey::parse("Api-Key").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "`Api-Key` is not a valid config key or secret name: 1-63 characters of a-z, 0-9 and '_', starting with a letter"
        );
    }

    #[test]
    fn tenant_ids_allow_dots_and_capitals() {
        assert!(TenantId::parse("Acme.cn-1").is_ok());
        assert!(TenantId::parse("acme corp").is_err());
    }
}
