//! Which pending deliveries may start now.
//!
//! Pending deliveries are kept per target, in id order. A delivery may start
//! when it is due, no earlier delivery of the same target and order key
//! (tenant and subject) is still pending, and neither the global nor the
//! target's in-flight limit is reached. A target at its limit is skipped
//! without looking at its queue, so a pass costs little however long the
//! queue of a busy target grows.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::store::{DeliveryRecord, DeliveryState, Target};

/// One pending delivery.
struct Slot {
    /// A hash of its tenant and subject, if it has a subject.
    order_key: Option<u64>,
    due_ms: u64,
    in_flight: bool,
}

/// One target's pending deliveries.
#[derive(Default)]
struct Queue {
    slots: BTreeMap<u64, Slot>,
    in_flight: usize,
}

/// The pending deliveries of every target and what is in flight.
#[derive(Default)]
pub(super) struct Scheduler {
    queues: HashMap<Target, Queue>,
    in_flight: usize,
}

fn hash_of(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

impl Scheduler {
    /// Tracks a pending delivery.
    pub(super) fn add(&mut self, delivery: &DeliveryRecord) {
        let queue = self.queues.entry(delivery.target.clone()).or_default();
        if queue
            .slots
            .get(&delivery.id)
            .is_some_and(|slot| slot.in_flight)
        {
            // Its attempt is running; how that ends settles it.
            return;
        }
        queue.slots.insert(
            delivery.id,
            Slot {
                order_key: delivery.order_key.as_deref().map(hash_of),
                due_ms: delivery.next_attempt_ms,
                in_flight: false,
            },
        );
    }

    /// An attempt ended with `delivery` as it now stands.
    pub(super) fn finished(&mut self, delivery: &DeliveryRecord) {
        let Some(queue) = self.queues.get_mut(&delivery.target) else {
            return;
        };
        if let Some(slot) = queue.slots.get_mut(&delivery.id) {
            if slot.in_flight {
                slot.in_flight = false;
                queue.in_flight -= 1;
                self.in_flight -= 1;
            }
            if delivery.state == DeliveryState::Pending {
                slot.due_ms = delivery.next_attempt_ms;
            } else {
                queue.slots.remove(&delivery.id);
            }
        }
        if queue.slots.is_empty() {
            self.queues.remove(&delivery.target);
        }
    }

    /// Makes every pending delivery to `target` due by `now`.
    pub(super) fn wake(&mut self, target: &Target, now: u64) {
        if let Some(queue) = self.queues.get_mut(target) {
            for slot in queue.slots.values_mut() {
                slot.due_ms = slot.due_ms.min(now);
            }
        }
    }

    /// Marks the deliveries that may start now as in flight and returns
    /// them in id order, with the earliest due time among those it saw
    /// waiting. A pass stopped by a limit runs again when an attempt ends.
    pub(super) fn take_ready(
        &mut self,
        now: u64,
        max: usize,
        per_target: usize,
    ) -> (Vec<u64>, Option<u64>) {
        let mut ready = Vec::new();
        let mut next_due: Option<u64> = None;
        for queue in self.queues.values_mut() {
            if self.in_flight >= max {
                break;
            }
            if queue.in_flight >= per_target {
                continue;
            }
            let mut heads = HashSet::new();
            for (id, slot) in &mut queue.slots {
                if let Some(key) = slot.order_key
                    && !heads.insert(key)
                {
                    continue;
                }
                if slot.in_flight {
                    continue;
                }
                if slot.due_ms > now {
                    next_due = Some(next_due.map_or(slot.due_ms, |d| d.min(slot.due_ms)));
                    continue;
                }
                if queue.in_flight >= per_target || self.in_flight >= max {
                    break;
                }
                slot.in_flight = true;
                queue.in_flight += 1;
                self.in_flight += 1;
                ready.push(*id);
            }
        }
        ready.sort_unstable();
        (ready, next_due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: u64, target: &str, subject: Option<&str>, due: u64) -> DeliveryRecord {
        DeliveryRecord {
            id,
            event: id,
            target: Target::Subscription { id: target.into() },
            order_key: subject.map(str::to_owned),
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_ms: due,
            created_ms: 0,
            last_error: None,
        }
    }

    #[test]
    fn one_subject_goes_one_at_a_time_in_order_while_others_proceed() {
        let mut scheduler = Scheduler::default();
        for d in [
            delivery(1, "a", Some("call-1"), 0),
            delivery(2, "a", Some("call-1"), 0),
            delivery(3, "a", Some("call-2"), 0),
            delivery(4, "a", None, 0),
            delivery(5, "b", Some("call-1"), 0),
        ] {
            scheduler.add(&d);
        }
        let (ready, _) = scheduler.take_ready(10, 64, 8);
        assert_eq!(ready, [1, 3, 4, 5]);
        // The head failed and waits for its retry: the next of its subject still waits.
        let mut retried = delivery(1, "a", Some("call-1"), 1_000);
        retried.attempts = 1;
        scheduler.finished(&retried);
        assert_eq!(scheduler.take_ready(20, 64, 8), (vec![], Some(1_000)));
        let (ready, _) = scheduler.take_ready(1_000, 64, 8);
        assert_eq!(ready, [1]);
        let mut delivered = retried;
        delivered.state = DeliveryState::Delivered;
        scheduler.finished(&delivered);
        let (ready, _) = scheduler.take_ready(1_000, 64, 8);
        assert_eq!(ready, [2]);
    }

    #[test]
    fn in_flight_limits_hold_globally_and_per_target() {
        let mut scheduler = Scheduler::default();
        for id in 1..=6 {
            scheduler.add(&delivery(id, if id <= 4 { "a" } else { "b" }, None, 0));
        }
        assert_eq!(scheduler.take_ready(0, 64, 2).0, [1, 2, 5, 6]);
        assert_eq!(scheduler.take_ready(0, 64, 2).0, Vec::<u64>::new());
        let mut done = delivery(1, "a", None, 0);
        done.state = DeliveryState::Delivered;
        scheduler.finished(&done);
        assert_eq!(scheduler.take_ready(0, 64, 2).0, [3]);
        let mut more = Scheduler::default();
        for id in 1..=6 {
            more.add(&delivery(id, "a", None, 0));
        }
        assert_eq!(more.take_ready(0, 3, 8).0, [1, 2, 3]);
    }

    #[test]
    fn waking_a_target_makes_its_waiting_deliveries_due() {
        let mut scheduler = Scheduler::default();
        scheduler.add(&delivery(1, "a", None, 5_000));
        scheduler.add(&delivery(2, "b", None, 5_000));
        assert_eq!(scheduler.take_ready(10, 64, 8), (vec![], Some(5_000)));
        scheduler.wake(&Target::Subscription { id: "a".into() }, 10);
        assert_eq!(scheduler.take_ready(10, 64, 8), (vec![1], Some(5_000)));
    }
}
