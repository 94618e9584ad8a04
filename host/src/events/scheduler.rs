//! Which pending deliveries may start now.
//!
//! Pending deliveries are kept per target, in id order. A delivery may start
//! when it is due, no earlier delivery of the same target and order key
//! (tenant and subject) is still pending, and neither the global nor the
//! target's in-flight limit is reached. A target at its limit, or whose
//! next delivery is not due yet, is skipped without looking at its queue, so
//! a pass costs little however long the queue of a busy or failing target
//! grows.

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
    /// Scheduled again (out of the dead-letter queue) while an attempt ran:
    /// it stays pending, due then, whatever that attempt ends with.
    revived_due: Option<u64>,
}

/// One target's pending deliveries.
#[derive(Default)]
struct Queue {
    slots: BTreeMap<u64, Slot>,
    in_flight: usize,
    /// Nothing in the queue can start before this unless the queue changes,
    /// so a pass skips it until then.
    rescan_at: u64,
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
        queue.rescan_at = queue.rescan_at.min(delivery.next_attempt_ms);
        if let Some(running) = queue
            .slots
            .get_mut(&delivery.id)
            .filter(|slot| slot.in_flight)
        {
            running.revived_due = Some(delivery.next_attempt_ms);
            return;
        }
        queue.slots.insert(
            delivery.id,
            Slot {
                order_key: delivery.order_key.as_deref().map(hash_of),
                due_ms: delivery.next_attempt_ms,
                in_flight: false,
                revived_due: None,
            },
        );
    }

    /// An attempt ended with `delivery` as it now stands.
    pub(super) fn finished(&mut self, delivery: &DeliveryRecord) {
        let state = match delivery.state {
            DeliveryState::Pending => Some(delivery.next_attempt_ms),
            _ => None,
        };
        self.settle(&delivery.target, delivery.id, state);
    }

    /// An attempt of delivery `id` to `target` ended without an outcome (its
    /// record could not be read, or the task failed): try again at `due`.
    pub(super) fn release(&mut self, target: &Target, id: u64, due: u64) {
        self.settle(target, id, Some(due));
    }

    /// Ends the attempt of `id`; it stays pending until `due`, or leaves.
    fn settle(&mut self, target: &Target, id: u64, due: Option<u64>) {
        let Some(queue) = self.queues.get_mut(target) else {
            return;
        };
        queue.rescan_at = 0;
        if let Some(slot) = queue.slots.get_mut(&id) {
            if slot.in_flight {
                slot.in_flight = false;
                queue.in_flight -= 1;
                self.in_flight -= 1;
            }
            match slot.revived_due.take().or(due) {
                Some(due) => slot.due_ms = due,
                None => {
                    queue.slots.remove(&id);
                }
            }
        }
        if queue.slots.is_empty() {
            self.queues.remove(target);
        }
    }

    /// Makes every pending delivery to `target` due by `now`.
    pub(super) fn wake(&mut self, target: &Target, now: u64) {
        if let Some(queue) = self.queues.get_mut(target) {
            queue.rescan_at = 0;
            for slot in queue.slots.values_mut() {
                slot.due_ms = slot.due_ms.min(now);
            }
        }
    }

    /// Marks the deliveries that may start now as in flight and returns
    /// them in id order, with the earliest time something waiting is due.
    /// A pass stopped by a limit runs again when an attempt ends.
    pub(super) fn take_ready(
        &mut self,
        now: u64,
        max: usize,
        per_target: usize,
    ) -> (Vec<(u64, Target)>, Option<u64>) {
        let mut ready = Vec::new();
        let mut next_due = u64::MAX;
        for (target, queue) in &mut self.queues {
            if self.in_flight >= max {
                break;
            }
            if queue.in_flight >= per_target {
                continue;
            }
            if queue.rescan_at > now {
                next_due = next_due.min(queue.rescan_at);
                continue;
            }
            // The earliest a waiting head is due, or at once when a limit
            // cut the scan short.
            let mut rescan_at = u64::MAX;
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
                    rescan_at = rescan_at.min(slot.due_ms);
                    continue;
                }
                if queue.in_flight >= per_target || self.in_flight >= max {
                    rescan_at = 0;
                    break;
                }
                slot.in_flight = true;
                queue.in_flight += 1;
                self.in_flight += 1;
                ready.push((*id, target.clone()));
            }
            queue.rescan_at = rescan_at;
            next_due = next_due.min(rescan_at);
        }
        ready.sort_unstable_by_key(|(id, _)| *id);
        (
            ready,
            (next_due > now && next_due != u64::MAX).then_some(next_due),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids((ready, _): (Vec<(u64, Target)>, Option<u64>)) -> Vec<u64> {
        ready.into_iter().map(|(id, _)| id).collect()
    }

    fn target(id: &str) -> Target {
        Target::Subscription { id: id.into() }
    }

    fn delivery(id: u64, to: &str, subject: Option<&str>, due: u64) -> DeliveryRecord {
        DeliveryRecord {
            id,
            event: id,
            target: target(to),
            order_key: subject.map(str::to_owned),
            state: DeliveryState::Pending,
            attempts: 0,
            revived_after: 0,
            next_attempt_ms: due,
            created_ms: 0,
            last_error: None,
        }
    }

    fn ended(mut delivery: DeliveryRecord, state: DeliveryState) -> DeliveryRecord {
        delivery.state = state;
        delivery
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
        assert_eq!(ids(scheduler.take_ready(10, 64, 8)), [1, 3, 4, 5]);
        // The head failed and waits for its retry: the next of its subject still waits.
        scheduler.finished(&delivery(1, "a", Some("call-1"), 1_000));
        let (ready, next) = scheduler.take_ready(20, 64, 8);
        assert_eq!((ready.len(), next), (0, Some(1_000)));
        assert_eq!(ids(scheduler.take_ready(1_000, 64, 8)), [1]);
        let delivered = ended(
            delivery(1, "a", Some("call-1"), 0),
            DeliveryState::Delivered,
        );
        scheduler.finished(&delivered);
        assert_eq!(ids(scheduler.take_ready(1_000, 64, 8)), [2]);
    }

    #[test]
    fn in_flight_limits_hold_globally_and_per_target() {
        let mut scheduler = Scheduler::default();
        for id in 1..=6 {
            scheduler.add(&delivery(id, if id <= 4 { "a" } else { "b" }, None, 0));
        }
        assert_eq!(ids(scheduler.take_ready(0, 64, 2)), [1, 2, 5, 6]);
        assert!(ids(scheduler.take_ready(0, 64, 2)).is_empty());
        scheduler.finished(&ended(delivery(1, "a", None, 0), DeliveryState::Delivered));
        assert_eq!(ids(scheduler.take_ready(0, 64, 2)), [3]);
        let mut more = Scheduler::default();
        for id in 1..=6 {
            more.add(&delivery(id, "a", None, 0));
        }
        assert_eq!(ids(more.take_ready(0, 3, 8)), [1, 2, 3]);
    }

    #[test]
    fn a_waiting_queue_is_skipped_until_due_or_woken() {
        let mut scheduler = Scheduler::default();
        scheduler.add(&delivery(1, "a", None, 5_000));
        scheduler.add(&delivery(2, "b", None, 5_000));
        let (ready, next) = scheduler.take_ready(10, 64, 8);
        assert_eq!((ready.len(), next), (0, Some(5_000)));
        scheduler.wake(&target("a"), 10);
        let (ready, next) = scheduler.take_ready(10, 64, 8);
        assert_eq!((ids((ready, next)), next), (vec![1], Some(5_000)));
        scheduler.add(&delivery(3, "b", None, 20));
        assert_eq!(ids(scheduler.take_ready(20, 64, 8)), [3]);
    }

    #[test]
    fn a_delivery_revived_while_its_attempt_runs_stays_pending() {
        let mut scheduler = Scheduler::default();
        scheduler.add(&delivery(1, "a", Some("s"), 0));
        assert_eq!(ids(scheduler.take_ready(0, 64, 8)), [1]);
        scheduler.add(&delivery(1, "a", Some("s"), 50));
        let dead = DeliveryState::Dead {
            reason: "gave up".into(),
        };
        scheduler.finished(&ended(delivery(1, "a", Some("s"), 0), dead));
        assert_eq!(ids(scheduler.take_ready(50, 64, 8)), [1]);
    }

    #[test]
    fn a_released_attempt_frees_its_slot_and_keeps_its_subjects_order() {
        let mut scheduler = Scheduler::default();
        scheduler.add(&delivery(1, "a", Some("s"), 0));
        scheduler.add(&delivery(2, "a", Some("s"), 0));
        assert_eq!(ids(scheduler.take_ready(0, 64, 1)), [1]);
        scheduler.release(&target("a"), 1, 100);
        assert!(ids(scheduler.take_ready(50, 64, 1)).is_empty());
        assert_eq!(ids(scheduler.take_ready(100, 64, 1)), [1]);
    }
}
