//! Operator settings: config values and secrets, per connector.
//!
//! Settings belong to a connector, not to one version, so an upgrade keeps
//! them. A key may be set when any installed version declares it; every
//! loaded version that declares it sees the change at once. Each change is
//! audited with its key, never its value.

use super::Registry;
use super::lifecycle::Actor;
use crate::names::{ConnectorName, SettingKey};
use crate::store::{SettingKind, blocking};

/// Why a setting could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// No such connector.
    #[error("connector `{0}` is not installed")]
    UnknownConnector(String),
    /// No installed version declares the key.
    #[error(
        "`{key}` is not a {kind} declared by any installed version of `{connector}`; declared: {declared}"
    )]
    Undeclared {
        /// The connector.
        connector: String,
        /// `config key` or `secret`.
        kind: &'static str,
        /// The key asked for.
        key: String,
        /// The keys that are declared.
        declared: String,
    },
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

impl Registry {
    /// Sets (`Some`) or clears (`None`) a config value or secret.
    pub async fn set_setting(
        &self,
        name: &str,
        kind: SettingKind,
        key: &SettingKey,
        value: Option<String>,
    ) -> Result<(), SettingError> {
        let _changing = self.changes.lock().await;
        let declared = self.declared_keys(name, kind)?;
        if !declared.iter().any(|k| k == key.as_str()) {
            return Err(SettingError::Undeclared {
                connector: name.to_owned(),
                kind: match kind {
                    SettingKind::Config => "config key",
                    SettingKind::Secret => "secret",
                },
                key: key.to_string(),
                declared: if declared.is_empty() {
                    "none".into()
                } else {
                    declared.join(", ")
                },
            });
        }
        let store = self.store.clone();
        let (connector, key_name, stored) = (name.to_owned(), key.to_string(), value.clone());
        blocking(move || match stored {
            Some(v) => store.set_setting(kind, &connector, &key_name, &v),
            None => store
                .delete_setting(kind, &connector, &key_name)
                .map(|_| ()),
        })
        .await
        .map_err(|err| SettingError::Store(err.to_string()))?;
        self.apply_setting(name, kind, key, &value);
        if let Ok(connector) = ConnectorName::parse(name) {
            let (what, verb) = match kind {
                SettingKind::Config => ("config", if value.is_some() { "set" } else { "cleared" }),
                SettingKind::Secret => ("secret", if value.is_some() { "set" } else { "cleared" }),
            };
            // The key, never the value: secrets stay out of the audit log.
            let action = format!("{what}.{verb}");
            self.audit(Actor::Api, &action, &connector, None, format!("key {key}"))
                .await;
        }
        Ok(())
    }

    /// Gives the new value to every loaded version that declares the key.
    fn apply_setting(
        &self,
        name: &str,
        kind: SettingKind,
        key: &SettingKey,
        value: &Option<String>,
    ) {
        let connectors = self.read();
        let loaded = connectors
            .get(name)
            .into_iter()
            .flat_map(|entry| entry.versions.values())
            .filter_map(|version| version.loaded.upgrade());
        for version in loaded {
            let settings = &version.grants.settings;
            match kind {
                SettingKind::Config if settings.declares_config(key) => {
                    settings.set_config(key, value.clone())
                }
                SettingKind::Secret if settings.declares_secret(key) => {
                    settings.set_secret(key, value.clone())
                }
                _ => {}
            }
        }
    }

    /// Every key of `kind` some installed version of `name` declares, sorted.
    fn declared_keys(&self, name: &str, kind: SettingKind) -> Result<Vec<String>, SettingError> {
        let connectors = self.read();
        let entry = connectors
            .get(name)
            .ok_or_else(|| SettingError::UnknownConnector(name.to_owned()))?;
        let mut keys: Vec<String> = entry
            .versions
            .values()
            .flat_map(|version| -> Vec<String> {
                match kind {
                    SettingKind::Config => version
                        .manifest
                        .config
                        .keys()
                        .map(ToString::to_string)
                        .collect(),
                    SettingKind::Secret => version
                        .manifest
                        .secrets
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                }
            })
            .collect();
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}
