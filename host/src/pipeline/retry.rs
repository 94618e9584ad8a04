//! Retry decisions: whether a failed call gets another attempt, and after
//! how long, within the one deadline the whole call has.
//!
//! This module only decides; it does not sleep, does not know which failures
//! are worth retrying, and does not run the attempts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde::{Deserialize, Serialize};

/// The least time an attempt needs to be worth starting: a retry is not
/// scheduled unless this much of the deadline is left after its delay.
pub const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(10);

/// The longest wait an upstream `Retry-After` header is taken at.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);

/// How often, and how far apart, a failed call is tried again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 means no retry.
    pub attempts: u32,
    /// Backoff before the first retry, in milliseconds; doubles per retry.
    pub base_ms: u64,
    /// Longest backoff, in milliseconds.
    pub max_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_ms: 50,
            max_ms: 2_000,
        }
    }
}

impl RetryPolicy {
    /// Checks that attempts are within 1..=10 and that the backoff bounds
    /// are at least 1 ms and in order.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=10).contains(&self.attempts) {
            return Err(format!(
                "attempts = {} must be within 1..=10 (1 means no retry)",
                self.attempts
            ));
        }
        if self.base_ms == 0 {
            return Err("base_ms must be at least 1".into());
        }
        if self.max_ms < self.base_ms {
            return Err(format!(
                "max_ms = {} must be at least base_ms = {}",
                self.max_ms, self.base_ms
            ));
        }
        Ok(())
    }

    /// The wait before retry number `retry` (1 for the first retry; 0 is
    /// read as 1).
    ///
    /// The nominal wait is `base_ms * 2^(retry - 1)`, capped at `max_ms`; the
    /// wait returned is drawn uniformly between half of it and all of it.
    /// Keeping the lower half out ("equal jitter" rather than the 0–100 %
    /// "full jitter") means a retry never fires almost at once, while
    /// clients that failed together still spread over the upper half
    /// instead of retrying in step.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let doubling = 1u64
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u64::MAX);
        let nominal = Duration::from_millis(self.base_ms.saturating_mul(doubling).min(self.max_ms));
        rng.random_range(nominal / 2..=nominal)
    }

    /// The wait before the next attempt, after `attempt_done` attempts have
    /// failed, or `None` if there should be no next attempt.
    ///
    /// The wait is the larger of the backoff and the upstream's
    /// `retry_after`: a server that asked for more time gets it. There is no
    /// next attempt when all attempts are used, or when the wait plus
    /// [`MIN_ATTEMPT_TIME`] does not fit in `time_left` — better to return
    /// the failure now than to sleep until the deadline.
    pub fn next_delay(
        &self,
        attempt_done: u32,
        retry_after: Option<Duration>,
        time_left: Duration,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        if attempt_done >= self.attempts {
            return None;
        }
        let delay = self
            .backoff(attempt_done, rng)
            .max(retry_after.unwrap_or_default());
        let needed = delay.checked_add(MIN_ATTEMPT_TIME)?;
        (needed <= time_left).then_some(delay)
    }
}

/// How long an HTTP `Retry-After` header value asks to wait, as seen at
/// `now`.
///
/// Accepts delta-seconds (`"3"`) and an IMF-fixdate
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), the one date form HTTP senders must
/// use; a date in the past means no wait. Waits are capped at
/// [`MAX_RETRY_AFTER`]. Anything else — negative or fractional numbers, the
/// obsolete RFC 850 and asctime dates, trailing text — gives `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if value.bytes().all(|b| b.is_ascii_digit()) {
        delta_seconds(value)?
    } else {
        let at = parse_imf_fixdate(value)?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Whole seconds from a non-empty string of ASCII digits; too many to count
/// reads as the cap.
fn delta_seconds(digits: &str) -> Option<Duration> {
    if digits.is_empty() {
        return None;
    }
    let seconds = digits.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds))
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The instant an IMF-fixdate names: `Sun, 06 Nov 1994 08:49:37 GMT`, with
/// exactly those widths and single spaces (RFC 9110, section 5.6.7).
fn parse_imf_fixdate(value: &str) -> Option<SystemTime> {
    let rest = value.strip_suffix(" GMT")?;
    let mut fields = rest.split(' ');
    let day_name = fields.next()?.strip_suffix(',')?;
    let day = fixed_digits(fields.next()?, 2)?;
    let month_name = fields.next()?;
    let year = fixed_digits(fields.next()?, 4)?;
    let time = fields.next()?;
    if fields.next().is_some() || !DAY_NAMES.contains(&day_name) {
        return None;
    }
    let month = MONTH_NAMES.iter().position(|name| *name == month_name)? + 1;
    let month = u32::try_from(month).ok()?;
    if !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let seconds_of_day = parse_time_of_day(time)?;
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(seconds_of_day);
    // Before 1970 is as much in the past as any other past date.
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
}

/// Seconds since midnight from `HH:MM:SS`; 60 seconds is a leap second.
fn parse_time_of_day(time: &str) -> Option<u32> {
    let mut parts = time.split(':');
    let hour = fixed_digits(parts.next()?, 2)?;
    let minute = fixed_digits(parts.next()?, 2)?;
    let second = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(hour * 3_600 + minute * 60 + second)
}

/// The number `text` spells with exactly `width` ASCII digits.
fn fixed_digits(text: &str, width: usize) -> Option<u32> {
    if text.len() != width || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn backoff_doubles_per_retry_is_capped_and_stays_within_half_to_all_of_nominal() {
        let policy = RetryPolicy {
            attempts: 10,
            base_ms: 50,
            max_ms: 2_000,
        };
        let nominal = [50, 100, 200, 400, 800, 1_600, 2_000, 2_000, 2_000, 2_000];
        let mut rng = rng();
        for (retry, nominal) in (1..).zip(nominal) {
            let (low, high) = (ms(nominal) / 2, ms(nominal));
            let samples: Vec<_> = (0..1_000)
                .map(|_| policy.backoff(retry, &mut rng))
                .collect();
            assert!(
                samples.iter().all(|d| (low..=high).contains(d)),
                "retry {retry}: outside {low:?}..={high:?}"
            );
            let mean = samples.iter().sum::<Duration>() / 1_000;
            assert!(mean > low + (high - low) / 4 && mean < high - (high - low) / 4);
        }
    }

    #[test]
    fn backoff_does_not_overflow_on_absurd_retry_numbers() {
        let policy = RetryPolicy::default();
        let wait = policy.backoff(u32::MAX, &mut rng());
        assert!((ms(1_000)..=ms(2_000)).contains(&wait));
    }

    #[test]
    fn there_is_no_delay_after_the_last_attempt() {
        let policy = RetryPolicy::default();
        let plenty = Duration::from_secs(60);
        assert!(policy.next_delay(1, None, plenty, &mut rng()).is_some());
        assert!(policy.next_delay(2, None, plenty, &mut rng()).is_some());
        assert_eq!(policy.next_delay(3, None, plenty, &mut rng()), None);
        let once = RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        };
        assert_eq!(once.next_delay(1, None, plenty, &mut rng()), None);
    }

    #[test]
    fn an_upstream_retry_after_longer_than_the_backoff_wins() {
        let policy = RetryPolicy::default();
        let delay = policy.next_delay(1, Some(ms(700)), Duration::from_secs(5), &mut rng());
        assert_eq!(delay, Some(ms(700)));
    }

    #[test]
    fn a_retry_after_shorter_than_the_backoff_does_not_shorten_it() {
        let policy = RetryPolicy::default();
        let delay = policy
            .next_delay(2, Some(ms(1)), Duration::from_secs(5), &mut rng())
            .expect("fits");
        assert!((ms(50)..=ms(100)).contains(&delay), "{delay:?}");
    }

    #[test]
    fn a_delay_that_leaves_no_time_for_the_attempt_gives_none() {
        let policy = RetryPolicy::default();
        let retry_after = Some(ms(500));
        let just_inside = ms(500) + MIN_ATTEMPT_TIME;
        let just_outside = just_inside - Duration::from_nanos(1);
        assert_eq!(
            policy.next_delay(1, retry_after, just_inside, &mut rng()),
            Some(ms(500))
        );
        assert_eq!(
            policy.next_delay(1, retry_after, just_outside, &mut rng()),
            None
        );
        assert_eq!(policy.next_delay(1, None, ms(20), &mut rng()), None);
    }

    #[test]
    fn policy_check_accepts_the_default_and_rejects_out_of_range_values() {
        assert_eq!(RetryPolicy::default().check(), Ok(()));
        let with = |attempts, base_ms, max_ms| RetryPolicy {
            attempts,
            base_ms,
            max_ms,
        };
        assert!(with(1, 1, 1).check().is_ok());
        assert!(with(10, 50, 2_000).check().is_ok());
        assert!(with(0, 50, 2_000).check().is_err());
        assert!(with(11, 50, 2_000).check().is_err());
        assert!(with(3, 0, 2_000).check().is_err());
        assert!(with(3, 100, 99).check().is_err());
    }

    #[test]
    fn policy_parsing_fills_defaults_and_rejects_unknown_fields() {
        let parsed: RetryPolicy = serde_json::from_str(r#"{"attempts": 5}"#).expect("known");
        assert_eq!(
            parsed,
            RetryPolicy {
                attempts: 5,
                ..RetryPolicy::default()
            }
        );
        assert!(serde_json::from_str::<RetryPolicy>(r#"{"attempt": 5}"#).is_err());
    }

    /// 2015-10-21T07:28:00Z.
    fn october_21_2015() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_445_412_480)
    }

    #[test]
    fn retry_after_in_seconds_is_read_and_absurd_values_are_capped() {
        let now = october_21_2015();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn retry_after_as_an_imf_date_is_measured_from_now() {
        let now = october_21_2015() - Duration::from_secs(90);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(90))
        );
        let leap_day = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2000 00:00:10 GMT", leap_day),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn retry_after_as_a_past_date_means_no_wait() {
        let now = october_21_2015();
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 1900 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn retry_after_rejects_garbage_negative_numbers_and_other_date_forms() {
        let now = october_21_2015();
        for value in [
            "",
            "-3",
            "+3",
            "3.5",
            "3 s",
            "soon",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 21 Oct 2015 7:28:00 GMT",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 29 Feb 2015 07:28:00 GMT",
            "Wed, 21 Okt 2015 07:28:00 GMT",
            "Xyz, 21 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:00:00 GMT",
            "Wed, 21 Oct 2015 07:28:00:00 GMT",
            "Wed,  21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now), None, "{value:?}");
        }
    }
}
