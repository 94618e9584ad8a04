//! Counters and latency histograms of what the host does, rendered in the
//! Prometheus text format at `GET /metrics`.
//!
//! Calls are counted per connector, version, operation and outcome code
//! (`ok` or the error code the caller got) with a latency histogram per
//! connector, version and operation; webhooks per connector, hook and code;
//! event deliveries per target kind and outcome, with the lag from an
//! event's time to its delivery. Label values come from installed
//! connectors only (names, versions, declared operations and hooks, their
//! error codes), never from unchecked caller input, so series stay bounded.
//! Gauges (breakers, instance pool, cache) are read when rendered. Each
//! call series also keeps its last hour minute by minute for the dashboard.

mod histogram;
mod render;
mod timeline;
mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use timeline::Timeline;

pub use histogram::{BOUNDS_SECONDS, BucketCounts, Histogram, Snapshot};
pub use render::{Gauge, render};
pub use timeline::{MINUTES, MinuteCounts, empty_minutes};
pub use window::{OutcomeWindow, WindowSummary};

/// Labels of one call series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallLabels {
    /// The connector.
    pub connector: String,
    /// The version that served (or refused) the call.
    pub version: String,
    /// The operation.
    pub operation: String,
}

/// A call series: its latency and its outcomes by code, since start and
/// minute by minute.
#[derive(Debug, Default)]
pub struct CallSeries {
    /// Latency of every call, whatever its outcome.
    pub latency: Histogram,
    codes: RwLock<HashMap<String, Arc<AtomicU64>>>,
    timeline: Mutex<Timeline>,
}

impl CallSeries {
    /// Counts per outcome code, sorted by code.
    pub fn codes(&self) -> Vec<(String, u64)> {
        let mut codes: Vec<_> = read(&self.codes)
            .iter()
            .map(|(code, count)| (code.clone(), count.load(Ordering::Relaxed)))
            .collect();
        codes.sort();
        codes
    }

    /// Adds this series' calls of the minutes in `into` (see [`empty_minutes`]).
    pub fn add_minutes(&self, now_ms: u64, into: &mut [MinuteCounts]) {
        lock(&self.timeline).add_into(now_ms, into);
    }
}

/// Everything counted since the host started, and each connector's recent
/// outcomes over a sliding window for the alert rules.
#[derive(Debug)]
pub struct Metrics {
    calls: RwLock<HashMap<CallLabels, Arc<CallSeries>>>,
    webhooks: RwLock<HashMap<[String; 3], Arc<AtomicU64>>>,
    deliveries: RwLock<HashMap<[String; 2], Arc<AtomicU64>>>,
    delivery_lag: Histogram,
    window: Duration,
    windows: RwLock<HashMap<String, Arc<Mutex<OutcomeWindow>>>>,
}

impl Default for Metrics {
    /// Windows of five minutes.
    fn default() -> Self {
        Self::with_window(Duration::from_secs(300))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value under `key`, created on first use; the common case takes only a read lock.
fn entry<K, V>(map: &RwLock<HashMap<K, Arc<V>>>, key: &K, make: impl FnOnce() -> K) -> Arc<V>
where
    K: Eq + std::hash::Hash,
    V: Default,
{
    if let Some(value) = read(map).get(key) {
        return value.clone();
    }
    write(map).entry(make()).or_default().clone()
}

impl Metrics {
    /// Metrics whose outcome windows span `window`.
    pub fn with_window(window: Duration) -> Self {
        Self {
            calls: RwLock::default(),
            webhooks: RwLock::default(),
            deliveries: RwLock::default(),
            delivery_lag: Histogram::default(),
            window,
            windows: RwLock::default(),
        }
    }

    /// Counts, in `connector`'s window, a call that ran and `failed` on the
    /// connector's side or not; business answers and refusals are not outcomes.
    pub fn record_outcome(&self, connector: &str, now_ms: u64, failed: bool, latency: Duration) {
        // The read guard must be gone before the write lock is taken.
        let existing = read(&self.windows).get(connector).cloned();
        let window = existing.unwrap_or_else(|| {
            write(&self.windows)
                .entry(connector.to_owned())
                .or_insert_with(|| Arc::new(Mutex::new(OutcomeWindow::new(self.window))))
                .clone()
        });
        lock(&window).record(now_ms, failed, latency);
    }

    /// What `connector`'s window holds at `now_ms`.
    pub fn window_summary(&self, connector: &str, now_ms: u64) -> WindowSummary {
        read(&self.windows).get(connector).map_or(
            WindowSummary {
                calls: 0,
                failures: 0,
                p95_ms: None,
            },
            |window| lock(window).summary(now_ms),
        )
    }

    /// Counts one call of `labels` that ended at `now_ms` with `code` (`ok`
    /// for success) after `latency`.
    pub fn record_call(&self, labels: &CallLabels, now_ms: u64, code: &str, latency: Duration) {
        let series = entry(&self.calls, labels, || labels.clone());
        series.latency.observe(latency);
        entry(&series.codes, &code.to_owned(), || code.to_owned()).fetch_add(1, Ordering::Relaxed);
        lock(&series.timeline).record(now_ms, code, latency);
    }

    /// Counts one webhook to `connector`'s `hook` answered with `code` (`ok` when accepted).
    pub fn record_webhook(&self, connector: &str, hook: &str, code: &str) {
        let key = [connector.to_owned(), hook.to_owned(), code.to_owned()];
        entry(&self.webhooks, &key, || key.clone()).fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one delivery attempt to a `target` kind (`subscription`, `rule`,
    /// `connector`) with `outcome` (`delivered`, `failed`, `dead`); `lag` is the
    /// time from the event's time to a successful delivery.
    pub fn record_delivery(&self, target: &str, outcome: &str, lag: Option<Duration>) {
        let key = [target.to_owned(), outcome.to_owned()];
        entry(&self.deliveries, &key, || key.clone()).fetch_add(1, Ordering::Relaxed);
        if let Some(lag) = lag {
            self.delivery_lag.observe(lag);
        }
    }

    /// Every call series, sorted by labels.
    pub fn calls(&self) -> Vec<(CallLabels, Arc<CallSeries>)> {
        let mut calls: Vec<_> = read(&self.calls)
            .iter()
            .map(|(labels, series)| (labels.clone(), series.clone()))
            .collect();
        calls.sort_by(|a, b| a.0.cmp(&b.0));
        calls
    }

    fn counters<const N: usize>(
        map: &RwLock<HashMap<[String; N], Arc<AtomicU64>>>,
    ) -> Vec<([String; N], u64)> {
        let mut counters: Vec<_> = read(map)
            .iter()
            .map(|(key, count)| (key.clone(), count.load(Ordering::Relaxed)))
            .collect();
        counters.sort();
        counters
    }

    /// Webhook counts by connector, hook and code.
    pub fn webhooks(&self) -> Vec<([String; 3], u64)> {
        Self::counters(&self.webhooks)
    }

    /// Delivery counts by target kind and outcome.
    pub fn deliveries(&self) -> Vec<([String; 2], u64)> {
        Self::counters(&self.deliveries)
    }

    /// Lag of successful deliveries.
    pub fn delivery_lag(&self) -> Snapshot {
        self.delivery_lag.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_per_series_and_code() {
        let metrics = Metrics::default();
        let labels = CallLabels {
            connector: "crm".into(),
            version: "0.1.0".into(),
            operation: "lookup".into(),
        };
        let now_ms = 1_700_000_000_000;
        metrics.record_call(&labels, now_ms, "ok", Duration::from_millis(3));
        metrics.record_call(&labels, now_ms, "ok", Duration::from_millis(4));
        metrics.record_call(
            &labels,
            now_ms,
            "upstream_unavailable",
            Duration::from_millis(90),
        );
        let calls = metrics.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].1.codes(),
            [("ok".to_owned(), 2), ("upstream_unavailable".to_owned(), 1)]
        );
        assert_eq!(calls[0].1.latency.snapshot().count, 3);
        let mut minutes = empty_minutes(now_ms, 5);
        calls[0].1.add_minutes(now_ms, &mut minutes);
        assert_eq!(minutes[4].latency.count(), 3, "this minute");
        assert_eq!(minutes[4].codes["upstream_unavailable"], 1);
        assert_eq!(
            minutes[..4].iter().map(|m| m.latency.count()).sum::<u64>(),
            0
        );
    }
}
