//! Start-up: rebuilding the registry from the store.
//!
//! Every installed version comes back with its deployment: the active
//! version, the previous one and a running canary with its seed, so the
//! canary resumes with the same cohort. Counters and the canary's sliding
//! window start empty. A damaged record or a version that no longer loads is
//! reported and skipped; the others serve. A canary that no longer loads is
//! aborted (recorded like any abort), so its active version serves.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use super::canary::CanaryRule;
use super::deploy::Change;
use super::lifecycle::{Actor, LifecycleError};
use super::manifest::Manifest;
use super::{ConnectorEntry, Deployment, Registry, Route, VersionEntry, VersionStats};
use crate::capabilities::now_ms;
use crate::names::ConnectorName;
use crate::store::{AbortRecord, StoreError, blocking};

impl Registry {
    /// Loads every connector the store holds; returns the failures, one line each.
    pub async fn restore(&self) -> Result<Vec<String>, StoreError> {
        let _changing = self.changes.lock().await;
        let store = self.store.clone();
        let (versions, deployments) = blocking(move || {
            Ok::<_, StoreError>((store.list_versions()?, store.list_deployments()?))
        })
        .await?;
        let mut failures = Vec::new();
        for (key, record) in versions {
            let parsed = record.map_err(|err| err.to_string()).and_then(|record| {
                Manifest::parse(&record.manifest, &self.defaults, &self.ceilings)
                    .map(|manifest| (record, manifest))
                    .map_err(|err| err.to_string())
            });
            match parsed {
                Ok((record, manifest)) => {
                    let version = VersionEntry {
                        record,
                        manifest,
                        stats: Arc::new(VersionStats::default()),
                        loaded: Weak::new(),
                    };
                    self.write()
                        .entry(version.manifest.name.clone())
                        .or_default()
                        .versions
                        .insert(version.manifest.version.clone(), version);
                }
                Err(err) => failures.push(format!("{key}: {err}")),
            }
        }
        let mut deployments: BTreeMap<String, _> = deployments.into_iter().collect();
        let names: Vec<ConnectorName> = self.read().keys().cloned().collect();
        for name in names {
            let deployment = match deployments.remove(name.as_str()) {
                Some(Ok(record)) => Deployment::from_record(name.as_str(), &record),
                Some(Err(err)) => Err(err.to_string()),
                None => Err("no deployment record".into()),
            };
            let deployment = deployment.unwrap_or_else(|err| {
                let fallback = self.newest_version_deployment(&name);
                failures.push(format!(
                    "{name}: {err}; serving the newest version, {}",
                    fallback
                        .active
                        .as_ref()
                        .map_or_else(|| "none".into(), ToString::to_string)
                ));
                fallback
            });
            self.restore_route(&name, deployment, &mut failures).await;
        }
        Ok(failures)
    }

    fn newest_version_deployment(&self, name: &ConnectorName) -> Deployment {
        Deployment {
            active: self
                .read()
                .get(name)
                .and_then(|entry| entry.versions.keys().next_back().cloned()),
            ..Deployment::default()
        }
    }

    async fn restore_route(
        &self,
        name: &ConnectorName,
        deployment: Deployment,
        failures: &mut Vec<String>,
    ) {
        match self.build_route(name, &deployment).await {
            Ok(route) => self.set_entry(name, deployment, route),
            Err(err) => {
                failures.push(format!("{name}: {err}"));
                self.set_entry(name, deployment.clone(), None);
                if let Some(canary) = &deployment.canary {
                    self.abort_unloadable_canary(name, deployment.clone(), canary, err, failures)
                        .await;
                }
            }
        }
    }

    /// A canary whose versions no longer load is aborted for good, so the
    /// active version serves and the deployment says why.
    async fn abort_unloadable_canary(
        &self,
        name: &ConnectorName,
        deployment: Deployment,
        canary: &CanaryRule,
        err: LifecycleError,
        failures: &mut Vec<String>,
    ) {
        let reason = format!("could not be loaded at start: {err}");
        let without_canary = Deployment {
            canary: None,
            last_abort: Some(AbortRecord {
                version: canary.version.to_string(),
                reason: reason.clone(),
                at_ms: now_ms(),
                automatic: true,
            }),
            ..deployment
        };
        let change = Change {
            actor: Actor::Startup,
            action: "canary.aborted",
            version: Some(&canary.version),
            detail: reason,
            event: None,
        };
        match self.deploy(name, without_canary, change).await {
            Ok(()) => failures.push(format!(
                "{name}: aborted the canary of {}; the active version serves",
                canary.version
            )),
            Err(err) => failures.push(format!("{name}: {err}")),
        }
    }

    fn set_entry(&self, name: &ConnectorName, deployment: Deployment, route: Option<Arc<Route>>) {
        let mut connectors = self.write();
        let entry: &mut ConnectorEntry = connectors.entry(name.clone()).or_default();
        entry.deployment = deployment;
        entry.route = route;
    }
}
