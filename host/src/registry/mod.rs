//! Installed connectors: their versions, which version serves which call,
//! and every change to that (see [`lifecycle`]).
//!
//! Each connector has any number of installed versions and a deployment: the
//! active version, the version active before it (for rollback) and possibly
//! a canary. Calls are routed through an immutable [`Route`] that a change
//! replaces in one step, so a call always finishes on the version it started
//! on while the next call already sees the new route.

pub mod canary;
mod deploy;
mod install;
pub mod lifecycle;
mod loaded;
pub mod manifest;
pub mod plugins_dir;
mod restore;
pub mod schema;
mod settings;
pub mod signature;
pub mod view;
pub mod watch;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use self::canary::{CanaryMonitor, CanaryRule, RollbackPolicy, Side};
use self::manifest::{Manifest, ManifestError};
use self::signature::TrustedKeys;
use crate::model::CallContext;
use crate::names::ConnectorName;
use crate::runtime::call::CallError;
use crate::runtime::limits::{LimitCeilings, Limits};
use crate::runtime::{LoadError, Runtime};
use crate::store::{
    AbortRecord, AuditLog, ConnectorStore, SettingsStore, StoreError, VersionRecord,
};

pub use loaded::{InFlight, LoadedConnector, StatsView, VersionStats};
pub use settings::SettingError;

/// Why a package could not be loaded.
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

impl InstallError {
    /// The stable code callers branch on, the same in the API and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            InstallError::Manifest(_) => "invalid_manifest",
            InstallError::Load(LoadError::InvalidComponent(_)) => "invalid_component",
            InstallError::Load(LoadError::WorldMismatch(_)) => "world_mismatch",
            InstallError::Load(LoadError::Internal(_))
            | InstallError::DescribeFailed(CallError::Internal(_)) => "internal",
            InstallError::DescribeFailed(CallError::CapacityExhausted) => "capacity_exhausted",
            InstallError::DescribeFailed(_) => "describe_failed",
            InstallError::DescribeMismatch(_) => "describe_mismatch",
            InstallError::InvalidSchema(_) => "invalid_schema",
            InstallError::Store(_) => "storage_unavailable",
        }
    }
}

impl From<StoreError> for InstallError {
    fn from(err: StoreError) -> Self {
        InstallError::Store(err.to_string())
    }
}

/// The storage the registry needs.
pub trait RegistryStore: ConnectorStore + SettingsStore + AuditLog {}
impl<T: ConnectorStore + SettingsStore + AuditLog> RegistryStore for T {}

/// How the registry treats versions over time.
#[derive(Debug, Clone)]
pub struct LifecyclePolicy {
    /// How long calls on a replaced version may keep running before they are cut off.
    pub drain_deadline: Duration,
    /// When a canary is rolled back on its own.
    pub rollback: RollbackPolicy,
    /// Keys whose signature a package must carry; empty means none needed.
    pub trusted_keys: TrustedKeys,
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        Self {
            drain_deadline: Duration::from_secs(30),
            rollback: RollbackPolicy::default(),
            trusted_keys: TrustedKeys::default(),
        }
    }
}

/// Which versions of one connector serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// The version serving calls the canary does not take.
    pub active: Option<semver::Version>,
    /// The version active before, for rollback.
    pub previous: Option<semver::Version>,
    /// The canary running, if any.
    pub canary: Option<CanaryRule>,
    /// Why the last canary was aborted, if one was.
    pub last_abort: Option<AbortRecord>,
}

/// What serves the calls of one connector, replaced whole on every change.
pub struct Route {
    /// The active version.
    pub active: Arc<LoadedConnector>,
    /// The canary, if one runs.
    pub canary: Option<RoutedCanary>,
}

impl Route {
    /// The versions it serves: the active one, then the candidate.
    pub fn versions(&self) -> impl Iterator<Item = &Arc<LoadedConnector>> {
        std::iter::once(&self.active).chain(self.canary.as_ref().map(|c| &c.loaded))
    }
}

/// A running canary inside a [`Route`].
pub struct RoutedCanary {
    /// The candidate version.
    pub loaded: Arc<LoadedConnector>,
    /// Which calls it takes.
    pub rule: CanaryRule,
    /// The comparison that may roll it back.
    pub monitor: Arc<CanaryMonitor>,
}

/// One call routed to a version; hand it back to [`Registry::finish`].
pub struct Routed {
    /// The version serving the call.
    pub loaded: Arc<LoadedConnector>,
    /// The connector's active version (whose settings govern its pipeline).
    pub active: Arc<LoadedConnector>,
    /// Which side of a canary took it, if one runs.
    pub side: Option<Side>,
    canary: Option<(Arc<CanaryMonitor>, u64)>,
    _in_flight: InFlight,
}

struct VersionEntry {
    record: VersionRecord,
    manifest: Manifest,
    stats: Arc<VersionStats>,
    loaded: Weak<LoadedConnector>,
}

#[derive(Default)]
struct ConnectorEntry {
    versions: BTreeMap<semver::Version, VersionEntry>,
    deployment: Deployment,
    route: Option<Arc<Route>>,
}

/// The set of installed connectors.
pub struct Registry {
    runtime: Arc<Runtime>,
    store: Arc<dyn RegistryStore>,
    defaults: Limits,
    ceilings: LimitCeilings,
    policy: LifecyclePolicy,
    connectors: RwLock<BTreeMap<ConnectorName, ConnectorEntry>>,
    /// Serializes changes (install, deploy, remove, settings, restore) so the
    /// store and the map above always end in the same state.
    changes: tokio::sync::Mutex<()>,
    me: Weak<Registry>,
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
        policy: LifecyclePolicy,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            runtime,
            store,
            defaults,
            ceilings,
            policy,
            connectors: RwLock::default(),
            changes: tokio::sync::Mutex::new(()),
            me: me.clone(),
        })
    }

    /// The runtime connectors run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<ConnectorName, ConnectorEntry>> {
        self.connectors.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<ConnectorName, ConnectorEntry>> {
        self.connectors.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The route of `name`, if it has an active version.
    pub fn route_of(&self, name: &str) -> Option<Arc<Route>> {
        self.read().get(name).and_then(|entry| entry.route.clone())
    }

    /// The active version of `name`.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedConnector>> {
        self.route_of(name).map(|route| route.active.clone())
    }

    /// The active version of every connector that has one, by name.
    pub fn list(&self) -> Vec<Arc<LoadedConnector>> {
        self.read()
            .values()
            .filter_map(|entry| entry.route.as_ref().map(|r| r.active.clone()))
            .collect()
    }

    /// Picks the version that serves a call of `name` for `context`.
    pub fn route(&self, name: &str, context: &CallContext) -> Option<Routed> {
        let route = self.route_of(name)?;
        let (loaded, side, canary) = match &route.canary {
            Some(canary) if !canary.monitor.tripped() => {
                let side = if canary.rule.routes_to_candidate(context) {
                    Side::Candidate
                } else {
                    Side::Active
                };
                let loaded = match side {
                    Side::Candidate => canary.loaded.clone(),
                    Side::Active => route.active.clone(),
                };
                let monitor = (canary.monitor.clone(), canary.rule.seed);
                (loaded, Some(side), Some(monitor))
            }
            _ => (route.active.clone(), None, None),
        };
        let in_flight = loaded.stats.begin();
        Some(Routed {
            loaded,
            active: route.active.clone(),
            side,
            canary,
            _in_flight: in_flight,
        })
    }

    /// Counts a routed call's outcome; a canary whose candidate crosses a
    /// threshold stops taking calls at once and is aborted in the background.
    pub fn finish(&self, routed: Routed, latency: Duration, failed: bool) {
        routed.loaded.stats.finish(failed);
        let (Some(side), Some((monitor, seed))) = (routed.side, &routed.canary) else {
            return;
        };
        let Some(reason) = monitor.record(side, latency, failed) else {
            return;
        };
        let name = routed.loaded.manifest.name.clone();
        tracing::warn!(connector = %name, reason, "rolling back the canary");
        if let Some(registry) = self.me.upgrade() {
            let seed = *seed;
            tokio::spawn(async move {
                if let Err(err) = registry.abort_automatically(&name, seed, reason).await {
                    tracing::error!(connector = %name, error = %err, "the automatic rollback failed");
                }
            });
        }
    }
}
