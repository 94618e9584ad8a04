//! A small key-value store, private to the connector and the call's tenant.
//!
//! Every call runs in a fresh instance; this is where state that outlives a call
//! lives (an order's link id, a cached access token).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::host;

/// The value stored under `key`, or `None` if absent or expired.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    host::kv_get(key)
}

/// Stores `value` under `key`, expiring after `ttl` if given.
///
/// Fails with `kv_value_too_large` or `kv_key_invalid`.
pub fn set(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), Error> {
    let ttl_ms = ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    host::kv_set(key, value, ttl_ms)
}

/// Stores `value` under `key` only if the key holds no live value, expiring after `ttl` if
/// given; returns whether it stored. Of calls racing for one key exactly one gets `true`,
/// which makes it a lock, a debounce or a single-flight guard.
///
/// Fails with `kv_value_too_large` or `kv_key_invalid`.
pub fn set_if_absent(key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, Error> {
    let ttl_ms = ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
    host::kv_set_if_absent(key, value, ttl_ms)
}

/// Removes `key`; removing an absent key succeeds.
pub fn delete(key: &str) -> Result<(), Error> {
    host::kv_delete(key)
}

/// The value stored under `key` parsed as JSON, or `None` if absent or expired.
///
/// Fails with `kv_value_invalid` when the stored value does not parse as `T`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    let Some(bytes) = get(key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(
            "kv_value_invalid",
            format!("value under `{key}` is not the expected JSON: {e}"),
        )
    })
}

/// Stores `value` as JSON under `key`, expiring after `ttl` if given.
pub fn set_json<T: Serialize + ?Sized>(
    key: &str,
    value: &T,
    ttl: Option<Duration>,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|e| {
        Error::new(
            "kv_value_invalid",
            format!("value for `{key}` cannot be written as JSON: {e}"),
        )
    })?;
    set(key, &bytes, ttl)
}
