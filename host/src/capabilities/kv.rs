//! `kv`: a small key-value store private to one connector and one tenant.
//!
//! Keys are scoped by connector and by the call's tenant, so neither another
//! connector nor another tenant can read them. Values may carry a TTL.

use std::time::Duration;

use super::{CallCapabilities, now_ms};
use crate::model::ConnectorError;
use crate::runtime::limits::millis;
use crate::store::{KvScope, StoreError};

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

fn scope(caps: &CallCapabilities) -> KvScope {
    KvScope {
        connector: caps.grants.name.to_string(),
        tenant: caps.context.tenant.to_string(),
    }
}

fn check_key(key: &str) -> Result<(), ConnectorError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\0') {
        return Err(ConnectorError::permanent(
            "kv_key_invalid",
            format!("keys are 1-{MAX_KEY_BYTES} bytes without NUL"),
        ));
    }
    Ok(())
}

fn store_failed(err: StoreError) -> ConnectorError {
    tracing::error!(error = %err, "kv store failed");
    ConnectorError::transient("kv_failed", "the key-value store is unavailable")
}

/// The live value of `key`.
pub fn get(caps: &CallCapabilities, key: &str) -> Result<Option<Vec<u8>>, ConnectorError> {
    check_key(key)?;
    caps.services
        .kv
        .kv_get(&scope(caps), key, now_ms())
        .map_err(store_failed)
}

fn check_value(value: &[u8]) -> Result<(), ConnectorError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(ConnectorError::permanent(
            "kv_value_too_large",
            format!(
                "values are at most {MAX_VALUE_BYTES} bytes; this one has {}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Stores `value` under `key`, expiring after `ttl` if given.
pub fn set(
    caps: &CallCapabilities,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<(), ConnectorError> {
    check_key(key)?;
    check_value(value)?;
    let expires_at = ttl.map(|ttl| now_ms().saturating_add(millis(ttl)));
    caps.services
        .kv
        .kv_set(&scope(caps), key, value, expires_at)
        .map_err(store_failed)
}

/// Stores `value` under `key` only if it holds no live value; returns whether it stored.
pub fn set_if_absent(
    caps: &CallCapabilities,
    key: &str,
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<bool, ConnectorError> {
    check_key(key)?;
    check_value(value)?;
    let now = now_ms();
    let expires_at = ttl.map(|ttl| now.saturating_add(millis(ttl)));
    caps.services
        .kv
        .kv_set_if_absent(&scope(caps), key, value, expires_at, now)
        .map_err(store_failed)
}

/// Removes `key`.
pub fn delete(caps: &CallCapabilities, key: &str) -> Result<(), ConnectorError> {
    check_key(key)?;
    caps.services
        .kv
        .kv_delete(&scope(caps), key)
        .map_err(store_failed)
}
