//! One connector version loaded and ready to serve, and its call counters.
//!
//! Loading checks everything about a version: the manifest, the component
//! against the world, `describe()` against the manifest, every published
//! schema. A loaded version stays in memory while it serves (active or
//! canary) or while calls it started are still running; then its `Arc` is
//! dropped and it is unloaded. Its counters outlive it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::manifest::{Manifest, ManifestError};
use super::schema::CompiledOperation;
use super::{InstallError, Registry};
use crate::capabilities::{ConnectorGrants, Settings};
use crate::model::{CallContext, ConnectorInfo};
use crate::names::{SettingKey, TenantId};
use crate::runtime::Prepared;
use crate::runtime::call::DrainDeadline;
use crate::store::{SettingKind, StoreError, VersionRecord, blocking};

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
    /// Its grants, shared with every call.
    pub grants: Arc<ConnectorGrants>,
    /// The pre-instantiated component.
    pub prepared: Prepared,
    /// Its call counters, kept while the version is installed.
    pub stats: Arc<VersionStats>,
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

/// Calls served by one version since the host started.
#[derive(Debug, Default)]
pub struct VersionStats {
    calls: AtomicU64,
    failures: AtomicU64,
    in_flight: AtomicU64,
}

/// A copy of [`VersionStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StatsView {
    /// Calls finished.
    pub calls: u64,
    /// Calls that failed on the connector's side (not the caller's).
    pub failures: u64,
    /// Calls running now.
    pub in_flight: u64,
}

impl VersionStats {
    /// Counts a call as running until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Counts a finished call.
    pub fn finish(&self, failed: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters now.
    pub fn view(&self) -> StatsView {
        StatsView {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Acquire),
        }
    }
}

/// A running call of one version; counted in `in_flight` until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<VersionStats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Registry {
    /// Loads the version `record` describes without changing the store or
    /// the registry.
    pub(super) async fn load(
        &self,
        record: &VersionRecord,
        wasm: Arc<[u8]>,
        stats: Arc<VersionStats>,
    ) -> Result<LoadedConnector, InstallError> {
        let package_hash = record.package_hash.clone();
        let manifest = Manifest::parse(&record.manifest, &self.defaults, &self.ceilings)?;
        let prepared = self.runtime.prepare(wasm, package_hash.clone()).await?;
        let settings = Arc::new(Settings::new(
            manifest.config.clone(),
            manifest.secrets.clone(),
        ));
        self.load_settings(&manifest, &settings).await?;
        let grants = Arc::new(ConnectorGrants {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            limits: manifest.limits.clone(),
            allowed_hosts: manifest.allowed_hosts.clone(),
            settings,
            drain: DrainDeadline::default(),
        });
        let context = Arc::new(CallContext {
            request_id: format!("load-{}", &package_hash[..12.min(package_hash.len())]),
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
        let names: Vec<&str> = info.operations.iter().map(|op| op.name.as_str()).collect();
        manifest
            .pipeline
            .check(&names)
            .map_err(|err| InstallError::Manifest(ManifestError(err)))?;
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
            grants,
            prepared,
            stats,
            operations,
        })
    }

    async fn load_settings(
        &self,
        manifest: &Manifest,
        settings: &Settings,
    ) -> Result<(), InstallError> {
        let store = self.store.clone();
        let connector = manifest.name.to_string();
        let (config, secrets) = blocking(move || {
            Ok::<_, StoreError>((
                store.list_settings(SettingKind::Config, &connector)?,
                store.list_settings(SettingKind::Secret, &connector)?,
            ))
        })
        .await?;
        // Settings belong to the connector; a version takes those it declares.
        for (key, value) in config {
            if let Ok(key) = SettingKey::parse(&key)
                && settings.declares_config(&key)
            {
                settings.set_config(&key, Some(value));
            }
        }
        for (key, value) in secrets {
            if let Ok(key) = SettingKey::parse(&key)
                && settings.declares_secret(&key)
            {
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
