//! Operator-provided settings and secrets of this connector.
//!
//! Only keys the manifest declares (`capabilities.config`, `capabilities.secrets`)
//! are visible; defaults come from the manifest's `config_defaults`.

use crate::Error;
use crate::host;

/// The value of the configuration key `key`, if set.
pub fn get(key: &str) -> Option<String> {
    host::config_get(key)
}

/// The value of the secret `name`, if set. Never log it or put it in an error.
pub fn secret(name: &str) -> Option<String> {
    host::config_secret(name)
}

/// The value of the configuration key `key`; fails with `config_missing` when it
/// is unset or empty.
pub fn require(key: &str) -> Result<String, Error> {
    get(key).filter(|value| !value.is_empty()).ok_or_else(|| {
        Error::new(
            "config_missing",
            format!("configuration key `{key}` is not set"),
        )
    })
}

/// The value of the secret `name`; fails with `secret_missing` when it is unset
/// or empty. The error names the secret, never a value.
pub fn require_secret(name: &str) -> Result<String, Error> {
    secret(name)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Error::new("secret_missing", format!("secret `{name}` is not set")))
}
