//! Made-up parcel histories that look real and never change: everything is derived from a
//! hash of carrier and tracking number, nothing from the wall clock.
//!
//! This module owns the shape of a tracking reply and how its content is chosen; the route
//! and its input checks live in the parent module.

use serde::Serialize;

/// Cities parcels travel between.
const CITIES: [&str; 15] = [
    "Shenzhen",
    "Guangzhou",
    "Shanghai",
    "Beijing",
    "Hangzhou",
    "Chengdu",
    "Wuhan",
    "Nanjing",
    "Xi'an",
    "Chongqing",
    "Tianjin",
    "Suzhou",
    "Xiamen",
    "Changsha",
    "Zhengzhou",
];

/// Histories start within a year from 2025-01-01T00:00:00Z.
const FIRST_PICKUP_UNIX: u64 = 1_735_689_600;
const HOUR: u64 = 3_600;
const DAY: u64 = 24 * HOUR;

/// What the provider answers for a known parcel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Tracking {
    carrier: &'static str,
    tracking_number: String,
    status: Status,
    /// `YYYY-MM-DD`; `None` once delivered.
    estimated_delivery: Option<String>,
    /// Newest first.
    events: Vec<Event>,
}

/// Where a parcel is in its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Status {
    InTransit,
    OutForDelivery,
    Delivered,
}

/// One scan of the parcel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Event {
    /// RFC 3339, UTC.
    time: String,
    location: &'static str,
    description: &'static str,
}

/// The scans between pickup and the last mile, in journey order, as (description, leg).
const LINE_HAUL: [(&str, Leg); 4] = [
    ("Departed sorting center", Leg::Origin),
    ("Arrived at sorting center", Leg::Hub),
    ("Departed sorting center", Leg::Hub),
    ARRIVED_AT_DESTINATION,
];
const ARRIVED_AT_DESTINATION: (&str, Leg) = ("Arrived at sorting center", Leg::Destination);

#[derive(Debug, Clone, Copy)]
enum Leg {
    Origin,
    Hub,
    Destination,
}

impl Tracking {
    /// The parcel's history: the same carrier and number always give the same answer.
    pub(crate) fn generate(carrier: &'static str, tracking_number: &str) -> Self {
        let mut dice = Dice::seeded(&[carrier.as_bytes(), b"/", tracking_number.as_bytes()]);
        let status =
            [Status::InTransit, Status::OutForDelivery, Status::Delivered][dice.below(3) as usize];
        let route = Route::pick(&mut dice);
        let scans = journey(status, &mut dice);

        // Couriers pick up between 09:00 and 19:59 China time (UTC+8).
        let mut last_scan = FIRST_PICKUP_UNIX
            + dice.below(365) * DAY
            + (1 + dice.below(11)) * HOUR
            + dice.below(60) * 60;
        let mut events = Vec::with_capacity(scans.len());
        for (index, (description, leg)) in scans.into_iter().enumerate() {
            if index > 0 {
                last_scan += (2 + dice.below(12)) * HOUR + dice.below(60) * 60;
            }
            events.push(Event {
                time: rfc3339(last_scan),
                location: route.city(leg),
                description,
            });
        }
        events.reverse();

        let estimated_delivery = match status {
            Status::InTransit => Some(date(last_scan + (1 + dice.below(3)) * DAY)),
            Status::OutForDelivery => Some(date(last_scan)),
            Status::Delivered => None,
        };
        Self {
            carrier,
            tracking_number: tracking_number.to_owned(),
            status,
            estimated_delivery,
            events,
        }
    }
}

/// The scans of a parcel with this status, oldest first: 2 to 5 of them.
fn journey(status: Status, dice: &mut Dice) -> Vec<(&'static str, Leg)> {
    let last_mile: &[(&str, Leg)] = match status {
        Status::InTransit => &[],
        Status::OutForDelivery => &[("Out for delivery", Leg::Destination)],
        Status::Delivered => &[
            ("Out for delivery", Leg::Destination),
            ("Delivered, signed for by recipient", Leg::Destination),
        ],
    };
    // Pickup plus the last mile are fixed; an in-transit parcel has at least one more scan.
    let fixed = 1 + last_mile.len();
    let least_line_haul = usize::from(last_mile.is_empty());
    let most_line_haul = 5 - fixed;
    let line_haul =
        least_line_haul + dice.below((most_line_haul - least_line_haul + 1) as u64) as usize;

    let mut scans = vec![("Picked up by courier", Leg::Origin)];
    if last_mile.is_empty() {
        scans.extend(LINE_HAUL.iter().take(line_haul).copied());
    } else if line_haul > 0 {
        // The last mile starts where the parcel last arrived: skip hub scans, never that one.
        scans.extend(LINE_HAUL.iter().take(line_haul - 1).copied());
        scans.push(ARRIVED_AT_DESTINATION);
    }
    scans.extend_from_slice(last_mile);
    scans
}

/// Three distinct cities: where the parcel starts, is sorted, and ends.
struct Route {
    origin: &'static str,
    hub: &'static str,
    destination: &'static str,
}

impl Route {
    fn pick(dice: &mut Dice) -> Self {
        let count = CITIES.len() as u64;
        let origin = dice.below(count);
        let hub = (origin + 1 + dice.below(count - 1)) % count;
        let destination = (0..count)
            .filter(|city| *city != origin && *city != hub)
            .nth(dice.below(count - 2) as usize)
            .unwrap_or(origin);
        Self {
            origin: CITIES[origin as usize],
            hub: CITIES[hub as usize],
            destination: CITIES[destination as usize],
        }
    }

    fn city(&self, leg: Leg) -> &'static str {
        match leg {
            Leg::Origin => self.origin,
            Leg::Hub => self.hub,
            Leg::Destination => self.destination,
        }
    }
}

/// A deterministic stream of numbers: FNV-1a of the seed, stretched with SplitMix64. Both
/// are fixed algorithms, so answers stay the same across Rust and crate versions.
struct Dice(u64);

impl Dice {
    fn seeded(parts: &[&[u8]]) -> Self {
        let hash = parts
            .iter()
            .flat_map(|part| part.iter())
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        Self(hash)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound`; `bound` must not be 0.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch.
fn rfc3339(unix: u64) -> String {
    let seconds_of_day = unix % DAY;
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(unix),
        seconds_of_day / HOUR,
        seconds_of_day % HOUR / 60,
        seconds_of_day % 60
    )
}

/// `YYYY-MM-DD` (UTC) for seconds since the Unix epoch.
fn date(unix: u64) -> String {
    let (year, month, day) = crate::clock::civil_from_days(unix / DAY);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> impl Iterator<Item = Tracking> {
        (0..300).map(|n| Tracking::generate("zto", &format!("ZT{n:08}")))
    }

    #[test]
    fn dates_are_formatted_as_utc_calendar_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(FIRST_PICKUP_UNIX), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3_661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn the_same_carrier_and_number_give_the_same_history_and_others_differ() {
        assert_eq!(
            Tracking::generate("jd", "JD12345678"),
            Tracking::generate("jd", "JD12345678")
        );
        assert_ne!(
            Tracking::generate("jd", "JD12345678").events,
            Tracking::generate("ems", "JD12345678").events
        );
    }

    #[test]
    fn every_history_has_two_to_five_events_newest_first() {
        for tracking in sample() {
            assert!((2..=5).contains(&tracking.events.len()), "{tracking:?}");
            let times: Vec<&str> = tracking.events.iter().map(|e| e.time.as_str()).collect();
            assert!(times.windows(2).all(|pair| pair[0] > pair[1]), "{times:?}");
        }
    }

    #[test]
    fn the_newest_event_and_estimate_agree_with_the_status() {
        for tracking in sample() {
            let newest = tracking.events.first().map(|e| e.description);
            let oldest = tracking.events.last().map(|e| e.description);
            assert_eq!(oldest, Some("Picked up by courier"));
            match tracking.status {
                Status::Delivered => {
                    assert_eq!(newest, Some("Delivered, signed for by recipient"));
                    assert_eq!(tracking.estimated_delivery, None);
                }
                Status::OutForDelivery => {
                    assert_eq!(newest, Some("Out for delivery"));
                    assert!(tracking.estimated_delivery.is_some());
                }
                Status::InTransit => {
                    assert!(newest.is_some_and(|d| d.contains("sorting center")));
                    let estimate = tracking.estimated_delivery.clone().unwrap_or_default();
                    assert!(estimate.as_str() > &tracking.events[0].time[..10]);
                }
            }
        }
    }

    #[test]
    fn the_last_mile_starts_where_the_parcel_last_arrived() {
        for tracking in sample() {
            let oldest_first: Vec<&Event> = tracking.events.iter().rev().collect();
            for pair in oldest_first.windows(2) {
                if pair[1].description == "Out for delivery" {
                    let came_from = pair[0];
                    assert!(
                        came_from.description == "Picked up by courier"
                            || came_from.location == pair[1].location,
                        "{tracking:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn all_statuses_and_event_counts_occur() {
        let histories: Vec<Tracking> = sample().collect();
        for status in [Status::InTransit, Status::OutForDelivery, Status::Delivered] {
            assert!(histories.iter().any(|t| t.status == status), "{status:?}");
        }
        for count in 2..=5 {
            assert!(histories.iter().any(|t| t.events.len() == count), "{count}");
        }
    }
}
