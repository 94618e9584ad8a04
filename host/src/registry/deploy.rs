//! Putting a deployment into service: loading what it needs, persisting it,
//! swapping the route in one step, draining what stops serving, and the
//! audit record of the change.

use std::sync::Arc;

use super::canary::{CanaryMonitor, CanaryRule};
use super::lifecycle::{Actor, LifecycleError};
use super::{
    ConnectorEntry, Deployment, InstallError, LoadedConnector, Registry, Route, RoutedCanary,
};
use crate::capabilities::now_ms;
use crate::names::ConnectorName;
use crate::store::{AuditRecord, DeploymentRecord, StoredEvent, blocking};

impl Deployment {
    pub(super) fn to_record(&self) -> DeploymentRecord {
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

impl Deployment {
    /// Makes `version` active, remembering the one it replaces; a canary ends.
    pub(super) fn activate(&mut self, version: &semver::Version) {
        if self.active.as_ref() != Some(version) {
            self.previous = self.active.replace(version.clone());
        }
        self.canary = None;
    }

    /// This deployment with `version` active.
    pub(super) fn activated(&self, version: &semver::Version) -> Self {
        let mut next = self.clone();
        next.activate(version);
        next
    }
}

/// One change to a deployment, as the log, the audit log and subscribers see it.
pub(super) struct Change<'a> {
    /// Who made it.
    pub actor: Actor,
    /// What it was, as a dotted verb.
    pub action: &'a str,
    /// The version it is about.
    pub version: Option<&'a semver::Version>,
    /// Details for people.
    pub detail: String,
    /// An event to store with it.
    pub event: Option<StoredEvent>,
}

impl Registry {
    /// Loads what `next` needs, persists it, records the change, then swaps
    /// the route and drains what no longer serves. The record comes before
    /// the swap, so whoever sees the change can already read why it happened.
    pub(super) async fn deploy(
        &self,
        name: &ConnectorName,
        next: Deployment,
        change: Change<'_>,
    ) -> Result<(), LifecycleError> {
        let route = self.build_route(name, &next).await?;
        self.persist_deployment(name, &next).await?;
        let Change {
            actor,
            action,
            version,
            detail,
            event,
        } = change;
        tracing::info!(connector = %name, action, actor = actor.as_str(), detail, "deployment changed");
        self.audit(actor, action, name, version, detail).await;
        if let Some(event) = event {
            let ingest = &self.runtime().services().events;
            if let Err(err) = ingest.ingest(vec![event]).await {
                tracing::error!(connector = %name, action, error = %err, "could not store the event");
            }
        }
        let old_route = {
            let mut connectors = self.write();
            let entry = connectors.entry(name.clone()).or_default();
            entry.deployment = next;
            std::mem::replace(&mut entry.route, route.clone())
        };
        if let Some(new) = &route {
            for loaded in new.versions() {
                loaded.grants.drain.clear();
            }
        }
        if let Some(old) = old_route {
            self.drain(&old, route.as_deref());
        }
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
        Ok(Some(Arc::new(Route { active, canary })))
    }

    /// Starts the drain deadline of every version of `old` that `new` does not serve.
    pub(super) fn drain(&self, old: &Route, new: Option<&Route>) {
        let serves = |loaded: &Arc<LoadedConnector>| {
            new.is_some_and(|route| route.versions().any(|v| Arc::ptr_eq(v, loaded)))
        };
        for loaded in old.versions() {
            if !serves(loaded) {
                loaded.grants.drain.start(self.policy.drain_deadline);
            }
        }
    }

    /// The loaded version, from memory if it still is, else from its package.
    pub(super) async fn ensure_loaded(
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

    pub(super) async fn persist_deployment(
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
    pub async fn audit(
        &self,
        actor: Actor,
        action: &str,
        name: &ConnectorName,
        version: Option<&semver::Version>,
        detail: String,
    ) {
        let record = AuditRecord {
            time_ms: now_ms(),
            actor: match actor {
                Actor::Api => crate::auth::request_caller().unwrap_or_else(|| "api".into()),
                other => other.as_str().into(),
            },
            action: action.into(),
            connector: name.to_string(),
            version: version.map(ToString::to_string),
            detail,
            ..AuditRecord::default()
        };
        let store = self.store.clone();
        if let Err(err) = blocking(move || store.append_audit(&record)).await {
            tracing::error!(connector = %name, action, error = %err, "could not write the audit record");
        }
    }
}

/// One line saying what changed between two deployments.
pub(super) fn describe_change(from: &Deployment, to: &Deployment) -> String {
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
