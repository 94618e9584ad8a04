//! The circuit breaker: stops calling an upstream that keeps failing or
//! crawling, then lets a few probe calls test whether it has recovered.
//!
//! One [`CircuitBreaker`] guards one connector or one upstream host. It is a
//! pure, synchronous state machine behind a mutex: callers pass the current
//! [`Instant`] in, so it never reads the clock, never sleeps and never spawns.
//! It does not know what a call is, what a fallback returns, or how long to
//! wait for a call; the pipeline around it does. Breakers are per-host state:
//! each host process keeps its own.
//!
//! Closed, it counts the outcomes of the last [`BreakerPolicy::window`] calls
//! and opens when enough of them failed or were slow. Open, it refuses every
//! call until [`BreakerPolicy::open_ms`] has passed. Then it is half-open: it
//! lets [`BreakerPolicy::probes`] calls through, closes when all of them
//! succeed and opens again as soon as one fails (or, when a slow-call rate is
//! set, is slow).
//!
//! Every change of state starts a new *generation*. A [`Permit`] remembers the
//! generation it was issued in, and an outcome recorded after the state moved
//! on is ignored, so a slow call that began before the breaker opened can
//! neither trip the next round nor close it early.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::runtime::limits::millis;

/// The largest window a policy may ask for, so a typo cannot make one
/// breaker hold millions of outcomes.
pub const MAX_WINDOW: usize = 10_000;

/// How long a caller refused by a half-open breaker (all probes taken) is told
/// to wait, at most: the probes in flight will settle it soon.
const PROBES_BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// When a breaker opens, how long it stays open and how it tests recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicy {
    /// How many of the latest call outcomes are counted.
    pub window: usize,
    /// Fewest outcomes in the window before the breaker may open.
    pub min_calls: usize,
    /// Percentage of failed calls in the window that opens the breaker.
    pub failure_rate_percent: f64,
    /// A call that takes at least this many milliseconds is slow.
    pub slow_call_ms: u64,
    /// Percentage of slow calls in the window that opens the breaker; at
    /// 100 (the default) slowness never opens it, failures alone do.
    pub slow_call_rate_percent: f64,
    /// How long the breaker stays open before it lets probes through.
    pub open_ms: u64,
    /// Probe calls let through while half-open; all must succeed to close.
    pub probes: usize,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            window: 20,
            min_calls: 10,
            failure_rate_percent: 50.0,
            slow_call_ms: 2_000,
            slow_call_rate_percent: 100.0,
            open_ms: 5_000,
            probes: 3,
        }
    }
}

impl BreakerPolicy {
    /// Checks that every value is in range, naming the first one that is not.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(format!(
                "breaker.window must be between 1 and {MAX_WINDOW}, not {}",
                self.window
            ));
        }
        if self.min_calls == 0 || self.min_calls > self.window {
            return Err(format!(
                "breaker.min_calls must be between 1 and breaker.window ({}), not {}",
                self.window, self.min_calls
            ));
        }
        check_percent("failure_rate_percent", self.failure_rate_percent)?;
        check_percent("slow_call_rate_percent", self.slow_call_rate_percent)?;
        if self.probes == 0 {
            return Err("breaker.probes must be at least 1, not 0".into());
        }
        if self.open_ms == 0 {
            return Err("breaker.open_ms must be at least 1, not 0".into());
        }
        Ok(())
    }

    /// The policy with the counts a running breaker needs to make progress
    /// pulled into range, for a policy that skipped [`BreakerPolicy::check`].
    fn usable(mut self) -> Self {
        self.window = self.window.clamp(1, MAX_WINDOW);
        self.min_calls = self.min_calls.clamp(1, self.window);
        self.probes = self.probes.max(1);
        self
    }

    fn open_period(&self) -> Duration {
        Duration::from_millis(self.open_ms)
    }

    fn is_slow(&self, latency: Duration) -> bool {
        latency >= Duration::from_millis(self.slow_call_ms)
    }

    fn slow_rule_applies(&self) -> bool {
        self.slow_call_rate_percent < 100.0
    }
}

fn check_percent(name: &str, value: f64) -> Result<(), String> {
    if value > 0.0 && value <= 100.0 {
        Ok(())
    } else {
        Err(format!(
            "breaker.{name} must be above 0 and at most 100, not {value}"
        ))
    }
}

/// Whether `count` of `calls` is at least `percent` %, without rounding.
fn reaches(count: usize, calls: usize, percent: f64) -> bool {
    count as f64 * 100.0 >= percent * calls as f64
}

fn percent_of(count: usize, calls: usize) -> f64 {
    if calls == 0 {
        0.0
    } else {
        count as f64 * 100.0 / calls as f64
    }
}

/// How a call through the breaker ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The call failed in a way that says the upstream is unhealthy.
    pub failed: bool,
    /// How long the call took.
    pub latency: Duration,
}

impl Outcome {
    /// A call that succeeded after `latency`.
    pub fn success(latency: Duration) -> Self {
        Self {
            failed: false,
            latency,
        }
    }

    /// A call that failed after `latency`.
    pub fn failure(latency: Duration) -> Self {
        Self {
            failed: true,
            latency,
        }
    }
}

/// The breaker refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the circuit breaker is open; retry after {} ms", millis(*retry_after))]
pub struct Open {
    /// How long until the breaker may let a call through again.
    pub retry_after: Duration,
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through and their outcomes are counted.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// A few probe calls go through to test recovery.
    HalfOpen,
}

/// What a breaker reports to operators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerView {
    /// Where the breaker stands; `half_open` once an open period has ended,
    /// even before the next call moves it there.
    pub state: BreakerState,
    /// Outcomes counted in the window (always 0 unless closed).
    pub calls_in_window: usize,
    /// Failed calls in the window, in percent.
    pub failure_rate_percent: f64,
    /// Slow calls in the window, in percent.
    pub slow_rate_percent: f64,
    /// Milliseconds since the breaker opened, while open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opened_at_ms_ago: Option<u64>,
    /// Milliseconds until the breaker lets a probe through, while open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// How many times the breaker has opened since it was created.
    pub times_opened: u64,
}

/// Leave to make one call. Record its outcome with
/// [`CircuitBreaker::record`]; a permit dropped unrecorded counts as a call
/// that never happened, and gives its probe slot back if it held one.
#[must_use = "record the call's outcome with CircuitBreaker::record"]
#[derive(Debug)]
pub struct Permit {
    shared: Arc<Shared>,
    generation: u64,
    probe: bool,
    settled: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.probe && !self.settled {
            self.shared.lock().release_probe(self.generation);
        }
    }
}

/// A circuit breaker for one connector or upstream host; see the module docs.
#[derive(Debug)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl CircuitBreaker {
    /// A closed breaker. The policy should have passed
    /// [`BreakerPolicy::check`]; if it did not, `window`, `min_calls` and
    /// `probes` are pulled to the nearest usable value.
    pub fn new(policy: BreakerPolicy) -> Self {
        let policy = policy.usable();
        let core = Core {
            phase: Phase::Closed,
            generation: 0,
            window: Window::new(policy.window),
            times_opened: 0,
        };
        Self {
            shared: Arc::new(Shared {
                policy,
                core: Mutex::new(core),
            }),
        }
    }

    /// Leave to make one call at `now`, or how long to wait before asking again.
    pub fn acquire(&self, now: Instant) -> Result<Permit, Open> {
        let mut core = self.shared.lock();
        let probe = core.admit(&self.shared.policy, now)?;
        Ok(Permit {
            shared: Arc::clone(&self.shared),
            generation: core.generation,
            probe,
            settled: false,
        })
    }

    /// Counts how the call made under `permit` ended at `now`. An outcome
    /// from before the breaker last changed state is ignored, and so is a
    /// permit issued by another breaker.
    pub fn record(&self, mut permit: Permit, now: Instant, outcome: Outcome) {
        if !Arc::ptr_eq(&permit.shared, &self.shared) {
            return;
        }
        permit.settled = true;
        let mut core = self.shared.lock();
        if permit.generation == core.generation {
            core.settle(&self.shared.policy, now, outcome);
        }
    }

    /// What the breaker reports at `now`; changes nothing.
    pub fn state(&self, now: Instant) -> BreakerView {
        self.shared.lock().view(&self.shared.policy, now)
    }
}

#[derive(Debug)]
struct Shared {
    policy: BreakerPolicy,
    core: Mutex<Core>,
}

impl Shared {
    /// The state, even if a thread panicked holding it: every update leaves
    /// it consistent before anything that could panic.
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { since: Instant },
    HalfOpen { issued: usize, succeeded: usize },
}

#[derive(Debug)]
struct Core {
    phase: Phase,
    generation: u64,
    window: Window,
    times_opened: u64,
}

impl Core {
    /// Whether a call may go through now, and if so whether it is a probe.
    fn admit(&mut self, policy: &BreakerPolicy, now: Instant) -> Result<bool, Open> {
        if let Phase::Open { since } = self.phase {
            let waited = now.saturating_duration_since(since);
            if waited < policy.open_period() {
                return Err(Open {
                    retry_after: policy.open_period() - waited,
                });
            }
            self.enter(Phase::HalfOpen {
                issued: 0,
                succeeded: 0,
            });
        }
        match &mut self.phase {
            Phase::HalfOpen { issued, .. } if *issued < policy.probes => {
                *issued += 1;
                Ok(true)
            }
            Phase::Closed => Ok(false),
            Phase::HalfOpen { .. } | Phase::Open { .. } => Err(Open {
                retry_after: policy.open_period().min(PROBES_BUSY_RETRY_AFTER),
            }),
        }
    }

    /// Applies the outcome of a call issued in the current generation.
    fn settle(&mut self, policy: &BreakerPolicy, now: Instant, outcome: Outcome) {
        let slow = policy.is_slow(outcome.latency);
        match &mut self.phase {
            Phase::Closed => {
                self.window.push(outcome.failed, slow);
                if self.window.trips(policy) {
                    self.open(now);
                }
            }
            Phase::HalfOpen { .. } if outcome.failed || (slow && policy.slow_rule_applies()) => {
                self.open(now);
            }
            Phase::HalfOpen { succeeded, .. } => {
                *succeeded += 1;
                if *succeeded >= policy.probes {
                    self.enter(Phase::Closed);
                }
            }
            Phase::Open { .. } => {}
        }
    }

    /// Gives back the slot of a probe dropped before it was recorded.
    fn release_probe(&mut self, generation: u64) {
        if generation != self.generation {
            return;
        }
        if let Phase::HalfOpen { issued, .. } = &mut self.phase {
            *issued = issued.saturating_sub(1);
        }
    }

    fn open(&mut self, now: Instant) {
        self.times_opened += 1;
        self.enter(Phase::Open { since: now });
    }

    /// Moves to `phase` as a new generation with an empty window.
    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation += 1;
        self.window.clear();
    }

    fn view(&self, policy: &BreakerPolicy, now: Instant) -> BreakerView {
        let mut view = BreakerView {
            state: BreakerState::Closed,
            calls_in_window: self.window.len(),
            failure_rate_percent: percent_of(self.window.failures, self.window.len()),
            slow_rate_percent: percent_of(self.window.slow, self.window.len()),
            opened_at_ms_ago: None,
            retry_after_ms: None,
            times_opened: self.times_opened,
        };
        match self.phase {
            Phase::Closed => {}
            Phase::HalfOpen { .. } => view.state = BreakerState::HalfOpen,
            Phase::Open { since } => {
                let waited = now.saturating_duration_since(since);
                match policy.open_period().checked_sub(waited) {
                    Some(left) if !left.is_zero() => {
                        view.state = BreakerState::Open;
                        view.opened_at_ms_ago = Some(millis(waited));
                        view.retry_after_ms = Some(millis(left));
                    }
                    _ => view.state = BreakerState::HalfOpen,
                }
            }
        }
        view
    }
}

/// The outcomes of the latest calls, with running counts.
#[derive(Debug)]
struct Window {
    /// `(failed, slow)` per call, oldest first.
    calls: VecDeque<(bool, bool)>,
    capacity: usize,
    failures: usize,
    slow: usize,
}

impl Window {
    fn new(capacity: usize) -> Self {
        Self {
            calls: VecDeque::new(),
            capacity,
            failures: 0,
            slow: 0,
        }
    }

    fn len(&self) -> usize {
        self.calls.len()
    }

    fn push(&mut self, failed: bool, slow: bool) {
        if self.calls.len() == self.capacity
            && let Some((old_failed, old_slow)) = self.calls.pop_front()
        {
            self.failures -= usize::from(old_failed);
            self.slow -= usize::from(old_slow);
        }
        self.calls.push_back((failed, slow));
        self.failures += usize::from(failed);
        self.slow += usize::from(slow);
    }

    fn trips(&self, policy: &BreakerPolicy) -> bool {
        let calls = self.len();
        calls >= policy.min_calls
            && (reaches(self.failures, calls, policy.failure_rate_percent)
                || (policy.slow_rule_applies()
                    && reaches(self.slow, calls, policy.slow_call_rate_percent)))
    }

    fn clear(&mut self) {
        self.calls.clear();
        self.failures = 0;
        self.slow = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_millis(10);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Window of 10, opens at 5 failures of 10, open 5 s, 3 probes.
    fn breaker() -> CircuitBreaker {
        CircuitBreaker::new(BreakerPolicy {
            window: 10,
            ..BreakerPolicy::default()
        })
    }

    fn call(breaker: &CircuitBreaker, now: Instant, outcome: Outcome) {
        let permit = breaker
            .acquire(now)
            .expect("the breaker lets the call through");
        breaker.record(permit, now, outcome);
    }

    fn calls(breaker: &CircuitBreaker, now: Instant, count: usize, outcome: Outcome) {
        for _ in 0..count {
            call(breaker, now, outcome);
        }
    }

    /// A breaker opened at `t0` by ten failures.
    fn opened_at(t0: Instant) -> CircuitBreaker {
        let breaker = breaker();
        calls(&breaker, t0, 10, Outcome::failure(FAST));
        assert_eq!(breaker.state(t0).state, BreakerState::Open);
        breaker
    }

    fn probes(breaker: &CircuitBreaker, now: Instant, count: usize) -> Vec<Permit> {
        (0..count)
            .map(|_| breaker.acquire(now).expect("a probe goes through"))
            .collect()
    }

    fn refusal(breaker: &CircuitBreaker, now: Instant) -> Duration {
        match breaker.acquire(now) {
            Ok(_) => panic!("the breaker let a call through"),
            Err(Open { retry_after }) => retry_after,
        }
    }

    #[test]
    fn it_stays_closed_below_min_calls_even_when_every_call_fails() {
        let t0 = Instant::now();
        let breaker = breaker();
        calls(&breaker, t0, 9, Outcome::failure(FAST));
        let view = breaker.state(t0);
        assert_eq!(view.state, BreakerState::Closed);
        assert_eq!(view.failure_rate_percent, 100.0);
        assert!(breaker.acquire(t0).is_ok());
    }

    #[test]
    fn it_opens_when_the_failure_rate_reaches_the_threshold_exactly() {
        let t0 = Instant::now();
        let breaker = breaker();
        calls(&breaker, t0, 5, Outcome::success(FAST));
        calls(&breaker, t0, 5, Outcome::failure(FAST));
        assert_eq!(breaker.state(t0).state, BreakerState::Open);
        assert_eq!(breaker.state(t0).times_opened, 1);
    }

    #[test]
    fn it_stays_closed_just_below_the_failure_rate_threshold() {
        let t0 = Instant::now();
        let breaker = breaker();
        calls(&breaker, t0, 6, Outcome::success(FAST));
        calls(&breaker, t0, 4, Outcome::failure(FAST));
        let view = breaker.state(t0);
        assert_eq!(view.state, BreakerState::Closed);
        assert_eq!(view.failure_rate_percent, 40.0);
    }

    #[test]
    fn only_the_latest_window_of_calls_counts() {
        let t0 = Instant::now();
        let breaker = breaker();
        calls(&breaker, t0, 4, Outcome::failure(FAST));
        calls(&breaker, t0, 10, Outcome::success(FAST));
        assert_eq!(breaker.state(t0).failure_rate_percent, 0.0);
        calls(&breaker, t0, 4, Outcome::failure(FAST));
        assert_eq!(breaker.state(t0).state, BreakerState::Closed);
        call(&breaker, t0, Outcome::failure(FAST));
        assert_eq!(breaker.state(t0).state, BreakerState::Open);
    }

    #[test]
    fn it_opens_on_slow_calls_when_a_slow_call_rate_is_set() {
        let t0 = Instant::now();
        let breaker = CircuitBreaker::new(BreakerPolicy {
            window: 10,
            slow_call_ms: 100,
            slow_call_rate_percent: 50.0,
            ..BreakerPolicy::default()
        });
        calls(&breaker, t0, 5, Outcome::success(ms(99)));
        calls(&breaker, t0, 4, Outcome::success(ms(100)));
        assert_eq!(breaker.state(t0).state, BreakerState::Closed);
        call(&breaker, t0, Outcome::success(ms(100)));
        let view = breaker.state(t0);
        assert_eq!(view.state, BreakerState::Open);
        assert_eq!(view.times_opened, 1);
    }

    #[test]
    fn slow_calls_alone_never_open_it_at_the_default_slow_call_rate() {
        let t0 = Instant::now();
        let breaker = breaker();
        calls(&breaker, t0, 10, Outcome::success(ms(60_000)));
        let view = breaker.state(t0);
        assert_eq!(view.state, BreakerState::Closed);
        assert_eq!(view.slow_rate_percent, 100.0);
    }

    #[test]
    fn while_open_it_refuses_with_a_retry_after_that_shrinks_as_time_passes() {
        let t0 = Instant::now();
        let breaker = opened_at(t0);
        assert_eq!(refusal(&breaker, t0), ms(5_000));
        assert_eq!(refusal(&breaker, t0 + ms(1_000)), ms(4_000));
        assert_eq!(refusal(&breaker, t0 + ms(4_999)), ms(1));
    }

    #[test]
    fn after_the_open_period_exactly_probes_calls_go_through_and_the_next_is_refused() {
        let t0 = Instant::now();
        let breaker = opened_at(t0);
        let t1 = t0 + ms(5_000);
        let probes = probes(&breaker, t1, 3);
        assert_eq!(breaker.state(t1).state, BreakerState::HalfOpen);
        assert_eq!(refusal(&breaker, t1), PROBES_BUSY_RETRY_AFTER);
        drop(probes);
    }

    #[test]
    fn all_probes_succeeding_closes_it_with_an_empty_window() {
        let t0 = Instant::now();
        let breaker = opened_at(t0);
        let t1 = t0 + ms(5_000);
        calls(&breaker, t1, 3, Outcome::success(FAST));
        let view = breaker.state(t1);
        assert_eq!(view.state, BreakerState::Closed);
        assert_eq!(view.calls_in_window, 0);
        assert_eq!(view.times_opened, 1);
        calls(&breaker, t1, 9, Outcome::failure(FAST));
        assert_eq!(breaker.state(t1).state, BreakerState::Closed);
    }

    #[test]
    fn one_failing_probe_reopens_it_for_a_fresh_open_period() {
        let t0 = Instant::now();
        let breaker = opened_at(t0);
        let t1 = t0 + ms(5_000);
        let first = breaker.acquire(t1).expect("a probe goes through");
        let second = breaker.acquire(t1).expect("a probe goes through");
        let t2 = t1 + ms(300);
        breaker.record(first, t2, Outcome::failure(FAST));
        assert_eq!(breaker.state(t2).times_opened, 2);
        assert_eq!(refusal(&breaker, t2 + ms(4_999)), ms(1));
        breaker.record(second, t2, Outcome::success(FAST));
        assert_eq!(breaker.state(t2).state, BreakerState::Open);
        assert!(breaker.acquire(t2 + ms(5_000)).is_ok());
    }

    #[test]
    fn a_stale_outcome_from_before_opening_is_ignored() {
        let t0 = Instant::now();
        let breaker = breaker();
        let slow_call = breaker.acquire(t0).expect("closed");
        calls(&breaker, t0, 10, Outcome::failure(FAST));
        let t1 = t0 + ms(5_000);
        let probe = breaker.acquire(t1).expect("a probe goes through");
        breaker.record(slow_call, t1, Outcome::failure(FAST));
        assert_eq!(breaker.state(t1).state, BreakerState::HalfOpen);
        breaker.record(probe, t1, Outcome::success(FAST));
        calls(&breaker, t1, 2, Outcome::success(FAST));
        assert_eq!(breaker.state(t1).state, BreakerState::Closed);
        assert_eq!(breaker.state(t1).times_opened, 1);
    }

    #[test]
    fn a_dropped_half_open_permit_frees_its_probe_slot() {
        let t0 = Instant::now();
        let breaker = opened_at(t0);
        let t1 = t0 + ms(5_000);
        let kept = probes(&breaker, t1, 2);
        drop(breaker.acquire(t1).expect("a probe goes through"));
        let last = breaker
            .acquire(t1)
            .expect("the dropped probe's slot is free");
        assert!(breaker.acquire(t1).is_err());
        for permit in kept.into_iter().chain([last]) {
            breaker.record(permit, t1, Outcome::success(FAST));
        }
        assert_eq!(breaker.state(t1).state, BreakerState::Closed);
    }

    #[test]
    fn a_probe_dropped_after_its_round_ended_frees_no_slot_in_the_next_round() {
        let t0 = Instant::now();
        let breaker = opened_at(t0);
        let t1 = t0 + ms(5_000);
        let failing = breaker.acquire(t1).expect("a probe goes through");
        let abandoned = breaker.acquire(t1).expect("a probe goes through");
        breaker.record(failing, t1, Outcome::failure(FAST));
        let t2 = t1 + ms(5_000);
        let probes = probes(&breaker, t2, 3);
        drop(abandoned);
        assert!(breaker.acquire(t2).is_err());
        drop(probes);
    }

    #[test]
    fn a_permit_recorded_on_another_breaker_is_ignored_there() {
        let t0 = Instant::now();
        let (first, second) = (breaker(), breaker());
        let permit = first.acquire(t0).expect("closed");
        second.record(permit, t0, Outcome::failure(FAST));
        assert_eq!(first.state(t0).calls_in_window, 0);
        assert_eq!(second.state(t0).calls_in_window, 0);
    }

    #[test]
    fn the_default_policy_passes_its_own_check() {
        assert_eq!(BreakerPolicy::default().check(), Ok(()));
    }

    #[test]
    fn policy_check_rejects_each_out_of_range_value() {
        type Spoil = fn(&mut BreakerPolicy);
        let bad: [(&str, Spoil); 11] = [
            ("window", |p| p.window = 0),
            ("window", |p| p.window = MAX_WINDOW + 1),
            ("min_calls", |p| p.min_calls = 0),
            ("min_calls", |p| p.min_calls = 21),
            ("failure_rate_percent", |p| p.failure_rate_percent = 0.0),
            ("failure_rate_percent", |p| p.failure_rate_percent = 100.1),
            ("failure_rate_percent", |p| {
                p.failure_rate_percent = f64::NAN
            }),
            ("slow_call_rate_percent", |p| {
                p.slow_call_rate_percent = -1.0
            }),
            ("slow_call_rate_percent", |p| {
                p.slow_call_rate_percent = 101.0
            }),
            ("probes", |p| p.probes = 0),
            ("open_ms", |p| p.open_ms = 0),
        ];
        for (name, spoil) in bad {
            let mut policy = BreakerPolicy::default();
            spoil(&mut policy);
            let err = policy.check().expect_err(name);
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn policy_check_accepts_the_edges_of_each_range() {
        let policy = BreakerPolicy {
            window: MAX_WINDOW,
            min_calls: MAX_WINDOW,
            failure_rate_percent: 100.0,
            slow_call_rate_percent: 0.1,
            probes: 1,
            open_ms: 1,
            ..BreakerPolicy::default()
        };
        assert_eq!(policy.check(), Ok(()));
        let smallest = BreakerPolicy {
            window: 1,
            min_calls: 1,
            ..BreakerPolicy::default()
        };
        assert_eq!(smallest.check(), Ok(()));
    }

    #[test]
    fn a_policy_table_keeps_defaults_for_missing_keys_and_rejects_unknown_ones() {
        let policy: BreakerPolicy = toml::from_str("probes = 1").expect("a valid table");
        assert_eq!(
            policy,
            BreakerPolicy {
                probes: 1,
                ..BreakerPolicy::default()
            }
        );
        assert!(toml::from_str::<BreakerPolicy>("probe = 1").is_err());
    }

    #[test]
    fn the_view_reports_state_rates_and_open_timing() {
        let t0 = Instant::now();
        let breaker = breaker();
        calls(&breaker, t0, 3, Outcome::success(FAST));
        call(&breaker, t0, Outcome::failure(ms(2_000)));
        let closed = breaker.state(t0);
        assert_eq!(
            (closed.calls_in_window, closed.failure_rate_percent),
            (4, 25.0)
        );
        assert_eq!(closed.slow_rate_percent, 25.0);
        assert_eq!(
            (closed.opened_at_ms_ago, closed.retry_after_ms),
            (None, None)
        );

        calls(&breaker, t0, 6, Outcome::failure(FAST));
        let open = breaker.state(t0 + ms(1_500));
        assert_eq!(open.state, BreakerState::Open);
        assert_eq!(open.opened_at_ms_ago, Some(1_500));
        assert_eq!(open.retry_after_ms, Some(3_500));
        assert_eq!(open.calls_in_window, 0);

        let json = serde_json::to_value(breaker.state(t0 + ms(5_000))).expect("serializable");
        assert_eq!(json["state"], "half_open");
        assert_eq!(json["times_opened"], 1);
        assert!(json.get("retry_after_ms").is_none());
    }

    #[test]
    fn a_breaker_and_its_permits_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<CircuitBreaker>();
        shareable::<Permit>();
    }
}
