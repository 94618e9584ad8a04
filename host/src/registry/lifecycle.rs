//! Every change to what serves: install, activate, roll back, canary,
//! promote, abort, remove.
//!
//! Each change runs under the registry's one change lock: it loads what the
//! new deployment needs (from the compile cache when it can), persists the
//! deployment, then swaps the route in one step. Versions that stop serving
//! drain: calls they started finish on them, and whatever still runs after
//! the drain deadline is cut off. Every change is written to the audit log.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use super::canary::{CanaryMonitor, CanaryRule, FULL_WEIGHT_BP, MAX_ROUTING_KEYS, MonitorView};
use super::manifest::Manifest;
use super::signature::{SignatureError, Verdict};
use super::{
    ConnectorEntry, Deployment, InstallError, LoadedConnector, Registry, Route, RoutedCanary,
    StatsView, VersionEntry, VersionStats,
};
use crate::capabilities::now_ms;
use crate::names::ConnectorName;
use crate::runtime::compile_cache::sha256_hex;
use crate::store::{
    AbortRecord, AuditRecord, DeploymentRecord, InstallSource, StoreError, StoredEvent,
    VersionRecord, blocking,
};

/// Why a lifecycle change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// No such connector.
    #[error("connector `{0}` is not installed")]
    UnknownConnector(String),
    /// No such version.
    #[error("connector `{name}` has no version {version}; installed: {installed}")]
    UnknownVersion {
        /// The connector.
        name: String,
        /// The version asked for.
        version: String,
        /// The versions installed.
        installed: String,
    },
    /// The name and version are installed with other bytes.
    #[error(
        "{name} {version} is already installed with another package ({installed_hash}); give a changed build a new version"
    )]
    VersionConflict {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// The hash of the package installed under it.
        installed_hash: String,
    },
    /// The version serves calls and cannot be removed.
    #[error(
        "{name} {version} is the {role} version; activate another version or end the canary first"
    )]
    VersionInUse {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// `active` or `canary`.
        role: &'static str,
    },
    /// Nothing to roll back to.
    #[error("connector `{0}` has no previous version to roll back to")]
    NoPreviousVersion(String),
    /// No canary runs.
    #[error("connector `{0}` has no canary running")]
    NoCanary(String),
    /// The canary asked for is not valid.
    #[error("{0}")]
    InvalidCanary(String),
    /// The package's signature was refused.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// The package could not be loaded.
    #[error("{0}")]
    Install(#[from] InstallError),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for LifecycleError {
    fn from(err: StoreError) -> Self {
        LifecycleError::Store(err.to_string())
    }
}

/// Who made a change, as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A request to the API.
    Api,
    /// The plugins directory.
    PluginsDir,
    /// The automatic canary rollback.
    AutoRollback,
}

impl Actor {
    fn as_str(self) -> &'static str {
        match self {
            Actor::Api => "api",
            Actor::PluginsDir => "plugins-dir",
            Actor::AutoRollback => "auto-rollback",
        }
    }
}

/// A connector package as uploaded or found on disk.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest text.
    pub manifest: String,
    /// The component bytes.
    pub wasm: Vec<u8>,
    /// The signature lines, if any.
    pub signature: Option<String>,
}

/// Which calls a canary should take, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanarySpec {
    /// The candidate version.
    pub version: semver::Version,
    /// Share of unlisted calls, in basis points.
    pub weight_bp: u16,
    /// Agents always routed to the candidate.
    pub agents: BTreeSet<String>,
    /// Channels always routed to the candidate.
    pub channels: BTreeSet<String>,
    /// Tenants always routed to the candidate.
    pub tenants: BTreeSet<String>,
}

/// What to do with a version once it is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Make it active.
    Activate,
    /// Make it active if it is newer than the active version.
    ActivateIfNewer,
    /// Start a canary of it with this weight (basis points).
    Canary(u16),
    /// Keep it installed, inactive.
    Stage,
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
    /// Whether this exact package was installed already.
    pub already_installed: bool,
}

/// How a version stands, for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// Serves every call the canary does not take.
    Active,
    /// The candidate of the running canary.
    Canary,
    /// Replaced, with calls still running on it.
    Draining,
    /// Installed, serving nothing.
    Inactive,
}

/// One installed version, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct VersionView {
    /// The version.
    pub version: String,
    /// How it stands.
    pub state: VersionState,
    /// When it was installed, in milliseconds since the Unix epoch.
    pub installed_at_ms: u64,
    /// Hex SHA-256 of its component.
    pub package_hash: String,
    /// How it was installed.
    pub source: InstallSource,
    /// The trusted key that signed it, if one did.
    pub signed_by: Option<String>,
    /// Whether its compiled code is in memory (it serves, or calls it started still run).
    pub loaded: bool,
    /// Its call counters since the host started.
    #[serde(flatten)]
    pub stats: StatsView,
}

/// A running canary, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct CanaryView {
    /// The candidate version.
    pub version: String,
    /// Share of unlisted calls, in percent.
    pub weight_percent: f64,
    /// Agents always routed to the candidate.
    pub agents: BTreeSet<String>,
    /// Channels always routed to the candidate.
    pub channels: BTreeSet<String>,
    /// Tenants always routed to the candidate.
    pub tenants: BTreeSet<String>,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// The sliding window the automatic rollback judges.
    pub window: Option<MonitorView>,
}

/// A connector's versions and deployment, for the API.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentView {
    /// The connector.
    pub name: String,
    /// The active version.
    pub active: Option<String>,
    /// The version a rollback returns to.
    pub previous: Option<String>,
    /// The running canary.
    pub canary: Option<CanaryView>,
    /// Why the last canary was aborted.
    pub last_abort: Option<AbortRecord>,
    /// Every installed version, oldest first.
    pub versions: Vec<VersionView>,
}

fn parse_version(name: &str, text: &str) -> Result<semver::Version, LifecycleError> {
    text.parse().map_err(|_| LifecycleError::UnknownVersion {
        name: name.to_owned(),
        version: text.to_owned(),
        installed: "(not a semantic version)".into(),
    })
}

impl Deployment {
    fn to_record(&self) -> DeploymentRecord {
        DeploymentRecord {
            active: self.active.as_ref().map(ToString::to_string),
            previous: self.previous.as_ref().map(ToString::to_string),
            canary: self.canary.as_ref().map(CanaryRule::to_record),
            last_abort: self.last_abort.clone(),
        }
    }

    /// The deployment a persisted record describes.
    pub(super) fn from_record(name: &str, record: &DeploymentRecord) -> Result<Self, String> {
        let version = |text: &Option<String>| {
            text.as_deref()
                .map(|t| {
                    t.parse()
                        .map_err(|err| format!("{name} version `{t}`: {err}"))
                })
                .transpose()
        };
        Ok(Self {
            active: version(&record.active)?,
            previous: version(&record.previous)?,
            canary: record
                .canary
                .as_ref()
                .map(CanaryRule::from_record)
                .transpose()?,
            last_abort: record.last_abort.clone(),
        })
    }
}

impl ConnectorEntry {
    fn installed_list(&self) -> String {
        let versions: Vec<String> = self.versions.keys().map(ToString::to_string).collect();
        if versions.is_empty() {
            "none".into()
        } else {
            versions.join(", ")
        }
    }

    fn state_of(&self, version: &semver::Version, stats: &VersionStats) -> VersionState {
        if self.deployment.active.as_ref() == Some(version) {
            VersionState::Active
        } else if self
            .deployment
            .canary
            .as_ref()
            .is_some_and(|c| &c.version == version)
        {
            VersionState::Canary
        } else if stats.view().in_flight > 0 {
            VersionState::Draining
        } else {
            VersionState::Inactive
        }
    }
}

impl Registry {
    /// Installs a version of a connector, then activates it, canaries it or
    /// keeps it staged as `activation` says. The first version of a
    /// connector is always activated. Installing a package that is already
    /// installed changes nothing.
    pub async fn install(
        &self,
        package: Package,
        source: InstallSource,
        activation: Activation,
        actor: Actor,
    ) -> Result<Installed, LifecycleError> {
        let _changing = self.changes.lock().await;
        // Holding the loaded version keeps it in memory until it is deployed.
        let (installed, _loaded) = self.install_locked(package, source, actor).await?;
        let (name, version) = (&installed.name, &installed.version);
        let current = self
            .read()
            .get(name)
            .map(|entry| entry.deployment.clone())
            .unwrap_or_default();
        let mut next = current.clone();
        match activation {
            _ if installed.already_installed => {}
            _ if current.active.is_none() => next.activate(version),
            Activation::Activate => next.activate(version),
            Activation::ActivateIfNewer if current.active.as_ref() < Some(version) => {
                next.activate(version)
            }
            Activation::Canary(weight_bp) if current.active.as_ref() != Some(version) => {
                next.canary = Some(self.canary_rule(
                    &current,
                    CanarySpec {
                        version: version.clone(),
                        weight_bp,
                        agents: BTreeSet::new(),
                        channels: BTreeSet::new(),
                        tenants: BTreeSet::new(),
                    },
                ));
            }
            _ => {}
        }
        if next != current {
            let detail = describe_change(&current, &next);
            self.deploy(
                name,
                next,
                actor,
                "deployment.changed",
                Some(version),
                detail,
            )
            .await?;
        }
        Ok(installed)
    }

    async fn install_locked(
        &self,
        package: Package,
        source: InstallSource,
        actor: Actor,
    ) -> Result<(Installed, Option<Arc<LoadedConnector>>), LifecycleError> {
        let package_hash = sha256_hex(&package.wasm);
        let verdict = self.policy.trusted_keys.check(
            &package.manifest,
            &package_hash,
            package.signature.as_deref(),
        )?;
        let manifest = Manifest::parse(&package.manifest, &self.defaults, &self.ceilings)
            .map_err(InstallError::from)?;
        let (name, version) = (manifest.name.clone(), manifest.version.clone());
        if let Some(existing) = self
            .read()
            .get(&name)
            .and_then(|entry| entry.versions.get(&version))
        {
            if existing.record.package_hash == package_hash
                && existing.record.manifest == package.manifest
            {
                let installed = Installed {
                    name,
                    version,
                    package_hash,
                    already_installed: true,
                };
                return Ok((installed, None));
            }
            return Err(LifecycleError::VersionConflict {
                name: name.to_string(),
                version: version.to_string(),
                installed_hash: existing.record.package_hash.clone(),
            });
        }
        let record = VersionRecord {
            name: name.to_string(),
            version: version.to_string(),
            manifest: package.manifest,
            package_hash: package_hash.clone(),
            installed_at_ms: now_ms(),
            source,
            signed_by: match verdict {
                Verdict::Verified { key_id } => Some(key_id),
                Verdict::NotRequired => None,
            },
        };
        let wasm: Arc<[u8]> = package.wasm.into();
        let stats = Arc::new(VersionStats::default());
        let loaded = Arc::new(self.load(&record, wasm.clone(), stats.clone()).await?);
        let store = self.store.clone();
        let stored = record.clone();
        blocking(move || {
            store.put_package(&stored.package_hash, &wasm)?;
            store.put_version(&stored)
        })
        .await?;
        let detail = format!(
            "package {package_hash}{}",
            record
                .signed_by
                .as_deref()
                .map(|key| format!(", signed by {key}"))
                .unwrap_or_default()
        );
        self.write()
            .entry(name.clone())
            .or_default()
            .versions
            .insert(
                version.clone(),
                VersionEntry {
                    record,
                    manifest,
                    stats,
                    loaded: Arc::downgrade(&loaded),
                },
            );
        self.audit(actor, "version.installed", &name, Some(&version), detail)
            .await;
        let installed = Installed {
            name,
            version,
            package_hash,
            already_installed: false,
        };
        Ok((installed, Some(loaded)))
    }

    /// Makes `version` the active version; a running canary ends.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, current) = self.deployment_of(name)?;
        let version = self.installed_version(&name, version)?;
        let mut next = current.clone();
        next.activate(&version);
        let detail = describe_change(&current, &next);
        self.deploy(
            &name,
            next,
            actor,
            "version.activated",
            Some(&version),
            detail,
        )
        .await?;
        self.view_of(&name)
    }

    /// Makes the previous version active again.
    pub async fn rollback(
        &self,
        name: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, current) = self.deployment_of(name)?;
        let previous = current
            .previous
            .clone()
            .ok_or_else(|| LifecycleError::NoPreviousVersion(name.to_string()))?;
        let mut next = current.clone();
        next.activate(&previous);
        let detail = describe_change(&current, &next);
        self.deploy(
            &name,
            next,
            actor,
            "version.rolled_back",
            Some(&previous),
            detail,
        )
        .await?;
        self.view_of(&name)
    }

    /// Starts a canary, or changes the running one.
    pub async fn start_canary(
        &self,
        name: &str,
        spec: CanarySpec,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, current) = self.deployment_of(name)?;
        self.installed_version(&name, &spec.version.to_string())?;
        check_canary(&current, &spec)?;
        let version = spec.version.clone();
        let mut next = current.clone();
        next.canary = Some(self.canary_rule(&current, spec));
        let detail = describe_change(&current, &next);
        self.deploy(&name, next, actor, "canary.started", Some(&version), detail)
            .await?;
        self.view_of(&name)
    }

    /// Makes the canary's candidate the active version.
    pub async fn promote(
        &self,
        name: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, current) = self.deployment_of(name)?;
        let candidate = current
            .canary
            .as_ref()
            .map(|c| c.version.clone())
            .ok_or_else(|| LifecycleError::NoCanary(name.to_string()))?;
        let mut next = current.clone();
        next.activate(&candidate);
        let detail = describe_change(&current, &next);
        self.deploy(
            &name,
            next,
            actor,
            "canary.promoted",
            Some(&candidate),
            detail,
        )
        .await?;
        self.view_of(&name)
    }

    /// Ends the canary; every call goes to the active version again.
    pub async fn abort_canary(
        &self,
        name: &str,
        reason: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, _) = self.deployment_of(name)?;
        self.abort_locked(&name, None, reason, actor).await?;
        self.view_of(&name)
    }

    /// The automatic rollback: aborts the canary seeded `seed` if it still runs.
    pub(super) async fn abort_automatically(
        &self,
        name: &ConnectorName,
        seed: u64,
        reason: String,
    ) -> Result<(), LifecycleError> {
        let _changing = self.changes.lock().await;
        match self
            .abort_locked(name, Some(seed), &reason, Actor::AutoRollback)
            .await
        {
            Err(LifecycleError::NoCanary(_)) => Ok(()),
            other => other,
        }
    }

    async fn abort_locked(
        &self,
        name: &ConnectorName,
        seed: Option<u64>,
        reason: &str,
        actor: Actor,
    ) -> Result<(), LifecycleError> {
        let (_, current) = self.deployment_of(name.as_str())?;
        let canary = current
            .canary
            .clone()
            .filter(|c| seed.is_none_or(|s| s == c.seed))
            .ok_or_else(|| LifecycleError::NoCanary(name.to_string()))?;
        let abort = AbortRecord {
            version: canary.version.to_string(),
            reason: reason.to_owned(),
            at_ms: now_ms(),
            automatic: actor == Actor::AutoRollback,
        };
        let next = Deployment {
            canary: None,
            last_abort: Some(abort.clone()),
            ..current
        };
        self.deploy(
            name,
            next,
            actor,
            "canary.aborted",
            Some(&canary.version),
            reason.to_owned(),
        )
        .await?;
        let event = StoredEvent {
            id: uuid::Uuid::new_v4().to_string(),
            connector: name.to_string(),
            tenant: crate::names::TenantId::default_tenant().to_string(),
            kind: "switchboard.canary_aborted".into(),
            subject: Some(canary.version.to_string()),
            time_ms: abort.at_ms,
            data: serde_json::json!({
                "connector": name.as_str(),
                "version": abort.version,
                "reason": abort.reason,
                "automatic": abort.automatic,
            })
            .to_string(),
        };
        let store = self.store.clone();
        blocking(move || store.append_event(&event)).await?;
        Ok(())
    }

    /// Removes a version that serves nothing.
    pub async fn remove_version(
        &self,
        name: &str,
        version: &str,
        actor: Actor,
    ) -> Result<(), LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, current) = self.deployment_of(name)?;
        let version = self.installed_version(&name, version)?;
        let role = if current.active.as_ref() == Some(&version) {
            Some("active")
        } else if current
            .canary
            .as_ref()
            .is_some_and(|c| c.version == version)
        {
            Some("canary")
        } else {
            None
        };
        if let Some(role) = role {
            return Err(LifecycleError::VersionInUse {
                name: name.to_string(),
                version: version.to_string(),
                role,
            });
        }
        if current.previous.as_ref() == Some(&version) {
            let next = Deployment {
                previous: None,
                ..current
            };
            self.persist_deployment(&name, &next).await?;
            if let Some(entry) = self.write().get_mut(&name) {
                entry.deployment = next;
            }
        }
        let store = self.store.clone();
        let (key, text) = (name.to_string(), version.to_string());
        blocking(move || store.delete_version(&key, &text)).await?;
        if let Some(entry) = self.write().get_mut(&name) {
            entry.versions.remove(&version);
        }
        self.audit(
            actor,
            "version.removed",
            &name,
            Some(&version),
            String::new(),
        )
        .await;
        Ok(())
    }

    /// Removes a connector: every version, its deployment and its settings.
    /// Returns whether it was installed.
    pub async fn remove(&self, name: &ConnectorName, actor: Actor) -> Result<bool, LifecycleError> {
        let _changing = self.changes.lock().await;
        let store = self.store.clone();
        let key = name.to_string();
        let existed = blocking(move || store.delete_connector(&key)).await?;
        let removed = self.write().remove(name);
        if let Some(route) = removed.as_ref().and_then(|entry| entry.route.clone()) {
            self.drain(&route, None);
        }
        let existed = existed || removed.is_some();
        if existed {
            self.audit(actor, "connector.removed", name, None, String::new())
                .await;
        }
        Ok(existed)
    }

    /// A connector's versions and deployment.
    pub fn view(&self, name: &str) -> Result<DeploymentView, LifecycleError> {
        let name = ConnectorName::parse(name)
            .map_err(|_| LifecycleError::UnknownConnector(name.to_owned()))?;
        self.view_of(&name)
    }

    fn view_of(&self, name: &ConnectorName) -> Result<DeploymentView, LifecycleError> {
        let connectors = self.read();
        let entry = connectors
            .get(name)
            .ok_or_else(|| LifecycleError::UnknownConnector(name.to_string()))?;
        let deployment = &entry.deployment;
        let monitor = entry
            .route
            .as_ref()
            .and_then(|route| route.canary.as_ref())
            .map(|canary| canary.monitor.view());
        Ok(DeploymentView {
            name: name.to_string(),
            active: deployment.active.as_ref().map(ToString::to_string),
            previous: deployment.previous.as_ref().map(ToString::to_string),
            canary: deployment.canary.as_ref().map(|rule| CanaryView {
                version: rule.version.to_string(),
                weight_percent: f64::from(rule.weight_bp) / 100.0,
                agents: rule.agents.clone(),
                channels: rule.channels.clone(),
                tenants: rule.tenants.clone(),
                started_at_ms: rule.started_at_ms,
                window: monitor,
            }),
            last_abort: deployment.last_abort.clone(),
            versions: entry
                .versions
                .iter()
                .map(|(version, v)| VersionView {
                    version: version.to_string(),
                    state: entry.state_of(version, &v.stats),
                    installed_at_ms: v.record.installed_at_ms,
                    package_hash: v.record.package_hash.clone(),
                    source: v.record.source,
                    signed_by: v.record.signed_by.clone(),
                    loaded: v.loaded.strong_count() > 0,
                    stats: v.stats.view(),
                })
                .collect(),
        })
    }

    fn deployment_of(&self, name: &str) -> Result<(ConnectorName, Deployment), LifecycleError> {
        let unknown = || LifecycleError::UnknownConnector(name.to_owned());
        let parsed = ConnectorName::parse(name).map_err(|_| unknown())?;
        let deployment = self
            .read()
            .get(&parsed)
            .map(|entry| entry.deployment.clone())
            .ok_or_else(unknown)?;
        Ok((parsed, deployment))
    }

    fn installed_version(
        &self,
        name: &ConnectorName,
        version: &str,
    ) -> Result<semver::Version, LifecycleError> {
        let parsed = parse_version(name.as_str(), version)?;
        let connectors = self.read();
        let entry = connectors
            .get(name)
            .ok_or_else(|| LifecycleError::UnknownConnector(name.to_string()))?;
        if entry.versions.contains_key(&parsed) {
            Ok(parsed)
        } else {
            Err(LifecycleError::UnknownVersion {
                name: name.to_string(),
                version: version.to_owned(),
                installed: entry.installed_list(),
            })
        }
    }

    /// A rule for `spec`; changing a running canary of the same candidate
    /// keeps its seed, so agents already on the candidate stay there.
    fn canary_rule(&self, current: &Deployment, spec: CanarySpec) -> CanaryRule {
        let running = current
            .canary
            .as_ref()
            .filter(|c| c.version == spec.version);
        CanaryRule {
            version: spec.version,
            weight_bp: spec.weight_bp.min(FULL_WEIGHT_BP),
            agents: spec.agents,
            channels: spec.channels,
            tenants: spec.tenants,
            seed: running.map_or_else(rand::random, |c| c.seed),
            started_at_ms: running.map_or_else(now_ms, |c| c.started_at_ms),
        }
    }

    /// Loads what `next` needs, persists it, swaps the route and drains
    /// what no longer serves.
    pub(super) async fn deploy(
        &self,
        name: &ConnectorName,
        next: Deployment,
        actor: Actor,
        action: &str,
        version: Option<&semver::Version>,
        detail: String,
    ) -> Result<(), LifecycleError> {
        let route = self.build_route(name, &next).await?;
        self.persist_deployment(name, &next).await?;
        let old_route = {
            let mut connectors = self.write();
            let entry = connectors.entry(name.clone()).or_default();
            entry.deployment = next;
            std::mem::replace(&mut entry.route, route.clone())
        };
        if let Some(old) = old_route {
            self.drain(&old, route.as_deref());
        }
        tracing::info!(connector = %name, action, actor = actor.as_str(), detail, "deployment changed");
        self.audit(actor, action, name, version, detail).await;
        Ok(())
    }

    /// The route serving `deployment`, loading versions as needed.
    pub(super) async fn build_route(
        &self,
        name: &ConnectorName,
        deployment: &Deployment,
    ) -> Result<Option<Arc<Route>>, LifecycleError> {
        let Some(active) = &deployment.active else {
            return Ok(None);
        };
        let active = self.ensure_loaded(name, active).await?;
        let canary = match &deployment.canary {
            None => None,
            Some(rule) => {
                let loaded = self.ensure_loaded(name, &rule.version).await?;
                let running = self.route_of(name.as_str()).and_then(|route| {
                    route
                        .canary
                        .as_ref()
                        .filter(|c| c.rule.version == rule.version && c.rule.seed == rule.seed)
                        .map(|c| c.monitor.clone())
                });
                let monitor = running
                    .unwrap_or_else(|| Arc::new(CanaryMonitor::new(self.policy.rollback.clone())));
                Some(RoutedCanary {
                    loaded,
                    rule: rule.clone(),
                    monitor,
                })
            }
        };
        for loaded in std::iter::once(&active).chain(canary.as_ref().map(|c| &c.loaded)) {
            loaded.grants.drain.clear();
        }
        Ok(Some(Arc::new(Route { active, canary })))
    }

    /// Starts the drain deadline of every version of `old` that `new` does not serve.
    fn drain(&self, old: &Route, new: Option<&Route>) {
        let serves = |loaded: &Arc<LoadedConnector>| {
            new.is_some_and(|route| {
                Arc::ptr_eq(&route.active, loaded)
                    || route
                        .canary
                        .as_ref()
                        .is_some_and(|c| Arc::ptr_eq(&c.loaded, loaded))
            })
        };
        for loaded in std::iter::once(&old.active).chain(old.canary.as_ref().map(|c| &c.loaded)) {
            if !serves(loaded) {
                loaded.grants.drain.start(self.policy.drain_deadline);
            }
        }
    }

    /// The loaded version, from memory if it still is, else from its package.
    async fn ensure_loaded(
        &self,
        name: &ConnectorName,
        version: &semver::Version,
    ) -> Result<Arc<LoadedConnector>, LifecycleError> {
        let (record, stats) = {
            let connectors = self.read();
            let entry = connectors
                .get(name)
                .and_then(|entry| entry.versions.get(version))
                .ok_or_else(|| LifecycleError::UnknownVersion {
                    name: name.to_string(),
                    version: version.to_string(),
                    installed: connectors
                        .get(name)
                        .map_or_else(|| "none".into(), ConnectorEntry::installed_list),
                })?;
            if let Some(loaded) = entry.loaded.upgrade() {
                return Ok(loaded);
            }
            (entry.record.clone(), entry.stats.clone())
        };
        let store = self.store.clone();
        let hash = record.package_hash.clone();
        let wasm = blocking(move || store.get_package(&hash))
            .await?
            .ok_or_else(|| {
                InstallError::Store(format!("the package {} is missing", record.package_hash))
            })?;
        let loaded = Arc::new(self.load(&record, wasm.into(), stats).await?);
        if let Some(entry) = self
            .write()
            .get_mut(name)
            .and_then(|entry| entry.versions.get_mut(version))
        {
            entry.loaded = Arc::downgrade(&loaded);
        }
        Ok(loaded)
    }

    async fn persist_deployment(
        &self,
        name: &ConnectorName,
        deployment: &Deployment,
    ) -> Result<(), LifecycleError> {
        let store = self.store.clone();
        let (key, record) = (name.to_string(), deployment.to_record());
        blocking(move || store.put_deployment(&key, &record)).await?;
        Ok(())
    }

    /// Appends to the audit log; a failure is logged, never fatal to the change.
    pub(super) async fn audit(
        &self,
        actor: Actor,
        action: &str,
        name: &ConnectorName,
        version: Option<&semver::Version>,
        detail: String,
    ) {
        let record = AuditRecord {
            time_ms: now_ms(),
            actor: actor.as_str().into(),
            action: action.into(),
            connector: name.to_string(),
            version: version.map(ToString::to_string),
            detail,
        };
        let store = self.store.clone();
        if let Err(err) = blocking(move || store.append_audit(&record)).await {
            tracing::error!(connector = %name, action, error = %err, "could not write the audit record");
        }
    }
}

impl Deployment {
    /// Makes `version` active, remembering the one it replaces; a canary ends.
    fn activate(&mut self, version: &semver::Version) {
        if self.active.as_ref() != Some(version) {
            self.previous = self.active.replace(version.clone());
        }
        self.canary = None;
    }
}

fn check_canary(current: &Deployment, spec: &CanarySpec) -> Result<(), LifecycleError> {
    if current.active.as_ref() == Some(&spec.version) {
        return Err(LifecycleError::InvalidCanary(format!(
            "{} is already the active version; a canary needs another version",
            spec.version
        )));
    }
    if spec.weight_bp > FULL_WEIGHT_BP {
        return Err(LifecycleError::InvalidCanary(
            "weight_percent must be between 0 and 100".into(),
        ));
    }
    for (what, keys) in [
        ("agents", &spec.agents),
        ("channels", &spec.channels),
        ("tenants", &spec.tenants),
    ] {
        if keys.len() > MAX_ROUTING_KEYS {
            return Err(LifecycleError::InvalidCanary(format!(
                "at most {MAX_ROUTING_KEYS} {what} may be listed"
            )));
        }
        if keys.iter().any(|k| k.is_empty() || k.len() > 256) {
            return Err(LifecycleError::InvalidCanary(format!(
                "each of {what} must be 1 to 256 bytes"
            )));
        }
    }
    Ok(())
}

/// One line saying what changed between two deployments.
fn describe_change(from: &Deployment, to: &Deployment) -> String {
    let version = |v: &Option<semver::Version>| {
        v.as_ref()
            .map_or_else(|| "none".into(), ToString::to_string)
    };
    let canary = |d: &Deployment| {
        d.canary.as_ref().map_or_else(
            || "none".into(),
            |c| {
                format!(
                    "{} at {} % (agents {}, channels {}, tenants {})",
                    c.version,
                    f64::from(c.weight_bp) / 100.0,
                    c.agents.len(),
                    c.channels.len(),
                    c.tenants.len()
                )
            },
        )
    };
    format!(
        "active {} -> {}; canary {} -> {}",
        version(&from.active),
        version(&to.active),
        canary(from),
        canary(to)
    )
}
