//! The call pipeline: what every invoke goes through around the connector
//! call itself, in this order — admission (rate limits per connector and per
//! tenant, then a concurrency limit that sheds load instead of queueing),
//! the output cache, the connector's circuit breaker (with the operation's
//! fallback while it is open), and retries of retryable failures within the
//! call's one deadline. Idempotency keys wrap all of it at the API.
//!
//! Rate limits and the cache are per connector, the breaker per connector
//! version. The state here is per host and in memory; it follows the serving
//! version's `[pipeline]` settings and is rebuilt when they change.

pub mod breaker;
pub mod cache;
pub mod idempotency;
mod pipelines;
pub mod policy;
pub mod rate_limit;
pub mod retry;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use self::breaker::{BreakerView, CircuitBreaker, Outcome};
use self::cache::{CacheKey, OutputCache};
use self::policy::{Fallback, PipelinePolicy};
use self::rate_limit::{Admission, AdmissionView, Refused};
use crate::capabilities::UpstreamReport;
use crate::model::CallContext;
use crate::registry::LoadedConnector;
use crate::runtime::call::CallError;
use crate::runtime::{Invocation, Runtime};

pub use pipelines::{OverrideError, Pipelines};

/// The pipeline state of one connector.
pub struct ConnectorPipeline {
    policy: Arc<PipelinePolicy>,
    admission: Admission,
    /// One breaker per version, so a failing canary candidate cannot cut
    /// off the active version (the canary's own rollback handles it).
    breakers: RwLock<BTreeMap<semver::Version, Arc<CircuitBreaker>>>,
    cache: OutputCache,
}

/// How a call was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The connector ran the operation (after `attempts` tries).
    Ran {
        /// Tries made, retries included.
        attempts: u32,
        /// Whether the output went into the cache (the cache missed).
        cacheable: bool,
    },
    /// From the output cache.
    Cached,
    /// The fallback, because the breaker is open.
    Fallback,
}

/// A call's answer.
#[derive(Debug)]
pub struct Answer {
    /// The JSON output.
    pub output: Arc<str>,
    /// How it was produced.
    pub served: Served,
}

/// Why the pipeline answered without output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PipelineError {
    /// A rate limit refused the call.
    #[error("{0}")]
    Refused(Refused),
    /// The breaker is open and the operation has no fallback.
    #[error("the circuit breaker of `{connector}` is open after repeated failures; retry after {} ms", retry_after.as_millis())]
    CircuitOpen {
        /// The connector.
        connector: String,
        /// When a probe may go through.
        retry_after: Duration,
    },
    /// The call failed (after any retries).
    #[error("{error}")]
    Call {
        /// The failure that ended it.
        error: CallError,
    },
}

/// One call as the pipeline sees it.
pub struct PipelineCall<'a> {
    /// The version serving it.
    pub loaded: &'a LoadedConnector,
    /// Who it is for.
    pub context: Arc<CallContext>,
    /// The operation.
    pub operation: &'a str,
    /// The parsed input (for the cache key).
    pub input: &'a serde_json::Value,
    /// The input as text.
    pub input_text: &'a str,
    /// Whether a retryable failure may be retried: the operation is
    /// idempotent or the call carries an idempotency key.
    pub may_retry: bool,
}

impl ConnectorPipeline {
    fn new(policy: Arc<PipelinePolicy>) -> Self {
        Self {
            admission: Admission::new(&policy.rate),
            breakers: RwLock::default(),
            cache: OutputCache::new(policy.cache_max_entries),
            policy,
        }
    }

    /// Runs one call through admission, cache, breaker and retries.
    pub async fn call(
        &self,
        runtime: &Runtime,
        call: PipelineCall<'_>,
    ) -> Result<Answer, PipelineError> {
        let _admitted = self
            .admission
            .admit(call.context.tenant.as_str())
            .map_err(PipelineError::Refused)?;
        let op_policy = self.policy.operation(call.operation);
        let cache_ttl = op_policy
            .and_then(|p| p.cache_ttl_ms)
            .map(Duration::from_millis);
        let cache_key = cache_ttl.map(|_| {
            CacheKey::new(
                &call.loaded.package_hash,
                call.operation,
                call.context.tenant.as_str(),
                call.input,
            )
        });
        if let Some(output) = cache_key.as_ref().and_then(|key| self.cache.get(key)) {
            return Ok(Answer {
                output,
                served: Served::Cached,
            });
        }
        let started = Instant::now();
        let breaker = self.breaker(&call.loaded.manifest.version);
        let permit = match breaker.acquire(started) {
            Ok(permit) => permit,
            Err(open) => {
                return self
                    .fallback(
                        runtime,
                        &call,
                        op_policy.and_then(|p| p.fallback.as_ref()),
                        open.retry_after,
                    )
                    .await;
            }
        };
        let result = self.run_with_retries(runtime, &call).await;
        let failed = result.as_ref().is_err_and(
            |err| matches!(err, PipelineError::Call { error, .. } if counts_against(error)),
        );
        breaker.record(
            permit,
            Instant::now(),
            Outcome {
                failed,
                latency: started.elapsed(),
            },
        );
        let (output, attempts) = result?;
        let cacheable = cache_key.is_some();
        if let (Some(key), Some(ttl)) = (cache_key, cache_ttl) {
            self.cache.put(key, output.clone(), ttl);
        }
        Ok(Answer {
            output,
            served: Served::Ran {
                attempts,
                cacheable,
            },
        })
    }

    /// The output and the number of tries it took.
    async fn run_with_retries(
        &self,
        runtime: &Runtime,
        call: &PipelineCall<'_>,
    ) -> Result<(Arc<str>, u32), PipelineError> {
        let loaded = call.loaded;
        let deadline = Instant::now() + loaded.grants.limits.deadline;
        let mut attempts = 0;
        let mut earlier: Option<CallError> = None;
        loop {
            attempts += 1;
            let upstream = Arc::new(UpstreamReport::default());
            let invocation = Invocation {
                context: call.context.clone(),
                operation: call.operation,
                input: call.input_text,
                deadline,
                upstream: upstream.clone(),
            };
            let error = match runtime
                .invoke(&loaded.prepared, &loaded.grants, invocation)
                .await
            {
                Ok(output) => return Ok((output.into(), attempts)),
                Err(error) => match (error, earlier.take()) {
                    // A retry cut off by the deadline says less than the
                    // failure that led to it.
                    (CallError::DeadlineExceeded { .. }, Some(earlier)) => {
                        return Err(PipelineError::Call { error: earlier });
                    }
                    (error, _) => error,
                },
            };
            let time_left = deadline.saturating_duration_since(Instant::now());
            let delay = (call.may_retry && is_retryable(&error))
                .then(|| {
                    self.policy.retry.next_delay(
                        attempts,
                        upstream.retry_after(),
                        time_left,
                        &mut rand::rng(),
                    )
                })
                .flatten();
            match delay {
                Some(delay) => {
                    earlier = Some(error);
                    tokio::time::sleep(delay).await;
                }
                None => return Err(PipelineError::Call { error }),
            }
        }
    }

    async fn fallback(
        &self,
        runtime: &Runtime,
        call: &PipelineCall<'_>,
        fallback: Option<&Fallback>,
        retry_after: Duration,
    ) -> Result<Answer, PipelineError> {
        let output: Arc<str> = match fallback {
            None => {
                return Err(PipelineError::CircuitOpen {
                    connector: call.loaded.manifest.name.to_string(),
                    retry_after,
                });
            }
            Some(Fallback::Value(value)) => value.to_string().into(),
            Some(Fallback::Operation(other)) => {
                let loaded = call.loaded;
                let invocation = Invocation {
                    context: call.context.clone(),
                    operation: other,
                    input: call.input_text,
                    deadline: Instant::now() + loaded.grants.limits.deadline,
                    upstream: Arc::default(),
                };
                runtime
                    .invoke(&loaded.prepared, &loaded.grants, invocation)
                    .await
                    .map_err(|error| PipelineError::Call { error })?
                    .into()
            }
        };
        Ok(Answer {
            output,
            served: Served::Fallback,
        })
    }

    fn breaker(&self, version: &semver::Version) -> Arc<CircuitBreaker> {
        let existing = self
            .breakers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(version)
            .cloned();
        existing.unwrap_or_else(|| {
            self.breakers
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(version.clone())
                .or_insert_with(|| Arc::new(CircuitBreaker::new(self.policy.breaker.clone())))
                .clone()
        })
    }

    /// The breakers, admission and cache as they are now.
    pub fn view(&self) -> PipelineView {
        let now = Instant::now();
        PipelineView {
            policy: (*self.policy).clone(),
            breakers: self
                .breakers
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(version, breaker)| (version.to_string(), breaker.state(now)))
                .collect(),
            admission: self.admission.view(),
            cached_outputs: self.cache.len(),
        }
    }
}

/// A connector's pipeline state, for the API.
#[derive(Debug, serde::Serialize)]
pub struct PipelineView {
    /// The settings in force.
    pub policy: PipelinePolicy,
    /// The circuit breaker of each version that has served a call, by version.
    pub breakers: BTreeMap<String, BreakerView>,
    /// Rate and concurrency limits.
    pub admission: AdmissionView,
    /// Outputs in the cache.
    pub cached_outputs: u64,
}

/// The code the http capability gives while an upstream's breaker is open.
pub const UPSTREAM_CIRCUIT_OPEN: &str = "circuit_open";

/// Whether a failure may succeed if tried again: a connector error it
/// calls retryable (an upstream 429 or 5xx, a timeout) or a full instance pool.
fn is_retryable(err: &CallError) -> bool {
    match err {
        CallError::Connector(err) => err.retryable,
        CallError::CapacityExhausted => true,
        _ => false,
    }
}

/// Whether a failure says something about the connector's health (for the
/// breaker and the canary): a business answer, a full pool, a drain cut-off
/// and an upstream whose own breaker is open (shared by every connector
/// calling it) do not.
pub fn counts_against(err: &CallError) -> bool {
    match err {
        CallError::Connector(err) => err.retryable && err.code != UPSTREAM_CIRCUIT_OPEN,
        CallError::CapacityExhausted | CallError::VersionUnloaded => false,
        _ => true,
    }
}
