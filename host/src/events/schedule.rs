//! When a failed delivery is tried again.
//!
//! The default follows Svix's: the first attempt at once, then 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h and 10 h later, each wait ±20 % at random, so
//! retries span about 27.5 hours before a delivery goes to the dead-letter
//! queue. Operators may set another schedule (`--delivery-retries`).

use std::time::Duration;

/// The longest duration [`parse_duration`] takes: a year.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The waits between attempts; their count is the number of retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Self(vec![
            Duration::from_secs(5),
            minutes(5),
            minutes(30),
            minutes(120),
            minutes(300),
            minutes(600),
            minutes(600),
        ])
    }
}

impl RetrySchedule {
    /// A schedule of these waits.
    pub fn new(waits: Vec<Duration>) -> Self {
        Self(waits)
    }

    /// Parses a comma-separated list of waits such as `5s,5m,30m,2h` (units
    /// `ms`, `s`, `m`, `h`); an empty list means no retries.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(parse_duration)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Attempts in all, the first included.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.0.len()).map_or(u32::MAX, |retries| retries.saturating_add(1))
    }

    /// How long to wait after `made` failed attempts, or `None` when they
    /// are all used up; `jitter` in [0, 1) picks a point within ±20 %.
    pub fn wait_after(&self, made: u32, jitter: f64) -> Option<Duration> {
        let index = usize::try_from(made).ok()?.checked_sub(1)?;
        let base = *self.0.get(index)?;
        Some(base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0)))
    }
}

/// Parses one duration such as `250ms`, `5s`, `30m` or `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit (ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` does not start with a number"))?;
    let wait = match unit {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(format!("`{text}` has an unknown unit; use ms, s, m or h")),
    };
    if wait > MAX_DURATION {
        return Err(format!("`{text}` is longer than a year"));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_spans_about_27_hours_in_eight_attempts() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        let total: Duration = (1..8)
            .filter_map(|made| schedule.wait_after(made, 0.5))
            .sum();
        assert_eq!(
            total,
            Duration::from_secs(5 + 60 * (5 + 30 + 120 + 300 + 600 + 600))
        );
        assert_eq!(schedule.wait_after(8, 0.5), None);
        assert_eq!(schedule.wait_after(1, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(schedule.wait_after(1, 1.0), Some(Duration::from_secs(6)));
    }

    #[test]
    fn schedules_parse_with_units() {
        assert_eq!(
            RetrySchedule::parse("50ms, 2s,1m,1h"),
            Ok(RetrySchedule::new(vec![
                Duration::from_millis(50),
                Duration::from_secs(2),
                Duration::from_secs(60),
                Duration::from_secs(3600)
            ]))
        );
        assert_eq!(RetrySchedule::parse("").map(|s| s.attempts()), Ok(1));
        assert!(RetrySchedule::parse("5").is_err());
        assert!(RetrySchedule::parse("5d").is_err());
        assert!(RetrySchedule::parse("18446744073709551615s").is_err());
        assert!(parse_duration("8000h").is_ok() && parse_duration("9000000h").is_err());
    }
}
