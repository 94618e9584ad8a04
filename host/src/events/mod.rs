//! Events: webhooks in, a durable log, rules, outbound subscriptions,
//! connectors' `on-event`, retries and a dead-letter queue.
//!
//! Every event — from a provider's webhook, a connector's `emit`, or the API —
//! goes through [`EventIngest`] and is on disk before its sender hears back.
//! The [`dispatcher`] fans each durable event out into one delivery per
//! target and works through the deliveries at least once, in order per
//! subject, retrying on a schedule until each is delivered or dead-lettered.
//! [`Events`] holds the configuration (rules, subscriptions, hook settings)
//! and answers the API.

pub mod dispatcher;
pub mod hooks;
pub mod ingest;
pub mod kinds;
pub mod rules;
pub mod schedule;
mod scheduler;
pub mod signing;
pub mod subscriptions;
pub mod template;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use self::hooks::HookPolicy;
pub use self::ingest::EventIngest;
use self::rules::{Action, Rule, RuleSpec};
use self::schedule::RetrySchedule;
use self::signing::SigningSecret;
use self::subscriptions::{FailureStreak, Subscription, SubscriptionSpec};
use crate::capabilities::now_ms;
use crate::model::Event;
use crate::store::{
    Appended, AttemptRecord, DeliveryRecord, DeliveryState, DeliveryStore, EventConfigKind,
    EventConfigStore, EventLog, StoreError, StoredEvent, Target, blocking,
};

/// Most events one replay request delivers again.
pub const MAX_REPLAY: usize = 10_000;
/// Largest event payload, in bytes.
pub const MAX_DATA_BYTES: usize = 256 << 10;
/// Longest event id or subject, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// The source of events injected through the API.
pub const API_SOURCE: &str = "api";
/// The source of the host's own events.
pub const HOST_SOURCE: &str = "switchboard";
/// The prefix of the host's own event kinds; no one else may use it.
pub const HOST_KINDS: &str = "switchboard.";

/// The stores the event system needs.
pub trait EventStores: EventLog + DeliveryStore + EventConfigStore {}
impl<T: EventLog + DeliveryStore + EventConfigStore> EventStores for T {}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// Waits between attempts.
    pub retries: RetrySchedule,
    /// Most deliveries in flight at once.
    pub max_in_flight: usize,
    /// Most deliveries in flight to one target.
    pub per_target_in_flight: usize,
    /// How long a subscriber has to answer.
    pub request_timeout: Duration,
    /// Consecutive failures after which a subscription's failure is announced.
    pub failing_after: u32,
    /// How long a subscription may fail without a success before it is disabled.
    pub disable_after: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            retries: RetrySchedule::default(),
            max_in_flight: 64,
            per_target_in_flight: 16,
            request_timeout: Duration::from_secs(15),
            failing_after: 5,
            disable_after: Duration::from_secs(5 * 24 * 3600),
        }
    }
}

/// Why an event request failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// Nothing of that kind has that id.
    #[error("no {what} `{id}`")]
    NotFound {
        /// What was looked for: `rule`, `subscription`, `event`, `delivery`.
        what: &'static str,
        /// The id given.
        id: String,
    },
    /// The request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The delivery is not in the dead-letter queue.
    #[error("delivery {0} is not in the dead-letter queue")]
    NotDead(u64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the dispatcher is told from outside its loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Schedule this (new or revived) delivery.
    Schedule(DeliveryRecord),
    /// Make every pending delivery to this target due now (it changed).
    Wake(Target),
}

/// The event system's configuration and its way into the dispatcher.
pub struct Events {
    store: Arc<dyn EventStores>,
    ingest: Arc<EventIngest>,
    settings: EventSettings,
    rules: RwLock<BTreeMap<String, Rule>>,
    subscriptions: RwLock<BTreeMap<String, Subscription>>,
    hooks: RwLock<BTreeMap<String, HookPolicy>>,
    /// The running dispatcher's inbox, if one runs.
    commands: std::sync::Mutex<Option<mpsc::UnboundedSender<Command>>>,
    /// Serializes configuration changes, so memory and the store agree.
    changes: tokio::sync::Mutex<()>,
}

fn load<T: DeserializeOwned>(
    store: &dyn EventStores,
    kind: EventConfigKind,
) -> Result<BTreeMap<String, T>, StoreError> {
    store
        .list_event_config(kind)?
        .into_iter()
        .map(|(id, json)| {
            serde_json::from_str(&json)
                .map(|value| (id.clone(), value))
                .map_err(|err| StoreError::Corrupt {
                    key: id,
                    reason: err.to_string(),
                })
        })
        .collect()
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The key of a hook's settings: `connector/hook`.
pub fn hook_key(connector: &str, hook: &str) -> String {
    format!("{connector}/{hook}")
}

/// Checks an event a connector or caller gives: kind, id, subject and payload.
pub fn check_event(event: &Event) -> Result<(), String> {
    if !kinds::is_valid_kind(&event.kind) {
        return Err(format!(
            "kind `{}` must be 1-{} ASCII letters, digits, '.', '_' and '-'",
            event.kind,
            kinds::MAX_KIND_BYTES
        ));
    }
    if event.id.len() > MAX_ID_BYTES
        || event
            .subject
            .as_ref()
            .is_some_and(|s| s.len() > MAX_ID_BYTES)
    {
        return Err(format!(
            "id and subject must be at most {MAX_ID_BYTES} bytes"
        ));
    }
    if event.data.len() > MAX_DATA_BYTES {
        return Err(format!(
            "data is {} bytes; the limit is {MAX_DATA_BYTES}",
            event.data.len()
        ));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&event.data)
        .map_err(|err| format!("data is not JSON: {err}"))?;
    Ok(())
}

/// An event with its place in the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedEvent {
    /// Its sequence number.
    pub sequence: u64,
    /// The event.
    #[serde(flatten)]
    pub event: StoredEvent,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryView {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: DeliveryRecord,
    /// Its attempts, first first.
    pub attempts_made: Vec<AttemptRecord>,
}

impl Events {
    /// Reads the configuration from `store`.
    pub fn open(
        store: Arc<dyn EventStores>,
        ingest: Arc<EventIngest>,
        settings: EventSettings,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            rules: RwLock::new(load(store.as_ref(), EventConfigKind::Rule)?),
            subscriptions: RwLock::new(load(store.as_ref(), EventConfigKind::Subscription)?),
            hooks: RwLock::new(load(store.as_ref(), EventConfigKind::Hook)?),
            store,
            ingest,
            settings,
            commands: std::sync::Mutex::new(None),
            changes: tokio::sync::Mutex::new(()),
        })
    }

    /// The ingest every event goes through.
    pub fn ingest(&self) -> &Arc<EventIngest> {
        &self.ingest
    }

    /// How deliveries are made.
    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }

    pub(crate) fn store(&self) -> &Arc<dyn EventStores> {
        &self.store
    }

    /// A fresh inbox for a dispatcher that is starting; commands sent
    /// before go nowhere, as the dispatcher reads the store when it starts.
    pub(crate) fn connect(&self) -> mpsc::UnboundedReceiver<Command> {
        let (commands, inbox) = mpsc::unbounded_channel();
        *self.commands.lock().unwrap_or_else(PoisonError::into_inner) = Some(commands);
        inbox
    }

    fn tell(&self, command: Command) {
        // No dispatcher (or a stopped one) loses nothing: the store holds
        // what the command was about, and a starting dispatcher reads it.
        if let Some(commands) = &*self.commands.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = commands.send(command);
        }
    }

    /// Stores events from `source` for `tenant`, checking each first; returns
    /// once all are durable.
    pub async fn accept(
        &self,
        source: &str,
        tenant: &str,
        events: Vec<Event>,
    ) -> Result<Vec<Appended>, EventsError> {
        let now = now_ms();
        let stored = events
            .into_iter()
            .enumerate()
            .map(|(index, event)| {
                check_event(&event)
                    .map_err(|err| EventsError::Invalid(format!("event {index}: {err}")))?;
                if source != HOST_SOURCE && event.kind.starts_with(HOST_KINDS) {
                    return Err(EventsError::Invalid(format!(
                        "event {index}: kinds starting with `{HOST_KINDS}` are the host's own"
                    )));
                }
                Ok(StoredEvent {
                    id: if event.id.is_empty() {
                        uuid::Uuid::new_v4().to_string()
                    } else {
                        event.id
                    },
                    connector: source.to_owned(),
                    tenant: tenant.to_owned(),
                    kind: event.kind,
                    subject: event.subject,
                    time_ms: if event.time_ms == 0 {
                        now
                    } else {
                        event.time_ms
                    },
                    data: event.data,
                })
            })
            .collect::<Result<Vec<_>, EventsError>>()?;
        Ok(self.ingest.ingest(stored).await?)
    }

    /// Events with a sequence number of at least `from`, filtered, at most `limit`.
    pub async fn list_events(
        &self,
        from: u64,
        limit: usize,
        keep: impl Fn(&StoredEvent) -> bool + Send + 'static,
    ) -> Result<Vec<LoggedEvent>, EventsError> {
        let store = self.store.clone();
        blocking(move || {
            let mut found = Vec::new();
            let mut cursor = from;
            while found.len() < limit {
                let page = store.read_events(cursor, 512)?;
                let Some((last, _)) = page.last() else { break };
                cursor = last + 1;
                found.extend(
                    page.into_iter()
                        .filter(|(_, event)| keep(event))
                        .map(|(sequence, event)| LoggedEvent { sequence, event }),
                );
            }
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    /// One event with its deliveries.
    pub async fn event(
        &self,
        sequence: u64,
    ) -> Result<(LoggedEvent, Vec<DeliveryRecord>), EventsError> {
        let store = self.store.clone();
        blocking(move || {
            let event = store.event(sequence)?.ok_or(EventsError::NotFound {
                what: "event",
                id: sequence.to_string(),
            })?;
            Ok((
                LoggedEvent { sequence, event },
                store.deliveries_of_event(sequence)?,
            ))
        })
        .await
    }

    /// Deliveries from id `from`, filtered, at most `limit`.
    pub async fn deliveries(
        &self,
        from: u64,
        limit: usize,
        keep: impl Fn(&DeliveryRecord) -> bool + Send + 'static,
    ) -> Result<Vec<DeliveryRecord>, EventsError> {
        let store = self.store.clone();
        blocking(move || {
            let mut found = Vec::new();
            let mut cursor = from;
            while found.len() < limit {
                let page = store.deliveries(cursor, 512)?;
                let Some(last) = page.last() else { break };
                cursor = last.id + 1;
                found.extend(page.into_iter().filter(|d| keep(d)));
            }
            found.truncate(limit);
            Ok(found)
        })
        .await
    }

    /// One delivery with its attempts.
    pub async fn delivery(&self, id: u64) -> Result<DeliveryView, EventsError> {
        let store = self.store.clone();
        blocking(move || {
            let delivery = store.delivery(id)?.ok_or(EventsError::NotFound {
                what: "delivery",
                id: id.to_string(),
            })?;
            Ok(DeliveryView {
                attempts_made: store.attempts(id)?,
                delivery,
            })
        })
        .await
    }

    /// The dead-letter queue from id `from`, at most `limit`.
    pub async fn dead_letters(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, EventsError> {
        let store = self.store.clone();
        blocking(move || Ok(store.dead_letters(from, limit)?)).await
    }

    /// Puts a dead-lettered delivery back in the queue, due now, with its attempts reset.
    pub async fn retry_dead(&self, id: u64) -> Result<DeliveryRecord, EventsError> {
        let revived = self
            .change_dead(id, |mut delivery| {
                delivery.state = DeliveryState::Pending;
                delivery.revived_after = delivery.attempts;
                delivery.next_attempt_ms = now_ms();
                delivery
            })
            .await?;
        self.tell(Command::Schedule(revived.clone()));
        Ok(revived)
    }

    /// Discards a dead-lettered delivery.
    pub async fn discard_dead(&self, id: u64) -> Result<DeliveryRecord, EventsError> {
        self.change_dead(id, |mut delivery| {
            delivery.state = DeliveryState::Discarded {
                reason: "discarded by an operator".into(),
            };
            delivery
        })
        .await
    }

    async fn change_dead(
        &self,
        id: u64,
        change: impl FnOnce(DeliveryRecord) -> DeliveryRecord + Send + 'static,
    ) -> Result<DeliveryRecord, EventsError> {
        let _change = self.changes.lock().await;
        let store = self.store.clone();
        blocking(move || {
            let delivery = store.delivery(id)?.ok_or(EventsError::NotFound {
                what: "delivery",
                id: id.to_string(),
            })?;
            if !matches!(delivery.state, DeliveryState::Dead { .. }) {
                return Err(EventsError::NotDead(id));
            }
            let changed = change(delivery);
            store.put_delivery(&changed, None)?;
            store.flush_events()?;
            Ok(changed)
        })
        .await
    }

    /// Delivers again to subscription `id` the event `sequence`, or every
    /// event of a kind it takes that happened in `[from_ms, to_ms)`; returns
    /// the new deliveries.
    pub async fn replay(
        &self,
        id: &str,
        selection: Replay,
    ) -> Result<Vec<DeliveryRecord>, EventsError> {
        let subscription = self.subscription(id)?;
        let store = self.store.clone();
        let target = Target::Subscription { id: id.to_owned() };
        let durable = *self.ingest.durable().borrow();
        let deliveries = blocking(move || {
            let events: Vec<(u64, StoredEvent)> = match selection {
                Replay::Event(sequence) => {
                    let event = store.event(sequence)?.filter(|_| sequence <= durable).ok_or(EventsError::NotFound {
                        what: "event",
                        id: sequence.to_string(),
                    })?;
                    vec![(sequence, event)]
                }
                Replay::Range { from_ms, to_ms } => {
                    let mut found = Vec::new();
                    let mut cursor = 1;
                    while cursor <= durable {
                        let page = store.read_events(cursor, 512)?;
                        let Some((last, _)) = page.last() else { break };
                        cursor = last + 1;
                        found.extend(page.into_iter().filter(|(sequence, e)| {
                            *sequence <= durable
                                && (from_ms..to_ms).contains(&e.time_ms)
                                && subscription.wants(e)
                        }));
                        if found.len() > MAX_REPLAY {
                            return Err(EventsError::Invalid(format!(
                                "more than {MAX_REPLAY} events fall in the range; replay a narrower one"
                            )));
                        }
                    }
                    found
                }
            };
            let now = now_ms();
            let mut deliveries = Vec::with_capacity(events.len());
            for (sequence, event) in events {
                let delivery = dispatcher::new_delivery(
                    store.next_delivery_id()?,
                    sequence,
                    &event,
                    target.clone(),
                    now,
                );
                store.put_delivery(&delivery, None)?;
                deliveries.push(delivery);
            }
            Ok::<_, EventsError>(deliveries)
        })
        .await?;
        for delivery in &deliveries {
            self.tell(Command::Schedule(delivery.clone()));
        }
        Ok(deliveries)
    }

    /// Every rule.
    pub fn rules(&self) -> Vec<Rule> {
        read(&self.rules).values().cloned().collect()
    }

    /// The rule `id`.
    pub fn rule(&self, id: &str) -> Result<Rule, EventsError> {
        read(&self.rules)
            .get(id)
            .cloned()
            .ok_or_else(|| EventsError::NotFound {
                what: "rule",
                id: id.to_owned(),
            })
    }

    /// Creates a rule (`id` none) or replaces one.
    pub async fn put_rule(&self, id: Option<&str>, spec: RuleSpec) -> Result<Rule, EventsError> {
        spec.check().map_err(EventsError::Invalid)?;
        let _change = self.changes.lock().await;
        if let Action::Notify { subscription } = &spec.action {
            self.subscription(subscription)?;
        }
        let rule = match id {
            Some(id) => Rule {
                spec,
                ..self.rule(id)?
            },
            None => Rule {
                id: uuid::Uuid::new_v4().to_string(),
                created_ms: now_ms(),
                spec,
            },
        };
        self.persist(EventConfigKind::Rule, &rule.id, &rule).await?;
        write(&self.rules).insert(rule.id.clone(), rule.clone());
        self.tell(Command::Wake(Target::Rule {
            id: rule.id.clone(),
        }));
        Ok(rule)
    }

    /// Removes a rule; its pending deliveries are discarded.
    pub async fn delete_rule(&self, id: &str) -> Result<(), EventsError> {
        let _change = self.changes.lock().await;
        self.rule(id)?;
        self.remove(EventConfigKind::Rule, id).await?;
        write(&self.rules).remove(id);
        self.tell(Command::Wake(Target::Rule { id: id.to_owned() }));
        Ok(())
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        read(&self.subscriptions).values().cloned().collect()
    }

    /// The subscription `id`.
    pub fn subscription(&self, id: &str) -> Result<Subscription, EventsError> {
        read(&self.subscriptions)
            .get(id)
            .cloned()
            .ok_or_else(|| EventsError::NotFound {
                what: "subscription",
                id: id.to_owned(),
            })
    }

    /// Creates a subscription (`id` none), with `secret` or a fresh one, or
    /// replaces one's spec (and secret, when given). Enabling it again clears
    /// its failure streak.
    pub async fn put_subscription(
        &self,
        id: Option<&str>,
        spec: SubscriptionSpec,
        secret: Option<String>,
    ) -> Result<Subscription, EventsError> {
        spec.check().map_err(EventsError::Invalid)?;
        let secret = match secret {
            Some(text) => Some(
                SigningSecret::parse(&text)
                    .map_err(EventsError::Invalid)?
                    .expose(),
            ),
            None => None,
        };
        let _change = self.changes.lock().await;
        let subscription = match id {
            Some(id) => {
                let current = self.subscription(id)?;
                let enabled_again = spec.enabled && !current.spec.enabled;
                Subscription {
                    secret: secret.unwrap_or(current.secret),
                    disabled_reason: if spec.enabled {
                        None
                    } else {
                        current.disabled_reason
                    },
                    failing: if enabled_again {
                        FailureStreak::default()
                    } else {
                        current.failing
                    },
                    spec,
                    ..current
                }
            }
            None => Subscription {
                id: uuid::Uuid::new_v4().to_string(),
                created_ms: now_ms(),
                secret: secret.unwrap_or_else(|| SigningSecret::generate().expose()),
                disabled_reason: None,
                failing: FailureStreak::default(),
                spec,
            },
        };
        self.persist(
            EventConfigKind::Subscription,
            &subscription.id,
            &subscription,
        )
        .await?;
        write(&self.subscriptions).insert(subscription.id.clone(), subscription.clone());
        self.tell(Command::Wake(Target::Subscription {
            id: subscription.id.clone(),
        }));
        Ok(subscription)
    }

    /// Removes a subscription; its pending deliveries are discarded.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), EventsError> {
        let _change = self.changes.lock().await;
        self.subscription(id)?;
        self.remove(EventConfigKind::Subscription, id).await?;
        write(&self.subscriptions).remove(id);
        self.tell(Command::Wake(Target::Subscription { id: id.to_owned() }));
        Ok(())
    }

    /// Applies `change` to subscription `id` and persists it, if it still exists.
    pub(crate) async fn update_subscription(
        &self,
        id: &str,
        change: impl FnOnce(&mut Subscription),
    ) -> Result<Option<Subscription>, EventsError> {
        let _change = self.changes.lock().await;
        let Ok(mut updated) = self.subscription(id) else {
            return Ok(None);
        };
        change(&mut updated);
        self.persist(EventConfigKind::Subscription, id, &updated)
            .await?;
        write(&self.subscriptions).insert(id.to_owned(), updated.clone());
        Ok(Some(updated))
    }

    /// The operator's settings of a hook, if any.
    pub fn hook_override(&self, connector: &str, hook: &str) -> Option<HookPolicy> {
        read(&self.hooks).get(&hook_key(connector, hook)).cloned()
    }

    /// Replaces a hook's settings.
    pub async fn put_hook(
        &self,
        connector: &str,
        hook: &str,
        policy: HookPolicy,
    ) -> Result<(), EventsError> {
        policy.check().map_err(EventsError::Invalid)?;
        let _change = self.changes.lock().await;
        let key = hook_key(connector, hook);
        self.persist(EventConfigKind::Hook, &key, &policy).await?;
        write(&self.hooks).insert(key, policy);
        Ok(())
    }

    /// Goes back to the manifest's settings of a hook; returns whether there were others.
    pub async fn reset_hook(&self, connector: &str, hook: &str) -> Result<bool, EventsError> {
        let _change = self.changes.lock().await;
        let key = hook_key(connector, hook);
        let existed = self.remove(EventConfigKind::Hook, &key).await?;
        write(&self.hooks).remove(&key);
        Ok(existed)
    }

    async fn persist<T: serde::Serialize>(
        &self,
        kind: EventConfigKind,
        id: &str,
        value: &T,
    ) -> Result<(), EventsError> {
        let json =
            serde_json::to_string(value).map_err(|err| StoreError::Backend(err.to_string()))?;
        let store = self.store.clone();
        let id = id.to_owned();
        Ok(blocking(move || store.put_event_config(kind, &id, &json)).await?)
    }

    async fn remove(&self, kind: EventConfigKind, id: &str) -> Result<bool, EventsError> {
        let store = self.store.clone();
        let id = id.to_owned();
        Ok(blocking(move || store.delete_event_config(kind, &id)).await?)
    }

    /// Stores one of the host's own events (failing subscriptions, alerts).
    pub(crate) async fn announce(&self, kind: &str, subject: &str, data: serde_json::Value) {
        let event = Event {
            id: String::new(),
            kind: kind.to_owned(),
            subject: Some(subject.to_owned()),
            time_ms: 0,
            data: data.to_string(),
        };
        let tenant = crate::names::TenantId::default_tenant();
        if let Err(err) = self.accept(HOST_SOURCE, tenant.as_str(), vec![event]).await {
            tracing::error!(kind, subject, error = %err, "could not store the host's event");
        }
    }
}

/// Which events a replay delivers again.
#[derive(Debug, Clone, Copy)]
pub enum Replay {
    /// One event, by sequence number.
    Event(u64),
    /// Every event the subscription takes that happened in `[from_ms, to_ms)`.
    Range {
        /// Start, inclusive.
        from_ms: u64,
        /// End, exclusive.
        to_ms: u64,
    },
}
