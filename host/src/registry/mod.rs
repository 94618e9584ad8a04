//! Installed connectors: manifests, install and replace, removal, settings.
//!
//! The registry owns the map from connector name to the loaded version that
//! serves its calls. Installing checks everything before anything changes:
//! the manifest, the component against the world, `describe()` against the
//! manifest, every published schema. Only then is the package persisted and
//! the map entry swapped, so a call in flight finishes on the version it
//! started on and a failed install leaves the old version serving.

pub mod manifest;
pub mod plugins_dir;
pub mod schema;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use self::manifest::{Manifest, ManifestError};
use self::schema::CompiledOperation;
use crate::capabilities::{ConnectorGrants, Settings, now_ms};
use crate::model::{CallContext, ConnectorInfo};
use crate::names::{ConnectorName, SettingKey, TenantId};
use crate::runtime::call::CallError;
use crate::runtime::compile_cache::sha256_hex;
use crate::runtime::limits::{LimitCeilings, Limits};
use crate::runtime::{LoadError, Prepared, Runtime};
use crate::store::{
    ConnectorRecord, ConnectorStore, InstallSource, SettingKind, SettingsStore, StoreError,
    blocking,
};

/// A connector version ready to serve calls.
pub struct LoadedConnector {
    /// Its manifest.
    pub manifest: Manifest,
    /// What it said in `describe()`.
    pub info: ConnectorInfo,
    /// Hex SHA-256 of its component.
    pub package_hash: String,
    /// When it was installed, in milliseconds since the Unix epoch.
    pub installed_at_ms: u64,
    /// How it was installed.
    pub source: InstallSource,
    /// Its grants, shared with every call.
    pub grants: Arc<ConnectorGrants>,
    /// The pre-instantiated component.
    pub prepared: Prepared,
    operations: HashMap<String, CompiledOperation>,
}

impl LoadedConnector {
    /// The named operation, if the connector offers it.
    pub fn operation(&self, name: &str) -> Option<&CompiledOperation> {
        self.operations.get(name)
    }

    /// Operations in the order `describe()` listed them.
    pub fn operations(&self) -> impl Iterator<Item = &CompiledOperation> {
        self.info
            .operations
            .iter()
            .filter_map(|op| self.operations.get(&op.name))
    }
}

/// Why an install was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallError {
    /// The manifest is not valid.
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    /// The component could not be loaded.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// `describe()` failed.
    #[error("describe() failed: {0}")]
    DescribeFailed(CallError),
    /// `describe()` disagrees with the manifest.
    #[error("{0}")]
    DescribeMismatch(String),
    /// A published schema is not valid.
    #[error("{0}")]
    InvalidSchema(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for InstallError {
    fn from(err: StoreError) -> Self {
        InstallError::Store(err.to_string())
    }
}

/// Why a setting could not be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// No such connector.
    #[error("connector `{0}` is not installed")]
    UnknownConnector(String),
    /// The manifest does not declare the key.
    #[error("`{key}` is not a {kind} declared by `{connector}`; declared: {declared}")]
    Undeclared {
        /// The connector.
        connector: String,
        /// `config key` or `secret`.
        kind: &'static str,
        /// The key asked for.
        key: String,
        /// The keys it does declare.
        declared: String,
    },
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// The connector's name.
    pub name: ConnectorName,
    /// The installed version.
    pub version: semver::Version,
    /// The package hash.
    pub package_hash: String,
    /// The version it replaced, if any.
    pub replaced: Option<semver::Version>,
}

/// The storage the registry needs.
pub trait RegistryStore: ConnectorStore + SettingsStore {}
impl<T: ConnectorStore + SettingsStore> RegistryStore for T {}

/// The set of installed connectors.
pub struct Registry {
    runtime: Arc<Runtime>,
    store: Arc<dyn RegistryStore>,
    defaults: Limits,
    ceilings: LimitCeilings,
    connectors: RwLock<BTreeMap<ConnectorName, Arc<LoadedConnector>>>,
    /// Serializes changes (install, remove, settings, restore) so the store
    /// and the map above always end in the same state.
    changes: tokio::sync::Mutex<()>,
}

/// Largest config or secret value, in bytes.
pub const MAX_SETTING_BYTES: usize = 64 << 10;

impl Registry {
    /// An empty registry; call [`Registry::restore`] to load what the store holds.
    pub fn new(
        runtime: Arc<Runtime>,
        store: Arc<dyn RegistryStore>,
        defaults: Limits,
        ceilings: LimitCeilings,
    ) -> Self {
        Self {
            runtime,
            store,
            defaults,
            ceilings,
            connectors: RwLock::default(),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    /// The runtime connectors run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The connector serving calls under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedConnector>> {
        let map = self.connectors.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// Every installed connector, by name.
    pub fn list(&self) -> Vec<Arc<LoadedConnector>> {
        let map = self.connectors.read().unwrap_or_else(|p| p.into_inner());
        map.values().cloned().collect()
    }

    /// Installs (or replaces) a connector from its manifest and component.
    pub async fn install(
        &self,
        manifest_text: &str,
        wasm: Vec<u8>,
        source: InstallSource,
    ) -> Result<Installed, InstallError> {
        let _changing = self.changes.lock().await;
        self.install_locked(manifest_text, wasm, source).await
    }

    /// [`Registry::install`] for a caller that holds the `changes` lock.
    async fn install_locked(
        &self,
        manifest_text: &str,
        wasm: Vec<u8>,
        source: InstallSource,
    ) -> Result<Installed, InstallError> {
        let package_hash = sha256_hex(&wasm);
        let wasm: Arc<[u8]> = wasm.into();
        let record = ConnectorRecord {
            name: String::new(),
            manifest: manifest_text.to_owned(),
            package_hash,
            installed_at_ms: now_ms(),
            source,
        };
        let loaded = self.load(&record, wasm.clone()).await?;
        let record = ConnectorRecord {
            name: loaded.manifest.name.to_string(),
            ..record
        };
        let store = self.store.clone();
        blocking(move || {
            store.put_package(&record.package_hash, &wasm)?;
            store.put_connector(&record)
        })
        .await?;
        Ok(self.activate(loaded))
    }

    /// Loads every connector the store holds; returns the failures by name.
    pub async fn restore(&self) -> Result<Vec<(String, InstallError)>, StoreError> {
        let _changing = self.changes.lock().await;
        let store = self.store.clone();
        let records = blocking(move || store.list_connectors()).await?;
        let mut failures = Vec::new();
        for (name, record) in records {
            if let Err(err) = self.restore_one(record).await {
                failures.push((name, err));
            }
        }
        Ok(failures)
    }

    async fn restore_one(
        &self,
        record: Result<ConnectorRecord, StoreError>,
    ) -> Result<(), InstallError> {
        let record = record?;
        let store = self.store.clone();
        let hash = record.package_hash.clone();
        let wasm = blocking(move || store.get_package(&hash))
            .await?
            .ok_or_else(|| {
                InstallError::Store(format!("the package {} is missing", record.package_hash))
            })?;
        let loaded = self.load(&record, wasm.into()).await?;
        self.activate(loaded);
        Ok(())
    }

    /// Removes a connector; returns whether it was installed.
    pub async fn remove(&self, name: &ConnectorName) -> Result<bool, StoreError> {
        let _changing = self.changes.lock().await;
        let store = self.store.clone();
        let key = name.to_string();
        let existed = blocking(move || store.delete_connector(&key)).await?;
        let removed = self
            .connectors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .is_some();
        Ok(existed || removed)
    }

    /// Sets (`Some`) or clears (`None`) a config value or secret.
    pub async fn set_setting(
        &self,
        name: &str,
        kind: SettingKind,
        key: &SettingKey,
        value: Option<String>,
    ) -> Result<(), SettingError> {
        let _changing = self.changes.lock().await;
        let connector = self
            .get(name)
            .ok_or_else(|| SettingError::UnknownConnector(name.to_owned()))?;
        let settings = &connector.grants.settings;
        let declared = match kind {
            SettingKind::Config => settings.declares_config(key),
            SettingKind::Secret => settings.declares_secret(key),
        };
        if !declared {
            let (kind_name, keys) = match kind {
                SettingKind::Config => (
                    "config key",
                    connector
                        .manifest
                        .config
                        .keys()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                ),
                SettingKind::Secret => (
                    "secret",
                    connector
                        .manifest
                        .secrets
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
            };
            return Err(SettingError::Undeclared {
                connector: name.to_owned(),
                kind: kind_name,
                key: key.to_string(),
                declared: if keys.is_empty() {
                    "none".into()
                } else {
                    keys.join(", ")
                },
            });
        }
        let store = self.store.clone();
        let (connector_name, key_name, stored_value) =
            (name.to_owned(), key.to_string(), value.clone());
        blocking(move || match stored_value {
            Some(v) => store.set_setting(kind, &connector_name, &key_name, &v),
            None => store
                .delete_setting(kind, &connector_name, &key_name)
                .map(|_| ()),
        })
        .await
        .map_err(|err| SettingError::Store(err.to_string()))?;
        match kind {
            SettingKind::Config => settings.set_config(key, value),
            SettingKind::Secret => settings.set_secret(key, value),
        }
        Ok(())
    }

    fn activate(&self, loaded: LoadedConnector) -> Installed {
        let installed = Installed {
            name: loaded.manifest.name.clone(),
            version: loaded.manifest.version.clone(),
            package_hash: loaded.package_hash.clone(),
            replaced: None,
        };
        let previous = self
            .connectors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(installed.name.clone(), Arc::new(loaded));
        Installed {
            replaced: previous.map(|p| p.manifest.version.clone()),
            ..installed
        }
    }

    /// Loads the connector `record` describes (its name may still be empty)
    /// without changing the store or the map.
    async fn load(
        &self,
        record: &ConnectorRecord,
        wasm: Arc<[u8]>,
    ) -> Result<LoadedConnector, InstallError> {
        let package_hash = record.package_hash.clone();
        let manifest = Manifest::parse(&record.manifest, &self.defaults, &self.ceilings)?;
        let prepared = self.runtime.prepare(wasm, package_hash.clone()).await?;
        let settings = Arc::new(Settings::new(
            manifest.config.clone(),
            manifest.secrets.clone(),
        ));
        self.load_settings(&manifest.name, &settings).await?;
        let grants = Arc::new(ConnectorGrants {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            limits: manifest.limits.clone(),
            allowed_hosts: manifest.allowed_hosts.clone(),
            settings,
        });
        let context = Arc::new(CallContext {
            request_id: format!("install-{}", &package_hash[..12.min(package_hash.len())]),
            tenant: TenantId::default_tenant(),
            agent: None,
            channel: None,
            customer: None,
        });
        let info = self
            .runtime
            .describe(&prepared, &grants, context)
            .await
            .map_err(InstallError::DescribeFailed)?;
        check_agrees(&manifest, &info)?;
        let mut operations = HashMap::new();
        for op in &info.operations {
            let compiled =
                CompiledOperation::compile(op.clone()).map_err(InstallError::InvalidSchema)?;
            if operations.insert(op.name.clone(), compiled).is_some() {
                return Err(InstallError::DescribeMismatch(format!(
                    "describe() lists operation `{}` twice",
                    op.name
                )));
            }
        }
        Ok(LoadedConnector {
            manifest,
            info,
            package_hash,
            installed_at_ms: record.installed_at_ms,
            source: record.source,
            grants,
            prepared,
            operations,
        })
    }

    async fn load_settings(
        &self,
        name: &ConnectorName,
        settings: &Settings,
    ) -> Result<(), InstallError> {
        let store = self.store.clone();
        let connector = name.to_string();
        let (config, secrets) = blocking(move || {
            Ok::<_, StoreError>((
                store.list_settings(SettingKind::Config, &connector)?,
                store.list_settings(SettingKind::Secret, &connector)?,
            ))
        })
        .await?;
        for (key, value) in config {
            if let Ok(key) = SettingKey::parse(&key) {
                settings.set_config(&key, Some(value));
            }
        }
        for (key, value) in secrets {
            if let Ok(key) = SettingKey::parse(&key) {
                settings.set_secret(&key, Some(value));
            }
        }
        Ok(())
    }
}

fn check_agrees(manifest: &Manifest, info: &ConnectorInfo) -> Result<(), InstallError> {
    if info.name != manifest.name.as_str() {
        return Err(InstallError::DescribeMismatch(format!(
            "describe() reports name `{}` but connector.toml says `{}`",
            info.name, manifest.name
        )));
    }
    if info.version != manifest.version.to_string() {
        return Err(InstallError::DescribeMismatch(format!(
            "describe() reports version `{}` but connector.toml says `{}`",
            info.version, manifest.version
        )));
    }
    if info.operations.is_empty() {
        return Err(InstallError::DescribeMismatch(
            "describe() lists no operations".into(),
        ));
    }
    Ok(())
}
