//! `config`: operator settings and secrets a connector declared in its manifest.
//!
//! Values live in memory for fast reads and in the store for restarts; the
//! registry writes both. Secrets are also what [`Settings::redact`] scrubs from
//! every log line and error message a connector produces.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use crate::names::SettingKey;

/// Replaces a secret's value wherever it appears in connector output.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not scrubbed from text: too likely to collide.
const MIN_REDACTED_LEN: usize = 4;

/// The config and secrets of one connector.
#[derive(Debug, Default)]
pub struct Settings {
    declared_config: BTreeMap<SettingKey, Option<String>>,
    declared_secrets: Vec<SettingKey>,
    values: RwLock<Values>,
}

#[derive(Debug, Default)]
struct Values {
    config: HashMap<String, String>,
    secrets: HashMap<String, String>,
}

impl Settings {
    /// Settings for the keys a manifest declared, with their defaults.
    pub fn new(
        declared_config: BTreeMap<SettingKey, Option<String>>,
        declared_secrets: Vec<SettingKey>,
    ) -> Self {
        Self {
            declared_config,
            declared_secrets,
            values: RwLock::default(),
        }
    }

    /// Whether the manifest declared config key `key`.
    pub fn declares_config(&self, key: &SettingKey) -> bool {
        self.declared_config.contains_key(key)
    }

    /// Whether the manifest declared secret `key`.
    pub fn declares_secret(&self, key: &SettingKey) -> bool {
        self.declared_secrets.contains(key)
    }

    /// The value of a declared config key: the operator's, else the default.
    pub fn config(&self, key: &str) -> Option<String> {
        let default = self
            .declared_config
            .iter()
            .find(|(declared, _)| declared.as_str() == key)?
            .1;
        let values = self
            .values
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        values.config.get(key).cloned().or_else(|| default.clone())
    }

    /// The value of a declared secret, if set.
    pub fn secret(&self, key: &str) -> Option<String> {
        let values = self
            .values
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        values.secrets.get(key).cloned()
    }

    /// Sets (or with `None` clears) an operator config value.
    pub fn set_config(&self, key: &SettingKey, value: Option<String>) {
        let mut values = self
            .values
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match value {
            Some(v) => values.config.insert(key.to_string(), v),
            None => values.config.remove(key.as_str()),
        };
    }

    /// Sets (or with `None` clears) a secret.
    pub fn set_secret(&self, key: &SettingKey, value: Option<String>) {
        let mut values = self
            .values
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match value {
            Some(v) => values.secrets.insert(key.to_string(), v),
            None => values.secrets.remove(key.as_str()),
        };
    }

    /// Every declared config key with its effective value and whether the operator set it.
    pub fn config_view(&self) -> Vec<(String, Option<String>, bool)> {
        let values = self
            .values
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.declared_config
            .iter()
            .map(|(key, default)| match values.config.get(key.as_str()) {
                Some(v) => (key.to_string(), Some(v.clone()), true),
                None => (key.to_string(), default.clone(), false),
            })
            .collect()
    }

    /// Every declared secret name with whether it is set; never the values.
    pub fn secrets_view(&self) -> Vec<(String, bool)> {
        let values = self
            .values
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.declared_secrets
            .iter()
            .map(|key| (key.to_string(), values.secrets.contains_key(key.as_str())))
            .collect()
    }

    /// `text` with every secret value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let values = self
            .values
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        values
            .secrets
            .values()
            .filter(|secret| secret.len() >= MIN_REDACTED_LEN)
            .fold(text.to_owned(), |acc, secret| {
                if acc.contains(secret.as_str()) {
                    acc.replace(secret.as_str(), REDACTED)
                } else {
                    acc
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> SettingKey {
        SettingKey::parse(k).expect("valid key")
    }

    fn settings() -> Settings {
        Settings::new(
            [
                (key("base_url"), Some("http://default".to_owned())),
                (key("region"), None),
            ]
            .into(),
            vec![key("api_key")],
        )
    }

    #[test]
    fn operator_values_override_manifest_defaults_and_clearing_restores_them() {
        let s = settings();
        assert_eq!(s.config("base_url").as_deref(), Some("http://default"));
        s.set_config(&key("base_url"), Some("http://operator".into()));
        assert_eq!(s.config("base_url").as_deref(), Some("http://operator"));
        s.set_config(&key("base_url"), None);
        assert_eq!(s.config("base_url").as_deref(), Some("http://default"));
        assert_eq!(s.config("region"), None);
    }

    #[test]
    fn undeclared_keys_read_as_absent() {
        let s = settings();
        s.set_secret(&key("api_key"), Some("sk_live_123".into()));
        assert_eq!(s.config("api_key"), None);
        assert_eq!(s.config("other"), None);
        assert_eq!(s.secret("api_key").as_deref(), Some("sk_live_123"));
    }

    #[test]
    fn secrets_are_scrubbed_from_text_and_never_listed() {
        let s = settings();
        s.set_secret(&key("api_key"), Some("sk_live_123".into()));
        assert_eq!(
            s.redact("auth failed for sk_live_123!"),
            "auth failed for [REDACTED]!"
        );
        assert_eq!(s.secrets_view(), vec![("api_key".to_string(), true)]);
    }
}
