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

/// The bucket of `latency`: the first bound it is at or under, or
/// `BOUNDS_SECONDS.len()` past every bound.
fn bucket_of(latency: Duration) -> usize {
    let seconds = latency.as_secs_f64();
    BOUNDS_SECONDS
        .iter()
        .position(|bound| seconds <= *bound)
        .unwrap_or(BOUNDS_SECONDS.len())
}

/// Observations per bucket, the last past every bound: plain counts that
/// windows and timelines keep per slot and add up when read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BucketCounts([u64; BOUNDS_SECONDS.len() + 1]);

impl BucketCounts {
    /// Counts one observation.
    pub fn observe(&mut self, latency: Duration) {
        self.0[bucket_of(latency)] += 1;
    }

    /// Adds `other`'s observations to these.
    pub fn add(&mut self, other: &BucketCounts) {
        for (total, count) in self.0.iter_mut().zip(other.0) {
            *total += count;
        }
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `quantile` (0 to 1) as the upper bound of the bucket holding it,
    /// in milliseconds; `None` without observations or past the largest bound.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((count as f64 * quantile).ceil() as u64).clamp(1, count);
        let mut seen = 0;
        let bucket = self.0.iter().position(|in_bucket| {
            seen += in_bucket;
            seen >= rank
        })?;
        BOUNDS_SECONDS.get(bucket).map(|seconds| seconds * 1000.0)
    }
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
        if let Some(bucket) = self.buckets.get(bucket_of(latency)) {
            bucket.fetch_add(1, Ordering::Relaxed);
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

impl Snapshot {
    /// The observations per bucket rather than cumulative.
    pub fn buckets(&self) -> BucketCounts {
        let mut buckets = BucketCounts::default();
        let mut below = 0;
        for (slot, cumulative) in buckets.0.iter_mut().zip(self.cumulative) {
            *slot = cumulative - below;
            below = cumulative;
        }
        buckets.0[BOUNDS_SECONDS.len()] = self.count.saturating_sub(below);
        buckets
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
        let buckets = snapshot.buckets();
        assert_eq!(buckets.count(), 3);
        assert_eq!(buckets.quantile_ms(0.5), Some(25.0));
        assert_eq!(buckets.quantile_ms(0.95), None, "past the largest bound");
        assert_eq!(BucketCounts::default().quantile_ms(0.5), None);
    }

    #[test]
    fn a_quantile_is_the_bound_of_the_bucket_holding_its_rank() {
        let mut buckets = BucketCounts::default();
        for _ in 0..95 {
            buckets.observe(Duration::from_millis(4));
        }
        for _ in 0..5 {
            buckets.observe(Duration::from_millis(400));
        }
        assert_eq!(buckets.quantile_ms(0.95), Some(5.0));
        assert_eq!(buckets.quantile_ms(0.96), Some(500.0));
        assert_eq!(buckets.quantile_ms(0.0), Some(5.0), "the first observation");
        let mut more = buckets;
        more.add(&buckets);
        assert_eq!(more.count(), 200);
    }
}
