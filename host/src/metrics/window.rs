//! Outcomes of one connector's calls over a sliding window, in slots that
//! expire as time passes: what alert rules judge.

use std::time::Duration;

use super::histogram::BucketCounts;

/// Slots a window is divided into; the window slides by one slot at a time.
const SLOTS: u64 = 30;

/// Calls, failures and latency buckets of one slot.
#[derive(Debug, Clone, Default)]
struct Slot {
    /// Which slot of time this is (time divided by the slot length).
    index: u64,
    calls: u64,
    failures: u64,
    latency: BucketCounts,
}

/// A sliding window of call outcomes.
#[derive(Debug, Clone)]
pub struct OutcomeWindow {
    slot_ms: u64,
    slots: Vec<Slot>,
}

/// What a window holds now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSummary {
    /// Calls finished in the window.
    pub calls: u64,
    /// Of those, failures on the connector's side.
    pub failures: u64,
    /// The 95th percentile latency, as the upper bound of its bucket, in
    /// milliseconds; `None` without calls or past the largest bound.
    pub p95_ms: Option<f64>,
}

impl WindowSummary {
    /// Failures as a percentage of calls (0 without calls).
    pub fn failure_percent(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 * 100.0 / self.calls as f64
        }
    }
}

impl OutcomeWindow {
    /// A window of `length`.
    pub fn new(length: Duration) -> Self {
        let length_ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX);
        Self {
            slot_ms: (length_ms / SLOTS).max(1),
            slots: vec![Slot::default(); SLOTS as usize],
        }
    }

    fn slot(&mut self, now_ms: u64) -> &mut Slot {
        let index = now_ms / self.slot_ms;
        let slot = &mut self.slots[(index % SLOTS) as usize];
        if slot.index != index {
            *slot = Slot {
                index,
                ..Slot::default()
            };
        }
        slot
    }

    /// Counts a call that finished at `now_ms`.
    pub fn record(&mut self, now_ms: u64, failed: bool, latency: Duration) {
        let slot = self.slot(now_ms);
        slot.calls += 1;
        slot.failures += u64::from(failed);
        slot.latency.observe(latency);
    }

    /// The calls of the slots still inside the window at `now_ms`.
    pub fn summary(&self, now_ms: u64) -> WindowSummary {
        let current = now_ms / self.slot_ms;
        let live = self
            .slots
            .iter()
            .filter(|slot| slot.calls > 0 && current.saturating_sub(slot.index) < SLOTS);
        let mut calls = 0;
        let mut failures = 0;
        let mut latency = BucketCounts::default();
        for slot in live {
            calls += slot.calls;
            failures += slot.failures;
            latency.add(&slot.latency);
        }
        let p95_ms = latency.quantile_ms(0.95);
        WindowSummary {
            calls,
            failures,
            p95_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_happened_inside_the_window_and_forgets_the_rest() {
        let mut window = OutcomeWindow::new(Duration::from_secs(30));
        window.record(0, true, Duration::from_millis(3));
        window.record(10_000, false, Duration::from_millis(3));
        window.record(20_000, false, Duration::from_millis(3));
        let summary = window.summary(20_000);
        assert_eq!((summary.calls, summary.failures), (3, 1));
        assert!((summary.failure_percent() - 100.0 / 3.0).abs() < 1e-9);
        let later = window.summary(31_000);
        assert_eq!(
            (later.calls, later.failures),
            (2, 0),
            "the failure slid out"
        );
        assert_eq!(window.summary(60_000).calls, 0);
    }

    #[test]
    fn p95_is_the_bound_of_the_bucket_holding_the_95th_call() {
        let mut window = OutcomeWindow::new(Duration::from_secs(60));
        for _ in 0..95 {
            window.record(1_000, false, Duration::from_millis(4));
        }
        for _ in 0..5 {
            window.record(1_000, false, Duration::from_millis(400));
        }
        assert_eq!(window.summary(1_000).p95_ms, Some(5.0));
        window.record(1_000, false, Duration::from_millis(400));
        assert_eq!(window.summary(1_000).p95_ms, Some(500.0));
        assert_eq!(
            OutcomeWindow::new(Duration::from_secs(1)).summary(0).p95_ms,
            None
        );
    }
}
