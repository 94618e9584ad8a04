//! Every connector's pipeline state on this host, and operators' overrides
//! of the `[pipeline]` settings, which replace the manifest's for every
//! version of a connector until removed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::ConnectorPipeline;
use super::policy::PipelinePolicy;
use crate::registry::LoadedConnector;
use crate::store::{PipelineOverrideStore, StoreError, blocking};

/// Why an override was refused.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// The settings are not valid for the connector.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Pipeline state per connector, and the operators' overrides.
pub struct Pipelines {
    store: Arc<dyn PipelineOverrideStore>,
    overrides: RwLock<HashMap<String, Arc<PipelinePolicy>>>,
    connectors: RwLock<HashMap<String, Arc<ConnectorPipeline>>>,
}

impl Pipelines {
    /// The state over `store`, with the overrides it holds (a damaged one
    /// is logged and skipped, so the manifest's settings apply).
    pub fn open(store: Arc<dyn PipelineOverrideStore>) -> Result<Self, StoreError> {
        let mut overrides = HashMap::new();
        for (name, text) in store.list_pipeline_overrides()? {
            match serde_json::from_str::<PipelinePolicy>(&text) {
                Ok(policy) => {
                    overrides.insert(name, Arc::new(policy));
                }
                Err(err) => {
                    tracing::warn!(connector = name, error = %err, "ignoring a damaged pipeline override")
                }
            }
        }
        Ok(Self {
            store,
            overrides: RwLock::new(overrides),
            connectors: RwLock::default(),
        })
    }

    /// The settings in force for the connector whose active version is `loaded`.
    fn policy_of(&self, loaded: &LoadedConnector) -> Arc<PipelinePolicy> {
        self.overrides
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(loaded.manifest.name.as_str())
            .cloned()
            .unwrap_or_else(|| loaded.manifest.pipeline.clone())
    }

    /// The pipeline of the connector whose active version is `active`, under
    /// the override or that version's settings; rebuilt (fresh buckets,
    /// breakers and cache) when the settings in force changed.
    pub fn of(&self, active: &LoadedConnector) -> Arc<ConnectorPipeline> {
        let name = active.manifest.name.as_str();
        let policy = self.policy_of(active);
        let current = self
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .filter(|p| Arc::ptr_eq(&p.policy, &policy) || p.policy == policy)
            .cloned();
        if let Some(pipeline) = current {
            return pipeline;
        }
        let mut connectors = self.connectors.write().unwrap_or_else(|p| p.into_inner());
        let entry = connectors
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(ConnectorPipeline::new(policy.clone())));
        if entry.policy != policy {
            *entry = Arc::new(ConnectorPipeline::new(policy));
        }
        entry.clone()
    }

    /// Replaces the `[pipeline]` settings of `loaded`'s connector with
    /// `policy`, checked against its operations, and persists it.
    pub async fn set_override(
        &self,
        loaded: &LoadedConnector,
        policy: PipelinePolicy,
    ) -> Result<(), OverrideError> {
        let operations: Vec<&str> = loaded
            .info
            .operations
            .iter()
            .map(|op| op.name.as_str())
            .collect();
        policy.check(&operations).map_err(OverrideError::Invalid)?;
        let text = serde_json::to_string(&policy)
            .map_err(|err| OverrideError::Invalid(err.to_string()))?;
        let name = loaded.manifest.name.to_string();
        let store = self.store.clone();
        let key = name.clone();
        blocking(move || store.put_pipeline_override(&key, &text)).await?;
        self.overrides
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, Arc::new(policy));
        Ok(())
    }

    /// Goes back to the manifest's settings; returns whether an override existed.
    pub async fn remove_override(&self, name: &str) -> Result<bool, StoreError> {
        let store = self.store.clone();
        let key = name.to_owned();
        let existed = blocking(move || store.delete_pipeline_override(&key)).await?;
        self.overrides
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(existed)
    }

    /// Forgets a removed connector's state.
    pub fn forget(&self, name: &str) {
        self.connectors
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.overrides
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Drops the rate-limit state of tenants that have been idle.
    pub fn forget_idle_tenants(&self) {
        let connectors: Vec<Arc<ConnectorPipeline>> = self
            .connectors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for pipeline in connectors {
            pipeline.admission.forget_idle_tenants();
        }
    }
}
