//! The host side of each WIT import, one module per capability.
//!
//! A connector reaches the outside world only through these, and only as far
//! as its manifest grants: [`ConnectorGrants`] is that grant, shared by every
//! call of one connector version; [`CallCapabilities`] is what one call holds.
//! Functions here speak the host's own types; `runtime::bindings` adapts them
//! to the generated WIT traits.

pub mod config;
pub mod events;
pub mod http;
pub mod kv;
pub mod log;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::events::EventIngest;
use crate::model::CallContext;
use crate::names::ConnectorName;
use crate::pipeline::breaker::BreakerPolicy;
use crate::runtime::call::DrainDeadline;
use crate::runtime::limits::Limits;
use crate::store::KvStore;

pub use config::Settings;
pub use http::HostAllowlist;

/// Services shared by every call of every connector.
pub struct HostServices {
    /// Client for outbound HTTP; never follows redirects.
    pub http: reqwest::Client,
    /// Connector key-value data.
    pub kv: Arc<dyn KvStore>,
    /// The durable event log, through its group commit.
    pub events: Arc<EventIngest>,
    /// A circuit breaker per upstream host.
    pub upstreams: http::UpstreamBreakers,
}

impl HostServices {
    /// Services over the given stores, with a fresh HTTP client.
    pub fn new(kv: Arc<dyn KvStore>, events: Arc<EventIngest>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            kv,
            events,
            upstreams: http::UpstreamBreakers::new(BreakerPolicy::default()),
        })
    }
}

/// What one connector version is granted: identity, hosts, settings, limits.
pub struct ConnectorGrants {
    /// The connector's name.
    pub name: ConnectorName,
    /// The version these grants belong to.
    pub version: semver::Version,
    /// Limits of each call.
    pub limits: Limits,
    /// Hosts it may call.
    pub allowed_hosts: HostAllowlist,
    /// Config and secrets, shared with the registry so updates apply at once.
    pub settings: Arc<Settings>,
    /// When calls still running after the version was replaced are cut off.
    pub drain: DrainDeadline,
}

/// Most log lines (including captured stdout/stderr) one call may write.
pub const LOG_LINES_PER_CALL: u32 = 1_000;

/// What the upstreams a call reached last said about retrying; the call
/// pipeline reads it to honour `Retry-After`.
#[derive(Debug, Default)]
pub struct UpstreamReport {
    /// The last `Retry-After`, in milliseconds plus one (zero: none).
    retry_after_ms: AtomicU64,
}

impl UpstreamReport {
    /// Notes a response's `Retry-After`, if it had one.
    pub fn record(&self, retry_after: Option<Duration>) {
        let encoded =
            retry_after.map_or(0, |d| crate::runtime::limits::millis(d).saturating_add(1));
        self.retry_after_ms.store(encoded, Ordering::Relaxed);
    }

    /// The last `Retry-After` an upstream sent.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.retry_after_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms - 1)),
        }
    }
}

/// Everything one call may use, held in its store.
pub struct CallCapabilities {
    /// The grants of the connector being called.
    pub grants: Arc<ConnectorGrants>,
    /// Shared host services.
    pub services: Arc<HostServices>,
    /// The caller's context.
    pub context: Arc<CallContext>,
    /// When the call's budget runs out.
    pub deadline: Instant,
    /// What upstreams said about retrying.
    pub upstream: Arc<UpstreamReport>,
    log_lines_left: AtomicU32,
}

impl CallCapabilities {
    /// Capabilities for one call that must end by `deadline`.
    pub fn new(
        grants: Arc<ConnectorGrants>,
        services: Arc<HostServices>,
        context: Arc<CallContext>,
        deadline: Instant,
        upstream: Arc<UpstreamReport>,
    ) -> Self {
        Self {
            grants,
            services,
            context,
            deadline,
            upstream,
            log_lines_left: AtomicU32::new(LOG_LINES_PER_CALL),
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Takes one line from the call's log budget; false once it is spent.
    pub fn take_log_line(&self) -> bool {
        self.log_lines_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, crate::runtime::limits::millis)
}
