//! Every change to what serves — activate, roll back, canary, promote,
//! abort, remove — and the types the lifecycle speaks (`install.rs` adds
//! versions).
//!
//! Each change runs under the registry's one change lock, works out the
//! deployment it wants, and hands it to `deploy`, which puts it into service.

use std::collections::BTreeSet;

use super::canary::{CanaryRule, FULL_WEIGHT_BP, MAX_ROUTING_KEYS};
use super::deploy::{Change, describe_change};
use super::signature::SignatureError;
use super::view::DeploymentView;
use super::{Deployment, InstallError, Registry};
use crate::capabilities::now_ms;
use crate::names::ConnectorName;
use crate::store::{AbortRecord, StoreError, StoredEvent, blocking};

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
    /// The automatic rollback has judged the candidate and is aborting it.
    #[error("the canary of `{0}` failed its checks and is being rolled back; see last_abort")]
    CanaryTripped(String),
    /// A version in a request is not a semantic version.
    #[error("`{0}` is not a semantic version (such as 1.2.0)")]
    InvalidVersion(String),
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
    /// Start-up, restoring what the store holds.
    Startup,
    /// A provider's request to an inbound webhook.
    Webhook,
}

impl Actor {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Actor::Api => "api",
            Actor::PluginsDir => "plugins-dir",
            Actor::AutoRollback => "auto-rollback",
            Actor::Startup => "startup",
            Actor::Webhook => "webhook",
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

fn parse_version(text: &str) -> Result<semver::Version, LifecycleError> {
    text.parse()
        .map_err(|_| LifecycleError::InvalidVersion(text.to_owned()))
}

impl Registry {
    /// Makes `version` the active version; a running canary ends.
    pub async fn activate(
        &self,
        name: &str,
        version: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        self.change(name, actor, "version.activated", |name, current| {
            let version = self.installed_version(name, version)?;
            Ok((current.activated(&version), version))
        })
        .await
    }

    /// Makes the previous version active again.
    pub async fn rollback(
        &self,
        name: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        self.change(name, actor, "version.rolled_back", |name, current| {
            let previous = current
                .previous
                .clone()
                .ok_or_else(|| LifecycleError::NoPreviousVersion(name.to_string()))?;
            Ok((current.activated(&previous), previous))
        })
        .await
    }

    /// Starts a canary, or changes the running one.
    pub async fn start_canary(
        &self,
        name: &str,
        spec: CanarySpec,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        self.change(name, actor, "canary.started", |name, current| {
            self.installed_version(name, &spec.version.to_string())?;
            check_canary(current, &spec)?;
            let version = spec.version.clone();
            let next = Deployment {
                canary: Some(self.canary_rule(current, spec)),
                ..current.clone()
            };
            Ok((next, version))
        })
        .await
    }

    /// Makes the canary's candidate the active version.
    pub async fn promote(
        &self,
        name: &str,
        actor: Actor,
    ) -> Result<DeploymentView, LifecycleError> {
        self.change(name, actor, "canary.promoted", |name, current| {
            let candidate = current
                .canary
                .as_ref()
                .map(|c| c.version.clone())
                .ok_or_else(|| LifecycleError::NoCanary(name.to_string()))?;
            let tripped = self
                .route_of(name.as_str())
                .and_then(|route| route.canary.as_ref().map(|c| c.monitor.tripped()))
                .unwrap_or(false);
            if tripped {
                return Err(LifecycleError::CanaryTripped(name.to_string()));
            }
            Ok((current.activated(&candidate), candidate))
        })
        .await
    }

    /// One change of a deployment under the change lock: `next` says what the
    /// deployment becomes and which version the change is about.
    async fn change(
        &self,
        name: &str,
        actor: Actor,
        action: &str,
        next: impl FnOnce(
            &ConnectorName,
            &Deployment,
        ) -> Result<(Deployment, semver::Version), LifecycleError>,
    ) -> Result<DeploymentView, LifecycleError> {
        let _changing = self.changes.lock().await;
        let (name, current) = self.deployment_of(name)?;
        let (next, version) = next(&name, &current)?;
        let detail = describe_change(&current, &next);
        let change = Change {
            actor,
            action,
            version: Some(&version),
            detail,
            event: None,
        };
        self.deploy(&name, next, change).await?;
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
            // Ended or removed meanwhile: nothing left to roll back.
            Err(LifecycleError::NoCanary(_) | LifecycleError::UnknownConnector(_)) => Ok(()),
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
        let change = Change {
            actor,
            action: "canary.aborted",
            version: Some(&canary.version),
            detail: reason.to_owned(),
            event: Some(event),
        };
        self.deploy(name, next, change).await?;
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
        let parsed = parse_version(version)?;
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
    pub(super) fn canary_rule(&self, current: &Deployment, spec: CanarySpec) -> CanaryRule {
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
