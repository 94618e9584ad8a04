//! What the API shows of a connector's versions and deployment.

use std::collections::BTreeSet;

use serde::Serialize;

use super::canary::MonitorView;
use super::lifecycle::LifecycleError;
use super::{ConnectorEntry, Registry, StatsView, VersionStats};
use crate::names::ConnectorName;
use crate::store::{AbortRecord, InstallSource};

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

impl ConnectorEntry {
    pub(super) fn installed_list(&self) -> String {
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
    /// A connector's versions and deployment.
    pub fn view(&self, name: &str) -> Result<DeploymentView, LifecycleError> {
        let name = ConnectorName::parse(name)
            .map_err(|_| LifecycleError::UnknownConnector(name.to_owned()))?;
        self.view_of(&name)
    }

    pub(super) fn view_of(&self, name: &ConnectorName) -> Result<DeploymentView, LifecycleError> {
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
}
