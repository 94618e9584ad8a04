//! Canary releases: which calls go to the candidate, and when to give up on it.
//!
//! A [`CanaryRule`] sends a call to the candidate version when its agent,
//! channel or tenant is listed, and otherwise by weight. The weighted choice
//! hashes a sticky key — the agent, else the customer, else the request id —
//! with the canary's seed, so one agent keeps seeing one version for the
//! whole canary, across restarts, while another canary picks another cohort.
//!
//! A [`CanaryMonitor`] keeps a sliding window of the outcomes of both
//! versions and trips when the candidate is clearly worse than the active
//! version, as its [`RollbackPolicy`] defines.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::model::CallContext;
use crate::store::CanaryRecord;

/// 100 % in basis points.
pub const FULL_WEIGHT_BP: u16 = 10_000;

/// Most agents, channels or tenants one canary may list.
pub const MAX_ROUTING_KEYS: usize = 1_000;

/// Which calls a canary sends to its candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRule {
    /// The candidate version.
    pub version: semver::Version,
    /// Share of unlisted calls sent to the candidate, in basis points.
    pub weight_bp: u16,
    /// Agents always sent to the candidate.
    pub agents: BTreeSet<String>,
    /// Channels always sent to the candidate.
    pub channels: BTreeSet<String>,
    /// Tenants always sent to the candidate.
    pub tenants: BTreeSet<String>,
    /// Seeds the sticky hash.
    pub seed: u64,
    /// When the canary started, in milliseconds since the Unix epoch.
    pub started_at_ms: u64,
}

impl CanaryRule {
    /// Whether the call described by `context` goes to the candidate.
    pub fn routes_to_candidate(&self, context: &CallContext) -> bool {
        let listed = |set: &BTreeSet<String>, value: Option<&str>| {
            value.is_some_and(|v| !set.is_empty() && set.contains(v))
        };
        if listed(&self.agents, context.agent.as_deref())
            || listed(&self.channels, context.channel.as_deref())
            || listed(&self.tenants, Some(context.tenant.as_str()))
        {
            return true;
        }
        match self.weight_bp {
            0 => false,
            FULL_WEIGHT_BP.. => true,
            weight => {
                let key = context
                    .agent
                    .as_deref()
                    .or(context.customer.as_deref())
                    .unwrap_or(&context.request_id);
                sticky_bucket(self.seed, key) < weight
            }
        }
    }

    /// The persisted form.
    pub fn to_record(&self) -> CanaryRecord {
        CanaryRecord {
            version: self.version.to_string(),
            weight_bp: self.weight_bp,
            agents: self.agents.iter().cloned().collect(),
            channels: self.channels.iter().cloned().collect(),
            tenants: self.tenants.iter().cloned().collect(),
            seed: self.seed,
            started_at_ms: self.started_at_ms,
        }
    }

    /// The rule a persisted record describes.
    pub fn from_record(record: &CanaryRecord) -> Result<Self, String> {
        Ok(Self {
            version: record
                .version
                .parse()
                .map_err(|err| format!("canary version `{}`: {err}", record.version))?,
            weight_bp: record.weight_bp.min(FULL_WEIGHT_BP),
            agents: record.agents.iter().cloned().collect(),
            channels: record.channels.iter().cloned().collect(),
            tenants: record.tenants.iter().cloned().collect(),
            seed: record.seed,
            started_at_ms: record.started_at_ms,
        })
    }
}

/// A bucket in `0..10000` for `key`, stable across processes and versions
/// of Rust (FNV-1a, then a SplitMix64 finish to spread short keys).
fn sticky_bucket(seed: u64, key: &str) -> u16 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    (hash % u64::from(FULL_WEIGHT_BP)) as u16
}

/// When a canary is rolled back on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPolicy {
    /// How far back outcomes count.
    pub window: Duration,
    /// Fewest candidate calls in the window before judging.
    pub min_calls: usize,
    /// Candidate failure rate (0..=1) that trips the rollback.
    pub max_failure_rate: f64,
    /// Candidate p95 latency, as a multiple of the active version's, that trips it.
    pub max_latency_ratio: f64,
    /// The p95 gap below which latency never trips it, so microsecond noise
    /// on fast connectors does not.
    pub latency_floor: Duration,
}

impl RollbackPolicy {
    /// Checks that the thresholds can be met and are not met by a healthy candidate.
    pub fn check(&self) -> Result<(), String> {
        if self.min_calls == 0 {
            return Err("the fewest calls must be at least 1".into());
        }
        if !(f64::EPSILON..=1.0).contains(&self.max_failure_rate) {
            return Err("the failure rate must be above 0 % and at most 100 %".into());
        }
        if !(1.0..=f64::MAX).contains(&self.max_latency_ratio) {
            return Err("the latency ratio must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            min_calls: 20,
            max_failure_rate: 0.05,
            max_latency_ratio: 2.0,
            latency_floor: Duration::from_millis(20),
        }
    }
}

/// Which side of a canary served a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The active version.
    Active,
    /// The candidate.
    Candidate,
}

impl Side {
    /// `active` or `canary`, as the API names the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Active => "active",
            Side::Candidate => "canary",
        }
    }
}

/// Most outcomes kept per side.
const MAX_SAMPLES: usize = 4_096;

/// How often at most the latency percentiles are recomputed.
const LATENCY_CHECK_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    latency: Duration,
    failed: bool,
}

#[derive(Debug, Default)]
struct SideWindow {
    samples: VecDeque<Sample>,
    failures: usize,
}

impl SideWindow {
    fn push(&mut self, sample: Sample) {
        if self.samples.len() == MAX_SAMPLES {
            self.pop();
        }
        self.failures += usize::from(sample.failed);
        self.samples.push_back(sample);
    }

    /// Drops the samples older than `window` at `now`.
    fn prune(&mut self, now: Instant, window: Duration) {
        while self
            .samples
            .front()
            .is_some_and(|s| now.duration_since(s.at) > window)
        {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(old) = self.samples.pop_front() {
            self.failures -= usize::from(old.failed);
        }
    }

    fn failure_rate(&self) -> f64 {
        self.failures as f64 / self.samples.len().max(1) as f64
    }

    fn p95(&self) -> Duration {
        let mut latencies: Vec<Duration> = self.samples.iter().map(|s| s.latency).collect();
        latencies.sort_unstable();
        let index = (latencies.len() * 95).div_ceil(100).saturating_sub(1);
        latencies.get(index).copied().unwrap_or_default()
    }

    fn summary(&self) -> String {
        format!(
            "{:.1} % failed ({} of {} calls)",
            self.failure_rate() * 100.0,
            self.failures,
            self.samples.len()
        )
    }
}

#[derive(Debug)]
struct Windows {
    active: SideWindow,
    candidate: SideWindow,
    latency_checked_at: Option<Instant>,
}

impl Windows {
    /// Both sides, so a side that gets no calls (a 100 % canary) does not
    /// keep stale samples.
    fn prune(&mut self, now: Instant, window: Duration) {
        self.active.prune(now, window);
        self.candidate.prune(now, window);
    }
}

/// The sliding-window comparison of one running canary.
#[derive(Debug)]
pub struct CanaryMonitor {
    policy: RollbackPolicy,
    windows: Mutex<Windows>,
    tripped: AtomicBool,
}

/// What the monitor has seen, for the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonitorView {
    /// Active calls in the window.
    pub active_calls: usize,
    /// Active failures in the window.
    pub active_failures: usize,
    /// Active p95 latency in the window, in microseconds.
    pub active_p95_us: u128,
    /// Candidate calls in the window.
    pub canary_calls: usize,
    /// Candidate failures in the window.
    pub canary_failures: usize,
    /// Candidate p95 latency in the window, in microseconds.
    pub canary_p95_us: u128,
}

impl CanaryMonitor {
    /// A monitor with empty windows.
    pub fn new(policy: RollbackPolicy) -> Self {
        Self {
            policy,
            windows: Mutex::new(Windows {
                active: SideWindow::default(),
                candidate: SideWindow::default(),
                latency_checked_at: None,
            }),
            tripped: AtomicBool::new(false),
        }
    }

    /// Whether the candidate has been judged worse; no call goes to it after that.
    pub fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Records one outcome; returns why the canary must be rolled back the
    /// first time the candidate crosses a threshold.
    pub fn record(&self, side: Side, latency: Duration, failed: bool) -> Option<String> {
        if self.tripped() {
            return None;
        }
        let now = Instant::now();
        let sample = Sample {
            at: now,
            latency,
            failed,
        };
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match side {
            Side::Active => windows.active.push(sample),
            Side::Candidate => windows.candidate.push(sample),
        }
        windows.prune(now, self.policy.window);
        let reason = self.judge(&mut windows, now)?;
        drop(windows);
        (!self.tripped.swap(true, Ordering::AcqRel)).then_some(reason)
    }

    fn judge(&self, windows: &mut Windows, now: Instant) -> Option<String> {
        let policy = &self.policy;
        let candidate = &windows.candidate;
        if candidate.samples.len() < policy.min_calls {
            return None;
        }
        if candidate.failure_rate() >= policy.max_failure_rate {
            return Some(format!(
                "the candidate {} in the last {} s, at or above the {:.1} % threshold; the active version {}",
                candidate.summary(),
                policy.window.as_secs(),
                policy.max_failure_rate * 100.0,
                windows.active.summary(),
            ));
        }
        if windows.active.samples.len() < policy.min_calls
            || windows
                .latency_checked_at
                .is_some_and(|at| now.duration_since(at) < LATENCY_CHECK_EVERY)
        {
            return None;
        }
        windows.latency_checked_at = Some(now);
        let (active_p95, candidate_p95) = (windows.active.p95(), windows.candidate.p95());
        let too_slow = candidate_p95.as_secs_f64()
            >= active_p95.as_secs_f64() * policy.max_latency_ratio
            && candidate_p95.saturating_sub(active_p95) >= policy.latency_floor;
        too_slow.then(|| {
            format!(
                "the candidate's p95 latency is {} ms against the active version's {} ms over the last {} s, at or above {}x",
                candidate_p95.as_millis(),
                active_p95.as_millis(),
                policy.window.as_secs(),
                policy.max_latency_ratio,
            )
        })
    }

    /// The windows as they are now.
    pub fn view(&self) -> MonitorView {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.prune(Instant::now(), self.policy.window);
        MonitorView {
            active_calls: windows.active.samples.len(),
            active_failures: windows.active.failures,
            active_p95_us: windows.active.p95().as_micros(),
            canary_calls: windows.candidate.samples.len(),
            canary_failures: windows.candidate.failures,
            canary_p95_us: windows.candidate.p95().as_micros(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::TenantId;

    fn rule(weight_bp: u16) -> CanaryRule {
        CanaryRule {
            version: semver::Version::new(2, 0, 0),
            weight_bp,
            agents: BTreeSet::new(),
            channels: BTreeSet::new(),
            tenants: BTreeSet::new(),
            seed: 42,
            started_at_ms: 0,
        }
    }

    fn context(agent: Option<&str>, channel: Option<&str>, request_id: &str) -> CallContext {
        CallContext {
            request_id: request_id.into(),
            tenant: TenantId::default_tenant(),
            agent: agent.map(Into::into),
            channel: channel.map(Into::into),
            customer: None,
        }
    }

    #[test]
    fn the_weighted_share_of_agents_matches_the_weight_and_each_agent_is_sticky() {
        let rule = rule(2_500);
        let agents: Vec<String> = (0..4_000).map(|i| format!("agent-{i}")).collect();
        let on_candidate = agents
            .iter()
            .filter(|agent| rule.routes_to_candidate(&context(Some(agent), None, "r")))
            .count();
        let share = on_candidate as f64 / agents.len() as f64;
        assert!((0.22..0.28).contains(&share), "share {share}");
        for agent in agents.iter().take(100) {
            let first = rule.routes_to_candidate(&context(Some(agent), None, "r1"));
            for request in ["r2", "r3", "r4"] {
                assert_eq!(
                    rule.routes_to_candidate(&context(Some(agent), None, request)),
                    first
                );
            }
        }
    }

    #[test]
    fn another_seed_picks_another_cohort() {
        let (a, b) = (
            rule(5_000),
            CanaryRule {
                seed: 7,
                ..rule(5_000)
            },
        );
        let differ = (0..200)
            .map(|i| context(Some(&format!("agent-{i}")), None, "r"))
            .filter(|c| a.routes_to_candidate(c) != b.routes_to_candidate(c))
            .count();
        assert!(differ > 50, "only {differ} of 200 agents moved");
    }

    #[test]
    fn listed_agents_and_channels_always_go_to_the_candidate_and_weight_zero_sends_no_one_else() {
        let mut keyed = rule(0);
        keyed.agents.insert("a-7".into());
        keyed.channels.insert("sms".into());
        assert!(keyed.routes_to_candidate(&context(Some("a-7"), None, "r")));
        assert!(keyed.routes_to_candidate(&context(Some("a-1"), Some("sms"), "r")));
        assert!(!keyed.routes_to_candidate(&context(Some("a-1"), Some("voice"), "r")));
        assert!(!keyed.routes_to_candidate(&context(None, None, "r")));
        assert!(rule(FULL_WEIGHT_BP).routes_to_candidate(&context(None, None, "r")));
    }

    #[test]
    fn the_record_form_round_trips() {
        let mut original = rule(1_234);
        original.tenants.insert("acme".into());
        let back = CanaryRule::from_record(&original.to_record()).expect("parse");
        assert_eq!(back, original);
    }

    fn monitor() -> CanaryMonitor {
        CanaryMonitor::new(RollbackPolicy::default())
    }

    #[test]
    fn nineteen_failing_candidate_calls_are_not_judged_and_the_twentieth_trips_once() {
        let monitor = monitor();
        let ms = Duration::from_millis(1);
        for _ in 0..19 {
            assert_eq!(monitor.record(Side::Candidate, ms, true), None);
        }
        let reason = monitor
            .record(Side::Candidate, ms, true)
            .expect("the twentieth call trips");
        assert!(
            reason.contains("100.0 % failed (20 of 20 calls)"),
            "{reason}"
        );
        assert!(monitor.tripped());
        assert_eq!(monitor.record(Side::Candidate, ms, true), None);
    }

    #[test]
    fn a_failure_rate_just_under_the_threshold_does_not_trip() {
        let monitor = monitor();
        let ms = Duration::from_millis(1);
        for _ in 0..20 {
            assert_eq!(monitor.record(Side::Candidate, ms, false), None);
        }
        assert_eq!(
            monitor.record(Side::Candidate, ms, true),
            None,
            "1 of 21 is 4.8 %"
        );
        let tripped = monitor.record(Side::Candidate, ms, true);
        assert!(tripped.is_some(), "2 of 22 is 9.1 %");
    }

    #[test]
    fn a_candidate_twice_as_slow_trips_but_microsecond_noise_does_not() {
        let noisy = monitor();
        for _ in 0..40 {
            noisy.record(Side::Active, Duration::from_micros(10), false);
            assert_eq!(
                noisy.record(Side::Candidate, Duration::from_micros(90), false),
                None
            );
        }
        let slow = monitor();
        for _ in 0..20 {
            slow.record(Side::Active, Duration::from_millis(10), false);
        }
        let tripped = (0..20)
            .filter_map(|_| slow.record(Side::Candidate, Duration::from_millis(40), false))
            .next()
            .expect("a 4x slower candidate trips");
        assert!(
            tripped.contains("p95 latency is 40 ms against"),
            "{tripped}"
        );
    }

    #[test]
    fn a_side_without_new_calls_loses_its_old_samples_too() {
        let monitor = CanaryMonitor::new(RollbackPolicy {
            window: Duration::from_millis(50),
            ..RollbackPolicy::default()
        });
        for _ in 0..5 {
            monitor.record(Side::Active, Duration::ZERO, false);
        }
        std::thread::sleep(Duration::from_millis(80));
        monitor.record(Side::Candidate, Duration::ZERO, false);
        assert_eq!(monitor.view().active_calls, 0);
    }

    #[test]
    fn thresholds_that_a_healthy_candidate_meets_are_refused() {
        assert!(RollbackPolicy::default().check().is_ok());
        for bad in [
            RollbackPolicy {
                max_failure_rate: 0.0,
                ..RollbackPolicy::default()
            },
            RollbackPolicy {
                max_failure_rate: f64::NAN,
                ..RollbackPolicy::default()
            },
            RollbackPolicy {
                max_latency_ratio: 0.5,
                ..RollbackPolicy::default()
            },
            RollbackPolicy {
                min_calls: 0,
                ..RollbackPolicy::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn outcomes_older_than_the_window_no_longer_count() {
        let monitor = CanaryMonitor::new(RollbackPolicy {
            window: Duration::from_millis(50),
            ..RollbackPolicy::default()
        });
        for _ in 0..19 {
            monitor.record(Side::Candidate, Duration::ZERO, true);
        }
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(monitor.record(Side::Candidate, Duration::ZERO, true), None);
        assert_eq!(monitor.view().canary_calls, 1);
    }
}
