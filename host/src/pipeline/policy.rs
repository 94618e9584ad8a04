//! How a connector's calls are handled, from the `[pipeline]` table of its
//! manifest or an operator's override of it.
//!
//! ```toml
//! [pipeline.rate]                 # admission: see `rate_limit`
//! rate_per_second = 200
//! tenant_rate_per_second = 50
//! max_concurrency = 64
//!
//! [pipeline.retry]                # see `retry`
//! attempts = 3
//!
//! [pipeline.breaker]              # see `breaker`
//! failure_rate_percent = 50
//!
//! [pipeline.operations.track]     # per operation
//! cache_ttl_ms = 30000
//! fallback = { value = { status = "unknown" } }   # or { operation = "track-offline" }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::breaker::BreakerPolicy;
use super::rate_limit::RatePolicy;
use super::retry::RetryPolicy;

/// Longest time a cached output may live.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The pipeline settings of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelinePolicy {
    /// Rate limits and the concurrency limit.
    #[serde(default)]
    pub rate: RatePolicy,
    /// Retries of retryable failures.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// The connector's circuit breaker.
    #[serde(default)]
    pub breaker: BreakerPolicy,
    /// Most cached outputs kept for the connector.
    #[serde(default = "default_cache_entries")]
    pub cache_max_entries: u64,
    /// Settings per operation, by operation name.
    #[serde(default)]
    pub operations: BTreeMap<String, OperationPolicy>,
}

fn default_cache_entries() -> u64 {
    10_000
}

impl Default for PipelinePolicy {
    fn default() -> Self {
        Self {
            rate: RatePolicy::default(),
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
            cache_max_entries: default_cache_entries(),
            operations: BTreeMap::new(),
        }
    }
}

/// The pipeline settings of one operation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationPolicy {
    /// Cache successful outputs this long; absent means not cacheable.
    pub cache_ttl_ms: Option<u64>,
    /// What to answer while the circuit breaker is open.
    pub fallback: Option<Fallback>,
}

/// An operation's answer while the connector's breaker is open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Fallback {
    /// A fixed JSON output.
    Value(serde_json::Value),
    /// Another operation of the same connector, called with the same input.
    Operation(String),
}

impl PipelinePolicy {
    /// Checks every setting, and that operations named exist among `operations`.
    pub fn check(&self, operations: &[&str]) -> Result<(), String> {
        self.rate
            .check()
            .map_err(|err| format!("pipeline.rate: {err}"))?;
        self.retry
            .check()
            .map_err(|err| format!("pipeline.retry: {err}"))?;
        self.breaker
            .check()
            .map_err(|err| format!("pipeline.breaker: {err}"))?;
        if self.cache_max_entries == 0 {
            return Err("pipeline.cache_max_entries must be at least 1".into());
        }
        for (name, policy) in &self.operations {
            let at = format!("pipeline.operations.{name}");
            if !operations.contains(&name.as_str()) {
                return Err(format!("{at}: the connector has no operation `{name}`"));
            }
            if let Some(ttl) = policy.cache_ttl_ms
                && (ttl == 0 || Duration::from_millis(ttl) > MAX_CACHE_TTL)
            {
                return Err(format!(
                    "{at}.cache_ttl_ms must be between 1 and {}",
                    MAX_CACHE_TTL.as_millis()
                ));
            }
            if let Some(Fallback::Operation(other)) = &policy.fallback {
                if other == name {
                    return Err(format!("{at}.fallback names the operation itself"));
                }
                if !operations.contains(&other.as_str()) {
                    return Err(format!(
                        "{at}.fallback: the connector has no operation `{other}`"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The settings of `operation`, if it has any.
    pub fn operation(&self, operation: &str) -> Option<&OperationPolicy> {
        self.operations.get(operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PipelinePolicy {
        toml::from_str(text).expect("valid pipeline table")
    }

    #[test]
    fn a_value_fallback_and_an_operation_fallback_parse_from_toml() {
        let policy = parse(
            r#"
            [operations.track]
            cache_ttl_ms = 30000
            fallback = { value = { status = "unknown", events = [] } }

            [operations.quote]
            fallback = { operation = "track" }
            "#,
        );
        assert_eq!(
            policy.operation("track").and_then(|p| p.fallback.clone()),
            Some(Fallback::Value(
                serde_json::json!({ "status": "unknown", "events": [] })
            ))
        );
        assert_eq!(
            policy.operation("quote").and_then(|p| p.fallback.clone()),
            Some(Fallback::Operation("track".into()))
        );
        assert_eq!(policy.operation("other"), None);
        assert!(policy.check(&["track", "quote"]).is_ok());
    }

    #[test]
    fn settings_for_operations_the_connector_lacks_are_refused() {
        let unknown = parse("[operations.nope]\ncache_ttl_ms = 10\n");
        assert!(
            unknown
                .check(&["track"])
                .expect_err("refused")
                .contains("no operation `nope`")
        );
        let to_itself = parse("[operations.track]\nfallback = { operation = \"track\" }\n");
        assert!(
            to_itself
                .check(&["track"])
                .expect_err("refused")
                .contains("itself")
        );
        let zero_ttl = parse("[operations.track]\ncache_ttl_ms = 0\n");
        assert!(zero_ttl.check(&["track"]).is_err());
    }

    #[test]
    fn no_table_means_the_defaults_and_they_pass_the_check() {
        assert_eq!(parse(""), PipelinePolicy::default());
        assert!(PipelinePolicy::default().check(&[]).is_ok());
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<PipelinePolicy>("cache_ttl = 5\n").is_err());
        assert!(toml::from_str::<PipelinePolicy>("[operations.x]\nttl = 5\n").is_err());
    }
}
