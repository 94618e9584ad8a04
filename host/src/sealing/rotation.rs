//! Rotating the master key while the host serves.

use std::sync::Arc;

use super::{MasterKeySource, RotateError, Sealer};
use crate::store::{SettingsStore, blocking};

/// The master key ring of a running host, and the secrets it seals.
pub struct MasterKeys {
    source: MasterKeySource,
    sealer: Arc<Sealer>,
    store: Arc<dyn SettingsStore>,
    rotating: tokio::sync::Mutex<()>,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rotated {
    /// The id of the key that seals now.
    pub key_id: String,
    /// Secrets sealed again under it.
    pub resealed: usize,
}

impl MasterKeys {
    /// The ring `sealer`, loaded from `source`, sealing the secrets in `store`.
    pub fn new(
        source: MasterKeySource,
        sealer: Arc<Sealer>,
        store: Arc<dyn SettingsStore>,
    ) -> Self {
        Self {
            source,
            sealer,
            store,
            rotating: tokio::sync::Mutex::new(()),
        }
    }

    /// The id of the key that seals.
    pub fn key_id(&self) -> String {
        self.sealer.current_key_id()
    }

    /// Seals with a new key, re-seals every secret under it, then forgets
    /// the old key. Reads go on throughout: each value names its key, and
    /// both are held until the last value moved. One rotation at a time.
    pub async fn rotate(&self) -> Result<Rotated, RotateError> {
        let _one_at_a_time = self.rotating.lock().await;
        let next = self.source.begin_rotation(&self.sealer)?;
        let store = self.store.clone();
        let resealed = blocking(move || store.reseal_secrets())
            .await
            .map_err(RotateError::Store)?;
        self.source.finish_rotation(&self.sealer, &next)?;
        tracing::info!(key_id = %self.key_id(), resealed, "rotated the master key");
        Ok(Rotated {
            key_id: self.key_id(),
            resealed,
        })
    }
}
