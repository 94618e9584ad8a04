//! Idempotency keys: a repeated call with the same key and body gets the
//! first answer again, without running the connector.
//!
//! Answers are kept in the store (so they survive a restart) for the
//! configured time, scoped by tenant, connector and operation. A final
//! answer is kept — a success, or a failure the caller caused or the
//! connector called permanent; a transient failure (429, 5xx) is not, so the
//! caller may try again with the same key. The same key with another body is
//! refused, and so is a second call while the first still runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::capabilities::now_ms;
use crate::runtime::compile_cache::sha256_hex;
use crate::store::{IdempotencyStore, IdempotentResult, StoreError, blocking};

/// Longest idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 255;

/// Where a call with an idempotency key stands.
pub enum Claim {
    /// First time: run it, then [`Idempotency::complete`] with the guard.
    Fresh(Pending),
    /// Answered before: send this again.
    Replay(IdempotentResult),
    /// The key was used with another body.
    Mismatch,
    /// A call with this key is running now.
    InProgress,
}

/// A call with an idempotency key that is running; frees the key when dropped.
pub struct Pending {
    key: String,
    request_hash: String,
    running: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

/// Why an idempotency key is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_KEY_BYTES} printable ASCII characters")]
pub struct InvalidKey;

/// Idempotency keys over a store.
pub struct Idempotency {
    store: Arc<dyn IdempotencyStore>,
    ttl: Duration,
    running: Arc<Mutex<HashSet<String>>>,
}

impl Idempotency {
    /// Keys whose answers are kept for `ttl`.
    pub fn new(store: Arc<dyn IdempotencyStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            running: Arc::default(),
        }
    }

    /// Claims `key` for a call of `operation` of `connector` by `tenant`;
    /// `request` is everything that makes the call what it is (its input and
    /// context), so the same key with another request is refused.
    pub async fn claim(
        &self,
        tenant: &str,
        connector: &str,
        operation: &str,
        key: &str,
        request: &[u8],
    ) -> Result<Claim, ClaimError> {
        if key.is_empty()
            || key.len() > MAX_KEY_BYTES
            || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(ClaimError::InvalidKey(InvalidKey));
        }
        let scoped = [tenant, connector, operation, key].join("\0");
        let request_hash = sha256_hex(request);
        // The slot first, the store second: a call finishing in between has
        // stored its answer before freeing the slot, so it is found.
        let inserted = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scoped.clone());
        if !inserted {
            return Ok(Claim::InProgress);
        }
        let pending = Pending {
            key: scoped,
            request_hash,
            running: self.running.clone(),
        };
        let store = self.store.clone();
        let lookup = pending.key.clone();
        let stored = blocking(move || store.get_idempotent(&lookup)).await?;
        let oldest = now_ms().saturating_sub(crate::runtime::limits::millis(self.ttl));
        Ok(match stored.filter(|s| s.stored_at_ms >= oldest) {
            Some(stored) if stored.request_hash == pending.request_hash => Claim::Replay(stored),
            Some(_) => Claim::Mismatch,
            None => Claim::Fresh(pending),
        })
    }

    /// Keeps a final answer for replays; a transient one (429, 5xx) is not
    /// kept. The key is free again once `pending` drops.
    pub async fn complete(
        &self,
        pending: Pending,
        status: u16,
        body: String,
        version: Option<String>,
    ) -> Result<(), StoreError> {
        if status == 429 || status >= 500 {
            return Ok(());
        }
        let result = IdempotentResult {
            request_hash: pending.request_hash.clone(),
            status,
            body,
            version,
            stored_at_ms: now_ms(),
        };
        let store = self.store.clone();
        let key = pending.key.clone();
        blocking(move || store.put_idempotent(&key, &result)).await
    }

    /// Removes answers older than the TTL; returns how many.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let before = now_ms().saturating_sub(crate::runtime::limits::millis(self.ttl));
        blocking(move || store.sweep_idempotent(before)).await
    }
}

/// Why a key could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The key is malformed.
    #[error("{0}")]
    InvalidKey(#[from] InvalidKey),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn idempotency() -> (tempfile::TempDir, Idempotency) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SledStore::open(
                dir.path(),
                std::sync::Arc::new(crate::sealing::Sealer::ephemeral()),
            )
            .expect("store"),
        );
        (dir, Idempotency::new(store, Duration::from_secs(60)))
    }

    async fn claim(idem: &Idempotency, key: &str, body: &str) -> Claim {
        idem.claim("t", "c", "op", key, body.as_bytes())
            .await
            .expect("claim")
    }

    #[tokio::test]
    async fn a_final_answer_is_replayed_for_the_same_body_and_refused_for_another() {
        let (_dir, idem) = idempotency();
        let Claim::Fresh(pending) = claim(&idem, "k1", "{\"a\":1}").await else {
            panic!("the first claim is fresh");
        };
        assert!(matches!(
            claim(&idem, "k1", "{\"a\":1}").await,
            Claim::InProgress
        ));
        idem.complete(pending, 200, "{\"ok\":true}".into(), Some("1.0.0".into()))
            .await
            .expect("complete");
        let Claim::Replay(replayed) = claim(&idem, "k1", "{\"a\":1}").await else {
            panic!("the same body replays");
        };
        assert_eq!(
            (replayed.status, replayed.body.as_str()),
            (200, "{\"ok\":true}")
        );
        assert!(matches!(
            claim(&idem, "k1", "{\"a\":2}").await,
            Claim::Mismatch
        ));
        assert!(
            matches!(claim(&idem, "k2", "{\"a\":1}").await, Claim::Fresh(_)),
            "another key is independent"
        );
    }

    #[tokio::test]
    async fn a_transient_failure_is_not_kept_so_the_caller_may_retry() {
        let (_dir, idem) = idempotency();
        let Claim::Fresh(pending) = claim(&idem, "k", "{}").await else {
            panic!("fresh");
        };
        idem.complete(pending, 503, "{}".into(), None)
            .await
            .expect("complete");
        assert!(matches!(claim(&idem, "k", "{}").await, Claim::Fresh(_)));
    }

    #[tokio::test]
    async fn malformed_keys_are_refused() {
        let (_dir, idem) = idempotency();
        for key in ["", "tab\there", &"x".repeat(256)] {
            assert!(
                idem.claim("t", "c", "op", key, b"{}").await.is_err(),
                "{key:?}"
            );
        }
    }
}
