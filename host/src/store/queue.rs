//! The event log and the deliveries it feeds: records and traits.
//!
//! Events are appended in one order and numbered by it; every delivery of an
//! event to a target (a rule, an outbound subscription, a connector's
//! `on-event`) is a record that moves from pending to delivered, to the
//! dead-letter queue, or to discarded. A clustered store implements the same
//! traits over a stream and its consumers.

use serde::{Deserialize, Serialize};

use super::StoreResult;

/// An event as kept in the durable log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event's id: the provider's own id for webhook events, so a resent
    /// event is recognised; a fresh UUID for events emitted by connectors.
    pub id: String,
    /// Where it came from: a connector's name, or `api` for injected events.
    pub connector: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Dotted kind, such as `payment.link_created`.
    pub kind: String,
    /// What it is about, if anything; events of one subject keep their order.
    pub subject: Option<String>,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The JSON payload, as text.
    pub data: String,
}

/// What appending one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this sequence number.
    New(u64),
    /// An event with the same source, tenant and id was stored before, under this number.
    Duplicate(u64),
}

impl Appended {
    /// The sequence number the event is stored under.
    pub fn sequence(self) -> u64 {
        match self {
            Self::New(sequence) | Self::Duplicate(sequence) => sequence,
        }
    }
}

/// The durable, ordered log of events.
pub trait EventLog: Send + Sync {
    /// Appends the events not stored before (by source, tenant and id), in
    /// order, without waiting for the disk. Appends are serialized: an event is
    /// readable only after every event with a lower number.
    fn append_events(&self, events: &[StoredEvent]) -> StoreResult<Vec<Appended>>;
    /// Makes every event appended so far durable.
    fn flush_events(&self) -> StoreResult<()>;
    /// The highest sequence number appended, if any.
    fn last_event_sequence(&self) -> StoreResult<Option<u64>>;
    /// Events with a sequence number of at least `from`, oldest first, at most `limit`.
    fn read_events(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, StoredEvent)>>;
    /// The event stored under `sequence`.
    fn event(&self, sequence: u64) -> StoreResult<Option<StoredEvent>>;
}

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A rule's action (invoking a connector operation).
    Rule {
        /// The rule's id.
        id: String,
    },
    /// An outbound webhook subscription.
    Subscription {
        /// The subscription's id.
        id: String,
    },
    /// A connector's `on-event` export.
    Connector {
        /// The connector's name.
        name: String,
    },
}

impl Target {
    /// The id of the rule or subscription, or the connector's name.
    pub fn id(&self) -> &str {
        match self {
            Self::Rule { id } | Self::Subscription { id } => id,
            Self::Connector { name } => name,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rule { id } => write!(f, "rule {id}"),
            Self::Subscription { id } => write!(f, "subscription {id}"),
            Self::Connector { name } => write!(f, "connector {name}"),
        }
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its next attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// In the dead-letter queue.
    Dead {
        /// Why it was given up.
        reason: String,
    },
    /// Given up by an operator, or its target was removed.
    Discarded {
        /// Why.
        reason: String,
    },
}

/// One event on its way to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Unique id; deliveries to one target are made in id order per subject.
    pub id: u64,
    /// The event's sequence number.
    pub event: u64,
    /// Where it goes.
    pub target: Target,
    /// The tenant and subject it is ordered by, if the event has a subject.
    pub order_key: Option<String>,
    /// Where it stands.
    #[serde(flatten)]
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// The attempts made before an operator took it out of the dead-letter
    /// queue; the retry schedule starts again after them.
    #[serde(default)]
    pub revived_after: u32,
    /// When the next attempt is due, in milliseconds since the Unix epoch.
    pub next_attempt_ms: u64,
    /// When it was created.
    pub created_ms: u64,
    /// What went wrong last, if anything did.
    pub last_error: Option<String>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// How long it took.
    pub latency_ms: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// The target's HTTP status, for subscriptions that answered.
    pub status: Option<u16>,
    /// The start of the response, or the error, for people.
    pub detail: String,
}

/// Deliveries, their attempts, and where fan-out stopped.
pub trait DeliveryStore: Send + Sync {
    /// Stores new deliveries and moves the fan-out cursor past `fanned_out`,
    /// in one transaction, so a crash neither loses nor repeats a fan-out.
    fn fan_out(&self, deliveries: &[DeliveryRecord], fanned_out: u64) -> StoreResult<()>;
    /// The first event sequence number not fanned out yet.
    fn fan_out_cursor(&self) -> StoreResult<u64>;
    /// A fresh delivery id, larger than every id before it.
    fn next_delivery_id(&self) -> StoreResult<u64>;
    /// Stores `delivery` as it is now, with the attempt that brought it there.
    fn put_delivery(
        &self,
        delivery: &DeliveryRecord,
        attempt: Option<&AttemptRecord>,
    ) -> StoreResult<()>;
    /// The delivery `id`.
    fn delivery(&self, id: u64) -> StoreResult<Option<DeliveryRecord>>;
    /// Its attempts, first first.
    fn attempts(&self, id: u64) -> StoreResult<Vec<AttemptRecord>>;
    /// Every pending delivery, in id order.
    fn pending_deliveries(&self) -> StoreResult<Vec<DeliveryRecord>>;
    /// Dead-lettered deliveries with an id of at least `from`, at most `limit`.
    fn dead_letters(&self, from: u64, limit: usize) -> StoreResult<Vec<DeliveryRecord>>;
    /// Deliveries with an id of at least `from`, at most `limit`.
    fn deliveries(&self, from: u64, limit: usize) -> StoreResult<Vec<DeliveryRecord>>;
    /// The deliveries of event `sequence`.
    fn deliveries_of_event(&self, sequence: u64) -> StoreResult<Vec<DeliveryRecord>>;
}

/// What the event configuration holds, each kind keyed by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventConfigKind {
    /// Rules (triggers).
    Rule,
    /// Outbound webhook subscriptions.
    Subscription,
    /// Operators' settings of a connector's inbound webhook, keyed `connector/hook`.
    Hook,
}

/// Rules, subscriptions and hook settings, as JSON by id.
pub trait EventConfigStore: Send + Sync {
    /// Stores `json` under `id` and flushes it to disk.
    fn put_event_config(&self, kind: EventConfigKind, id: &str, json: &str) -> StoreResult<()>;
    /// Removes `id`; returns whether it existed.
    fn delete_event_config(&self, kind: EventConfigKind, id: &str) -> StoreResult<bool>;
    /// Every entry of `kind`, as `(id, json)`.
    fn list_event_config(&self, kind: EventConfigKind) -> StoreResult<Vec<(String, String)>>;
}
