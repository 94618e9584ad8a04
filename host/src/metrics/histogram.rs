//! A fixed-bucket latency histogram updated with atomics only.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds; the last bucket is `+Inf`.
pub const BOUNDS_SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Observations of one series: counts per bucket, their sum and number.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_SECONDS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// A histogram read at one moment: cumulative bucket counts, sum, count.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Observations at or under each bound, cumulative as Prometheus expects.
    pub cumulative: [u64; BOUNDS_SECONDS.len()],
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        if let Some(bucket) = BOUNDS_SECONDS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = [0; BOUNDS_SECONDS.len()];
        let mut running = 0;
        for (slot, bucket) in cumulative.iter_mut().zip(&self.buckets) {
            running += bucket.load(Ordering::Relaxed);
            *slot = running;
        }
        Snapshot {
            cumulative,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_slow_calls_only_reach_inf() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(20));
        histogram.observe(Duration::from_secs(30));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.cumulative[0], 1, "≤ 0.5 ms");
        assert_eq!(snapshot.cumulative[5], 2, "≤ 25 ms");
        assert_eq!(
            snapshot.cumulative[13], 2,
            "≤ 10 s; the 30 s call is only in +Inf"
        );
        assert_eq!(snapshot.count, 3);
        assert!((snapshot.sum_seconds - 30.0203).abs() < 1e-6);
    }
}
