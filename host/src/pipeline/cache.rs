//! The cache of successful outputs of cacheable operations.
//!
//! Keyed by version, operation, tenant and the canonical input (the parsed
//! JSON written back with sorted keys, so key order and spacing do not
//! matter), within one connector's cache. The version in the key means an
//! upgrade or rollback never serves the other version's output. Each entry
//! lives for its operation's TTL; the cache holds at most its bound of
//! entries. Per host, in memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

/// What identifies one cached output within a connector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The package that produced it.
    pub package: String,
    /// The operation.
    pub operation: String,
    /// The tenant it was produced for.
    pub tenant: String,
    /// The input, canonical.
    pub input: String,
}

impl CacheKey {
    /// The key of a call; `input` is the parsed input.
    pub fn new(package: &str, operation: &str, tenant: &str, input: &serde_json::Value) -> Self {
        Self {
            package: package.to_owned(),
            operation: operation.to_owned(),
            tenant: tenant.to_owned(),
            // serde_json's maps are sorted by key, so this is canonical.
            input: input.to_string(),
        }
    }
}

#[derive(Clone)]
struct Entry {
    output: Arc<str>,
    ttl: Duration,
}

struct PerEntryTtl;

impl Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        entry: &Entry,
        _at: Instant,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

/// One connector's output cache.
pub struct OutputCache {
    entries: Cache<CacheKey, Entry>,
}

impl OutputCache {
    /// An empty cache of at most `max_entries` outputs.
    pub fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// The live output stored under `key`.
    pub fn get(&self, key: &CacheKey) -> Option<Arc<str>> {
        self.entries.get(key).map(|entry| entry.output)
    }

    /// Stores `output` under `key` for `ttl`.
    pub fn put(&self, key: CacheKey, output: Arc<str>, ttl: Duration) {
        self.entries.insert(key, Entry { output, ttl });
    }

    /// Entries held now (approximate until pending work runs).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(package: &str, input: &str) -> CacheKey {
        CacheKey::new(
            package,
            "track",
            "acme",
            &serde_json::from_str(input).expect("json"),
        )
    }

    #[test]
    fn key_order_and_spacing_of_the_input_do_not_matter_but_the_package_does() {
        assert_eq!(
            key("1.0.0", r#"{"a":1,"b":2}"#),
            key("1.0.0", r#"{ "b": 2, "a": 1 }"#)
        );
        assert_ne!(key("1.0.0", r#"{"a":1}"#), key("1.1.0", r#"{"a":1}"#));
    }

    #[test]
    fn an_entry_is_served_until_its_ttl_and_not_after() {
        let cache = OutputCache::new(10);
        cache.put(key("1.0.0", "{}"), "out".into(), Duration::from_millis(60));
        assert_eq!(cache.get(&key("1.0.0", "{}")).as_deref(), Some("out"));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(cache.get(&key("1.0.0", "{}")), None);
    }

    #[test]
    fn the_cache_holds_at_most_its_bound() {
        let cache = OutputCache::new(5);
        for i in 0..50 {
            cache.put(
                key("1.0.0", &format!("{{\"i\":{i}}}")),
                "x".into(),
                Duration::from_secs(60),
            );
        }
        assert!(cache.len() <= 5, "{} entries", cache.len());
    }
}
