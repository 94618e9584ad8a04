//! Admission control for one connector: token buckets for the connector and
//! for each tenant, and a cap on calls in flight.
//!
//! This module decides whether a call may start; it does not queue calls,
//! time them out, or turn a refusal into an HTTP response.
//!
//! Checks run in a fixed order, and the order decides who pays for a refused
//! call, because governor spends a token whenever a bucket says yes and has
//! no way to look without spending or to give a token back:
//!
//! 1. the tenant's bucket — a tenant over its own limit is stopped here, so
//!    its excess never touches the budget it shares with other tenants;
//! 2. the connector's bucket — a refusal here has already spent one of the
//!    tenant's tokens (checking the connector first would instead let one
//!    flooding tenant drain the shared bucket and starve every other tenant);
//! 3. a concurrency permit, taken without waiting — a call shed here has
//!    spent a token from both buckets. Taking the permit first would avoid
//!    that, but then calls about to be rate-limited would hold permits for a
//!    moment and shed other tenants' calls.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How fast, and how many at once, calls may enter one connector.
///
/// Every field is optional and `None` means no limit, which is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatePolicy {
    /// Calls per second the connector accepts, over all tenants.
    pub rate_per_second: Option<u32>,
    /// Calls the connector accepts at once after a quiet spell; defaults to
    /// `rate_per_second`.
    pub burst: Option<u32>,
    /// Calls per second accepted from any one tenant.
    pub tenant_rate_per_second: Option<u32>,
    /// Calls one tenant may make at once after a quiet spell; defaults to
    /// `tenant_rate_per_second`.
    pub tenant_burst: Option<u32>,
    /// Calls of the connector running at the same time.
    pub max_concurrency: Option<u32>,
}

impl RatePolicy {
    /// Checks that every limit set is at least 1 and that no burst is set
    /// without the rate it belongs to.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("rate_per_second", self.rate_per_second),
            ("burst", self.burst),
            ("tenant_rate_per_second", self.tenant_rate_per_second),
            ("tenant_burst", self.tenant_burst),
            ("max_concurrency", self.max_concurrency),
        ];
        if let Some((name, _)) = fields.iter().find(|(_, value)| *value == Some(0)) {
            return Err(format!(
                "{name} must be at least 1; leave it out for no limit"
            ));
        }
        if self.burst.is_some() && self.rate_per_second.is_none() {
            return Err("burst is set without rate_per_second".into());
        }
        if self.tenant_burst.is_some() && self.tenant_rate_per_second.is_none() {
            return Err("tenant_burst is set without tenant_rate_per_second".into());
        }
        Ok(())
    }

    fn effective_burst(&self) -> Option<u32> {
        self.rate_per_second.map(|rate| self.burst.unwrap_or(rate))
    }

    fn effective_tenant_burst(&self) -> Option<u32> {
        self.tenant_rate_per_second
            .map(|rate| self.tenant_burst.unwrap_or(rate))
    }
}

/// Which bucket refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The bucket shared by all tenants of the connector.
    Connector,
    /// The bucket of the calling tenant.
    Tenant,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Connector => "connector",
            Scope::Tenant => "tenant",
        })
    }
}

/// Why a call was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A token bucket is empty; the caller should slow down.
    #[error("{scope} rate limit reached; retry after {} ms", retry_after.as_millis())]
    RateLimited {
        /// The bucket that refused.
        scope: Scope,
        /// When the bucket will next have a token, in whole milliseconds and
        /// never zero.
        retry_after: Duration,
    },
    /// As many calls as allowed are already running.
    #[error("{limit} calls are already running, the most this connector allows")]
    Overloaded {
        /// The concurrency limit that was reached.
        limit: u32,
    },
}

/// Proof that a call was admitted; holds its place among the calls in flight
/// until dropped.
#[must_use = "the call counts as in flight only while this is held"]
#[derive(Debug)]
pub struct Admitted<'a> {
    _permit: SemaphorePermit<'a>,
}

/// What [`Admission::view`] reports: the limits in force and current load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdmissionView {
    /// Connector calls per second, if limited.
    pub rate_per_second: Option<u32>,
    /// Connector burst in force, if limited.
    pub burst: Option<u32>,
    /// Per-tenant calls per second, if limited.
    pub tenant_rate_per_second: Option<u32>,
    /// Per-tenant burst in force, if limited.
    pub tenant_burst: Option<u32>,
    /// Most calls in flight, if limited.
    pub max_concurrency: Option<u32>,
    /// Calls admitted and not yet finished.
    pub in_flight: usize,
    /// Tenants whose bucket is currently kept in memory.
    pub tracked_tenants: usize,
}

/// The admission state of one connector; shared by all its calls.
#[derive(Debug)]
pub struct Admission {
    policy: RatePolicy,
    connector: Option<DefaultDirectRateLimiter>,
    tenants: Option<DefaultKeyedRateLimiter<String>>,
    in_flight: Semaphore,
    permits: usize,
}

impl Admission {
    /// Builds the buckets and the concurrency gate for `policy`.
    ///
    /// `policy` should have passed [`RatePolicy::check`]; a zero that slips
    /// through is read as 1, the strictest limit there is. Without a
    /// concurrency limit the gate still counts calls in flight, with tokio's
    /// largest permit count (over 2^60), which no process reaches.
    pub fn new(policy: &RatePolicy) -> Self {
        let connector = quota(policy.rate_per_second, policy.effective_burst())
            .map(DefaultDirectRateLimiter::direct);
        let tenants = quota(
            policy.tenant_rate_per_second,
            policy.effective_tenant_burst(),
        )
        .map(DefaultKeyedRateLimiter::keyed);
        let permits = policy
            .max_concurrency
            .map_or(Semaphore::MAX_PERMITS, |max| {
                usize::try_from(max.max(1)).unwrap_or(Semaphore::MAX_PERMITS)
            });
        Self {
            policy: policy.clone(),
            connector,
            tenants,
            in_flight: Semaphore::new(permits),
            permits,
        }
    }

    /// Admits a call from `tenant`, or says why not; never waits.
    ///
    /// See the module documentation for the order of the checks and which
    /// tokens a refused call has spent.
    pub fn admit(&self, tenant: &str) -> Result<Admitted<'_>, Refused> {
        if let Some(tenants) = &self.tenants {
            tenants
                .check_key(&tenant.to_owned())
                .map_err(|not_until| rate_limited(Scope::Tenant, tenants.clock(), &not_until))?;
        }
        if let Some(connector) = &self.connector {
            connector.check().map_err(|not_until| {
                rate_limited(Scope::Connector, connector.clock(), &not_until)
            })?;
        }
        let permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| Refused::Overloaded {
                limit: u32::try_from(self.permits).unwrap_or(u32::MAX),
            })?;
        Ok(Admitted { _permit: permit })
    }

    /// Drops the buckets of tenants that have been quiet long enough for
    /// their bucket to be full again, so the map does not grow with every
    /// tenant ever seen. Call it periodically; a forgotten tenant starts
    /// again with a full bucket, exactly as if it had been kept.
    pub fn forget_idle_tenants(&self) {
        if let Some(tenants) = &self.tenants {
            tenants.retain_recent();
            tenants.shrink_to_fit();
        }
    }

    /// The limits in force and the current load.
    pub fn view(&self) -> AdmissionView {
        AdmissionView {
            rate_per_second: self.policy.rate_per_second,
            burst: self.policy.effective_burst(),
            tenant_rate_per_second: self.policy.tenant_rate_per_second,
            tenant_burst: self.policy.effective_tenant_burst(),
            max_concurrency: self.policy.max_concurrency,
            in_flight: self
                .permits
                .saturating_sub(self.in_flight.available_permits()),
            tracked_tenants: self.tenants.as_ref().map_or(0, |tenants| tenants.len()),
        }
    }
}

/// The governor quota for a rate and burst, or `None` when there is no rate.
fn quota(rate: Option<u32>, burst: Option<u32>) -> Option<Quota> {
    let at_least_one = |value: u32| NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN);
    let rate = at_least_one(rate?);
    let burst = burst.map_or(rate, at_least_one);
    Some(Quota::per_second(rate).allow_burst(burst))
}

fn rate_limited(
    scope: Scope,
    clock: &DefaultClock,
    not_until: &NotUntil<<DefaultClock as Clock>::Instant>,
) -> Refused {
    let wait = not_until.wait_time_from(clock.now());
    Refused::RateLimited {
        scope,
        retry_after: whole_millis_at_least_one(wait),
    }
}

/// Rounds up to whole milliseconds, and never below 1 ms, so a caller told
/// to come back after `retry_after` does not come back a hair too early.
fn whole_millis_at_least_one(wait: Duration) -> Duration {
    let millis = wait.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(policy: RatePolicy) -> Admission {
        policy.check().expect("test policy is valid");
        Admission::new(&policy)
    }

    /// Admits a call from `tenant` and ends it at once.
    fn assert_admitted(admission: &Admission, tenant: &str) {
        if let Err(refused) = admission.admit(tenant) {
            panic!("{tenant} was refused: {refused}");
        }
    }

    fn refusal(admission: &Admission, tenant: &str) -> Refused {
        admission.admit(tenant).expect_err("call should be refused")
    }

    /// The scope and wait of the rate limit that refuses a call from `tenant`.
    fn rate_limit_refusal(admission: &Admission, tenant: &str) -> (Scope, Duration) {
        match refusal(admission, tenant) {
            Refused::RateLimited { scope, retry_after } => (scope, retry_after),
            other => panic!("expected a rate limit, got {other:?}"),
        }
    }

    // Rates in these tests are 1 per second so that a slow test machine
    // cannot refill a bucket between two calls.

    #[test]
    fn a_burst_of_exactly_burst_calls_passes_and_the_next_waits_at_most_one_interval() {
        let admission = admission(RatePolicy {
            rate_per_second: Some(1),
            burst: Some(3),
            ..RatePolicy::default()
        });
        for _ in 0..3 {
            assert_admitted(&admission, "t");
        }
        let (scope, retry_after) = rate_limit_refusal(&admission, "t");
        assert_eq!(scope, Scope::Connector);
        assert!(retry_after > Duration::ZERO);
        assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
    }

    #[test]
    fn burst_defaults_to_the_rate() {
        let admission = admission(RatePolicy {
            rate_per_second: Some(2),
            ..RatePolicy::default()
        });
        assert_admitted(&admission, "t");
        assert_admitted(&admission, "t");
        assert_eq!(rate_limit_refusal(&admission, "t").0, Scope::Connector);
        assert_eq!(admission.view().burst, Some(2));
    }

    #[test]
    fn one_tenant_with_an_empty_bucket_does_not_limit_another_tenant() {
        let admission = admission(RatePolicy {
            tenant_rate_per_second: Some(1),
            tenant_burst: Some(2),
            ..RatePolicy::default()
        });
        assert_admitted(&admission, "a");
        assert_admitted(&admission, "a");
        assert_eq!(rate_limit_refusal(&admission, "a").0, Scope::Tenant);
        assert_admitted(&admission, "b");
        assert_admitted(&admission, "b");
    }

    #[test]
    fn the_connector_bucket_limits_all_tenants_together() {
        let admission = admission(RatePolicy {
            rate_per_second: Some(1),
            burst: Some(2),
            tenant_rate_per_second: Some(10),
            ..RatePolicy::default()
        });
        assert_admitted(&admission, "a");
        assert_admitted(&admission, "b");
        assert_eq!(rate_limit_refusal(&admission, "c").0, Scope::Connector);
    }

    #[test]
    fn a_tenant_over_its_own_limit_does_not_spend_the_budget_it_shares_with_others() {
        let admission = admission(RatePolicy {
            rate_per_second: Some(1),
            burst: Some(3),
            tenant_rate_per_second: Some(1),
            tenant_burst: Some(1),
            ..RatePolicy::default()
        });
        assert_admitted(&admission, "noisy");
        for _ in 0..10 {
            assert_eq!(rate_limit_refusal(&admission, "noisy").0, Scope::Tenant);
        }
        assert_admitted(&admission, "b");
        assert_admitted(&admission, "c");
    }

    #[test]
    fn max_concurrency_admits_that_many_refuses_one_more_and_admits_again_after_one_ends() {
        let admission = admission(RatePolicy {
            max_concurrency: Some(2),
            ..RatePolicy::default()
        });
        let first = admission.admit("t").expect("first in flight");
        let _second = admission.admit("t").expect("second in flight");
        assert_eq!(admission.view().in_flight, 2);
        assert_eq!(refusal(&admission, "t"), Refused::Overloaded { limit: 2 });
        drop(first);
        assert_eq!(admission.view().in_flight, 1);
        let _third = admission.admit("t").expect("a place was freed");
    }

    #[test]
    fn a_call_shed_for_concurrency_has_still_spent_its_rate_tokens() {
        let admission = admission(RatePolicy {
            rate_per_second: Some(1),
            burst: Some(2),
            max_concurrency: Some(1),
            ..RatePolicy::default()
        });
        let running = admission.admit("t").expect("first call runs");
        assert_eq!(refusal(&admission, "t"), Refused::Overloaded { limit: 1 });
        drop(running);
        assert_eq!(rate_limit_refusal(&admission, "t").0, Scope::Connector);
    }

    #[test]
    fn an_unlimited_policy_admits_everything_and_still_counts_calls_in_flight() {
        let admission = admission(RatePolicy::default());
        let held: Vec<Admitted<'_>> = (0..1_000)
            .map(|i| {
                admission
                    .admit(&format!("tenant-{}", i % 7))
                    .expect("unlimited")
            })
            .collect();
        let view = admission.view();
        assert_eq!(view.in_flight, 1_000);
        assert_eq!(view.max_concurrency, None);
        assert_eq!(view.rate_per_second, None);
        drop(held);
        assert_eq!(admission.view().in_flight, 0);
    }

    #[test]
    fn idle_tenants_are_forgotten_and_busy_ones_kept() {
        let admission = admission(RatePolicy {
            tenant_rate_per_second: Some(10),
            tenant_burst: Some(1),
            ..RatePolicy::default()
        });
        // A bucket refills in 100 ms and is dropped 100 ms after that; the
        // busy tenant has 200 ms of slack on a slow machine.
        assert_admitted(&admission, "idle");
        std::thread::sleep(Duration::from_millis(300));
        assert_admitted(&admission, "busy");
        assert_eq!(admission.view().tracked_tenants, 2);
        admission.forget_idle_tenants();
        assert_eq!(admission.view().tracked_tenants, 1);
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_milliseconds_and_never_zero() {
        assert_eq!(
            whole_millis_at_least_one(Duration::ZERO),
            Duration::from_millis(1)
        );
        assert_eq!(
            whole_millis_at_least_one(Duration::from_micros(1_001)),
            Duration::from_millis(2)
        );
        assert_eq!(
            whole_millis_at_least_one(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn policy_check_rejects_zero_limits_and_a_burst_without_its_rate() {
        let zero_rate = RatePolicy {
            rate_per_second: Some(0),
            ..RatePolicy::default()
        };
        assert!(
            zero_rate
                .check()
                .is_err_and(|e| e.contains("rate_per_second"))
        );
        let zero_tenant_burst = RatePolicy {
            tenant_rate_per_second: Some(5),
            tenant_burst: Some(0),
            ..RatePolicy::default()
        };
        assert!(
            zero_tenant_burst
                .check()
                .is_err_and(|e| e.contains("tenant_burst"))
        );
        let zero_concurrency = RatePolicy {
            max_concurrency: Some(0),
            ..RatePolicy::default()
        };
        assert!(zero_concurrency.check().is_err());
        let orphan_burst = RatePolicy {
            burst: Some(5),
            ..RatePolicy::default()
        };
        assert!(orphan_burst.check().is_err());
        assert_eq!(RatePolicy::default().check(), Ok(()));
    }

    #[test]
    fn policy_parsing_rejects_unknown_fields() {
        let parsed: RatePolicy =
            serde_json::from_str(r#"{"rate_per_second": 5, "max_concurrency": 2}"#)
                .expect("known fields");
        assert_eq!(parsed.rate_per_second, Some(5));
        assert_eq!(parsed.burst, None);
        assert!(serde_json::from_str::<RatePolicy>(r#"{"rate_per_secnd": 5}"#).is_err());
    }
}
