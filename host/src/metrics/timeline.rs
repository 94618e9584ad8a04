//! One call series' outcomes minute by minute over the last hour: what the
//! dashboard draws as error codes and latency over time.

use std::collections::BTreeMap;
use std::time::Duration;

use super::histogram::BucketCounts;

/// Minutes a timeline remembers.
pub const MINUTES: u64 = 60;

/// A minute in milliseconds.
const MINUTE_MS: u64 = 60_000;

/// Calls of one minute.
#[derive(Debug, Clone, Default)]
struct Minute {
    /// Which minute this is (time divided by a minute).
    index: u64,
    /// Calls per outcome code (`ok` or an error code); few codes per series.
    codes: Vec<(String, u64)>,
    latency: BucketCounts,
}

/// Calls per minute of one series, in a ring of [`MINUTES`] slots.
#[derive(Debug, Default)]
pub struct Timeline {
    minutes: Vec<Minute>,
}

/// What happened in one minute, as read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinuteCounts {
    /// When the minute began, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Calls that finished in it, per outcome code.
    pub codes: BTreeMap<String, u64>,
    /// Latency of those calls.
    pub latency: BucketCounts,
}

impl Timeline {
    /// Counts a call that finished at `now_ms` with `code` after `latency`.
    pub fn record(&mut self, now_ms: u64, code: &str, latency: Duration) {
        if self.minutes.is_empty() {
            self.minutes = vec![Minute::default(); MINUTES as usize];
        }
        let index = now_ms / MINUTE_MS;
        let minute = &mut self.minutes[(index % MINUTES) as usize];
        if minute.index != index {
            *minute = Minute {
                index,
                ..Minute::default()
            };
        }
        match minute.codes.iter_mut().find(|(known, _)| known == code) {
            Some((_, count)) => *count += 1,
            None => minute.codes.push((code.to_owned(), 1)),
        }
        minute.latency.observe(latency);
    }

    /// The last `count` minutes up to the one holding `now_ms`, oldest
    /// first, each added into `into` (which must hold `count` minutes).
    pub fn add_into(&self, now_ms: u64, into: &mut [MinuteCounts]) {
        let current = now_ms / MINUTE_MS;
        let count = into.len() as u64;
        for minute in &self.minutes {
            let age = current.wrapping_sub(minute.index);
            if minute.codes.is_empty() || age >= count {
                continue;
            }
            let slot = &mut into[(count - 1 - age) as usize];
            for (code, calls) in &minute.codes {
                *slot.codes.entry(code.clone()).or_default() += calls;
            }
            slot.latency.add(&minute.latency);
        }
    }
}

/// `count` empty minutes (at most [`MINUTES`]) ending with the one holding `now_ms`.
pub fn empty_minutes(now_ms: u64, count: u64) -> Vec<MinuteCounts> {
    let count = count.clamp(1, MINUTES);
    let current = now_ms / MINUTE_MS;
    (0..count)
        .map(|back| MinuteCounts {
            start_ms: (current - (count - 1 - back).min(current)) * MINUTE_MS,
            ..MinuteCounts::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000 / MINUTE_MS * MINUTE_MS;

    #[test]
    fn calls_land_in_their_minute_and_old_minutes_are_forgotten() {
        let mut timeline = Timeline::default();
        timeline.record(T0, "ok", Duration::from_millis(3));
        timeline.record(T0 + 59_999, "upstream_timeout", Duration::from_millis(900));
        timeline.record(T0 + MINUTE_MS, "ok", Duration::from_millis(3));
        let now = T0 + 2 * MINUTE_MS;
        let mut minutes = empty_minutes(now, 3);
        timeline.add_into(now, &mut minutes);
        assert_eq!(
            minutes.iter().map(|m| m.start_ms).collect::<Vec<_>>(),
            [T0, T0 + MINUTE_MS, T0 + 2 * MINUTE_MS]
        );
        assert_eq!(minutes[0].latency.count(), 2);
        assert_eq!(minutes[0].codes["upstream_timeout"], 1);
        assert_eq!(minutes[0].latency.quantile_ms(1.0), Some(1000.0));
        assert_eq!(
            (minutes[1].latency.count(), minutes[2].latency.count()),
            (1, 0)
        );

        let mut shorter = empty_minutes(now, 2);
        timeline.add_into(now, &mut shorter);
        assert_eq!(
            shorter[0].latency.count(),
            1,
            "the first minute is outside two"
        );

        let an_hour_later = T0 + MINUTES * MINUTE_MS;
        timeline.record(an_hour_later, "ok", Duration::from_millis(3));
        let mut hour = empty_minutes(an_hour_later, MINUTES);
        timeline.add_into(an_hour_later, &mut hour);
        assert_eq!(
            hour.iter().map(|m| m.latency.count()).sum::<u64>(),
            2,
            "the first minute's slot was reused"
        );
    }

    #[test]
    fn minutes_add_up_across_series() {
        let mut a = Timeline::default();
        let mut b = Timeline::default();
        a.record(T0, "ok", Duration::from_millis(1));
        b.record(T0, "ok", Duration::from_millis(1));
        b.record(T0, "rate_limited", Duration::from_millis(1));
        let mut minutes = empty_minutes(T0, 1);
        a.add_into(T0, &mut minutes);
        b.add_into(T0, &mut minutes);
        assert_eq!(minutes[0].codes["ok"], 2);
        assert_eq!(
            (minutes[0].latency.count(), minutes[0].codes["rate_limited"]),
            (3, 1)
        );
        assert_eq!(minutes[0].latency.count(), 3);
    }

    #[test]
    fn no_more_minutes_than_remembered() {
        assert_eq!(empty_minutes(T0, 500).len(), MINUTES as usize);
        assert_eq!(empty_minutes(T0, 0).len(), 1);
        assert_eq!(empty_minutes(0, 3)[0].start_ms, 0, "never before the epoch");
    }
}
