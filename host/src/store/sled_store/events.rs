//! The event log, deliveries and event configuration in sled.

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::{SledStore, decode_json, encode_json, utf8};
use crate::store::{
    Appended, AttemptRecord, DeliveryRecord, DeliveryState, DeliveryStore, EventConfigKind,
    EventConfigStore, EventLog, StoreError, StoreResult, StoredEvent,
};

const FAN_OUT_CURSOR: &[u8] = b"fan_out_cursor";

/// The trees of the event system.
#[derive(Clone)]
pub(super) struct EventTrees {
    /// Sequence number → event.
    events: sled::Tree,
    /// `source \0 tenant \0 id` → sequence number, to drop duplicates.
    event_ids: sled::Tree,
    /// Delivery id → delivery.
    deliveries: sled::Tree,
    /// Delivery id → (), for the pending ones.
    pending: sled::Tree,
    /// Delivery id → (), for the dead-lettered ones.
    dead: sled::Tree,
    /// Event sequence ++ delivery id → ().
    by_event: sled::Tree,
    /// Delivery id ++ attempt number → attempt.
    attempts: sled::Tree,
    /// Cursors.
    meta: sled::Tree,
    rules: sled::Tree,
    subscriptions: sled::Tree,
    hooks: sled::Tree,
    /// Serializes appends, so sequence numbers become readable in order.
    append: std::sync::Arc<std::sync::Mutex<()>>,
}

impl EventTrees {
    pub(super) fn open(db: &sled::Db) -> sled::Result<Self> {
        Ok(Self {
            events: db.open_tree("events")?,
            event_ids: db.open_tree("event_ids")?,
            deliveries: db.open_tree("deliveries")?,
            pending: db.open_tree("deliveries_pending")?,
            dead: db.open_tree("deliveries_dead")?,
            by_event: db.open_tree("deliveries_by_event")?,
            attempts: db.open_tree("delivery_attempts")?,
            meta: db.open_tree("event_meta")?,
            rules: db.open_tree("rules")?,
            subscriptions: db.open_tree("subscriptions")?,
            hooks: db.open_tree("hooks")?,
            append: Default::default(),
        })
    }
}

fn sequence_of(key: &[u8]) -> StoreResult<u64> {
    key.get(..8)
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            key: hex::encode(key),
            reason: "sequence key is shorter than 8 bytes".into(),
        })
}

fn pair_key(first: u64, second: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&first.to_be_bytes());
    key[8..].copy_from_slice(&second.to_be_bytes());
    key
}

fn event_id_key(event: &StoredEvent) -> Vec<u8> {
    super::composite_key(&[&event.connector, &event.tenant, &event.id])
}

impl EventLog for SledStore {
    fn append_events(&self, events: &[StoredEvent]) -> StoreResult<Vec<Appended>> {
        let trees = &self.event_trees;
        let _serial = trees
            .append
            .lock()
            .map_err(|_| StoreError::Backend("an earlier append panicked".into()))?;
        let mut next = match trees.events.last()? {
            Some((key, _)) => sequence_of(&key)? + 1,
            None => 1,
        };
        let mut appended = Vec::with_capacity(events.len());
        for event in events {
            let id_key = event_id_key(event);
            if let Some(existing) = trees.event_ids.get(&id_key)? {
                appended.push(Appended::Duplicate(sequence_of(&existing)?));
                continue;
            }
            trees
                .events
                .insert(next.to_be_bytes(), encode_json(event)?)?;
            trees.event_ids.insert(id_key, &next.to_be_bytes())?;
            appended.push(Appended::New(next));
            next += 1;
        }
        Ok(appended)
    }

    fn flush_events(&self) -> StoreResult<()> {
        self.flush()
    }

    fn last_event_sequence(&self) -> StoreResult<Option<u64>> {
        self.event_trees
            .events
            .last()?
            .map(|(key, _)| sequence_of(&key))
            .transpose()
    }

    fn read_events(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, StoredEvent)>> {
        self.event_trees
            .events
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((sequence_of(&key)?, decode_json(&key, &value)?))
            })
            .collect()
    }

    fn event(&self, sequence: u64) -> StoreResult<Option<StoredEvent>> {
        let key = sequence.to_be_bytes();
        self.event_trees
            .events
            .get(key)?
            .map(|value| decode_json(&key, &value))
            .transpose()
    }
}

impl SledStore {
    fn read_deliveries(
        &self,
        ids: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
        id_at: usize,
        limit: usize,
        keep: impl Fn(&DeliveryRecord) -> bool,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let mut found = Vec::new();
        for entry in ids {
            if found.len() == limit {
                break;
            }
            let (key, _) = entry?;
            let id = sequence_of(key.get(id_at..).unwrap_or_default())?;
            if let Some(record) = self.delivery(id)?
                && keep(&record)
            {
                found.push(record);
            }
        }
        Ok(found)
    }
}

impl DeliveryStore for SledStore {
    fn fan_out(&self, deliveries: &[DeliveryRecord], fanned_out: u64) -> StoreResult<()> {
        let t = &self.event_trees;
        let encoded = deliveries
            .iter()
            .map(|d| Ok((d.id, d.event, encode_json(d)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        (&t.deliveries, &t.pending, &t.by_event, &t.meta)
            .transaction(|(all, pending, by_event, meta)| {
                for (id, event, json) in &encoded {
                    all.insert(&id.to_be_bytes(), json.as_slice())?;
                    pending.insert(&id.to_be_bytes(), &[])?;
                    by_event.insert(&pair_key(*event, *id), &[])?;
                }
                meta.insert(FAN_OUT_CURSOR, &fanned_out.to_be_bytes())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .map_err(|err| match err {
                TransactionError::Storage(err) => StoreError::from(err),
                TransactionError::Abort(()) => StoreError::Backend("fan-out aborted".into()),
            })
    }

    fn fan_out_cursor(&self) -> StoreResult<u64> {
        match self.event_trees.meta.get(FAN_OUT_CURSOR)? {
            Some(bytes) => sequence_of(&bytes),
            None => Ok(1),
        }
    }

    fn next_delivery_id(&self) -> StoreResult<u64> {
        Ok(self.db.generate_id()? + 1)
    }

    fn put_delivery(
        &self,
        delivery: &DeliveryRecord,
        attempt: Option<&AttemptRecord>,
    ) -> StoreResult<()> {
        // Ordered so that a crash between any two writes leaves a state the
        // readers, which trust the record's own state over the indexes,
        // read right: the attempt and the new index entry first, then the
        // record, then the old index entry goes. Cheaper than a transaction
        // across five trees, which halved the delivery rate.
        let t = &self.event_trees;
        let id = delivery.id.to_be_bytes();
        if let Some(attempt) = attempt {
            t.attempts.insert(
                pair_key(delivery.id, u64::from(attempt.number)),
                encode_json(attempt)?,
            )?;
        }
        if attempt.is_none() && delivery.attempts == 0 {
            // A new delivery (a replay): fan-out indexes its own.
            t.by_event
                .insert(pair_key(delivery.event, delivery.id), &[])?;
        }
        let (pending, dead) = match delivery.state {
            DeliveryState::Pending => (true, false),
            DeliveryState::Dead { .. } => (false, true),
            DeliveryState::Delivered | DeliveryState::Discarded { .. } => (false, false),
        };
        if pending {
            t.pending.insert(id, &[])?;
        }
        if dead {
            t.dead.insert(id, &[])?;
        }
        t.deliveries.insert(id, encode_json(delivery)?)?;
        if !pending {
            t.pending.remove(id)?;
        }
        if !dead {
            t.dead.remove(id)?;
        }
        Ok(())
    }

    fn delivery(&self, id: u64) -> StoreResult<Option<DeliveryRecord>> {
        let key = id.to_be_bytes();
        self.event_trees
            .deliveries
            .get(key)?
            .map(|value| decode_json(&key, &value))
            .transpose()
    }

    fn attempts(&self, id: u64) -> StoreResult<Vec<AttemptRecord>> {
        self.event_trees
            .attempts
            .scan_prefix(id.to_be_bytes())
            .map(|entry| {
                let (key, value) = entry?;
                decode_json(&key, &value)
            })
            .collect()
    }

    fn pending_deliveries(&self) -> StoreResult<Vec<DeliveryRecord>> {
        self.read_deliveries(self.event_trees.pending.iter(), 0, usize::MAX, |d| {
            d.state == DeliveryState::Pending
        })
    }

    fn dead_letters(&self, from: u64, limit: usize) -> StoreResult<Vec<DeliveryRecord>> {
        let ids = self.event_trees.dead.range(from.to_be_bytes()..);
        self.read_deliveries(ids, 0, limit, |d| {
            matches!(d.state, DeliveryState::Dead { .. })
        })
    }

    fn deliveries(&self, from: u64, limit: usize) -> StoreResult<Vec<DeliveryRecord>> {
        self.event_trees
            .deliveries
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode_json(&key, &value)
            })
            .collect()
    }

    fn deliveries_of_event(&self, sequence: u64) -> StoreResult<Vec<DeliveryRecord>> {
        let ids = self
            .event_trees
            .by_event
            .scan_prefix(sequence.to_be_bytes());
        self.read_deliveries(ids, 8, usize::MAX, |_| true)
    }
}

impl SledStore {
    fn event_config_tree(&self, kind: EventConfigKind) -> &sled::Tree {
        match kind {
            EventConfigKind::Rule => &self.event_trees.rules,
            EventConfigKind::Subscription => &self.event_trees.subscriptions,
            EventConfigKind::Hook => &self.event_trees.hooks,
        }
    }
}

impl EventConfigStore for SledStore {
    fn put_event_config(&self, kind: EventConfigKind, id: &str, json: &str) -> StoreResult<()> {
        self.event_config_tree(kind)
            .insert(id.as_bytes(), json.as_bytes())?;
        self.flush()
    }

    fn delete_event_config(&self, kind: EventConfigKind, id: &str) -> StoreResult<bool> {
        let existed = self
            .event_config_tree(kind)
            .remove(id.as_bytes())?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    fn list_event_config(&self, kind: EventConfigKind) -> StoreResult<Vec<(String, String)>> {
        self.event_config_tree(kind)
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((utf8(&key, &key)?, utf8(&key, &value)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, subject: &str) -> StoredEvent {
        StoredEvent {
            id: id.into(),
            connector: "calls".into(),
            tenant: "t".into(),
            kind: "call.answered".into(),
            subject: Some(subject.into()),
            time_ms: 1,
            data: "{}".into(),
        }
    }

    fn delivery(id: u64, event: u64) -> DeliveryRecord {
        DeliveryRecord {
            id,
            event,
            target: crate::store::Target::Subscription { id: "s".into() },
            order_key: None,
            state: DeliveryState::Pending,
            attempts: 0,
            revived_after: 0,
            next_attempt_ms: 0,
            created_ms: 0,
            last_error: None,
        }
    }

    #[test]
    fn appends_number_in_order_and_drop_duplicates_by_source_tenant_and_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(
            dir.path(),
            std::sync::Arc::new(crate::sealing::Sealer::ephemeral()),
        )
        .expect("open");
        let first = store
            .append_events(&[event("a", "x"), event("b", "x"), event("a", "y")])
            .expect("append");
        assert_eq!(
            first,
            vec![Appended::New(1), Appended::New(2), Appended::Duplicate(1)]
        );
        let mut other_tenant = event("a", "x");
        other_tenant.tenant = "u".into();
        assert_eq!(
            store.append_events(&[other_tenant]).expect("append"),
            vec![Appended::New(3)]
        );
        assert_eq!(store.last_event_sequence().expect("last"), Some(3));
        let read = store.read_events(2, 10).expect("read");
        assert_eq!(read.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn a_delivery_moves_between_the_pending_and_dead_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(
            dir.path(),
            std::sync::Arc::new(crate::sealing::Sealer::ephemeral()),
        )
        .expect("open");
        store
            .fan_out(&[delivery(10, 1), delivery(11, 1), delivery(12, 2)], 3)
            .expect("fan out");
        assert_eq!(store.fan_out_cursor().expect("cursor"), 3);
        assert_eq!(store.pending_deliveries().expect("pending").len(), 3);
        let mut dead = delivery(11, 1);
        dead.state = DeliveryState::Dead {
            reason: "retries exhausted".into(),
        };
        let attempt = AttemptRecord {
            number: 1,
            time_ms: 5,
            latency_ms: 2,
            ok: false,
            status: Some(500),
            detail: "boom".into(),
        };
        store.put_delivery(&dead, Some(&attempt)).expect("put");
        let pending: Vec<u64> = store
            .pending_deliveries()
            .expect("pending")
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(pending, [10, 12]);
        assert_eq!(store.dead_letters(0, 10).expect("dead"), vec![dead]);
        assert_eq!(store.attempts(11).expect("attempts"), vec![attempt]);
        let of_event: Vec<u64> = store
            .deliveries_of_event(1)
            .expect("of event")
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(of_event, [10, 11]);
    }
}
