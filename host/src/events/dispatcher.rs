//! The dispatcher: fan-out, per-subject order, attempts, retries, the DLQ.
//!
//! One task per host. It reads the log only up to the durable watermark and
//! turns each event into one delivery per target — rules that match,
//! subscriptions that take its kind, connectors that subscribe to it —
//! stored in the same transaction that moves the fan-out cursor, so after a
//! crash it resumes exactly where it stopped. Pending deliveries are read
//! back at start.
//!
//! Deliveries to one target with the same tenant and subject are made one at
//! a time in event order: a later one waits while an earlier one is being
//! retried. Events without a subject, and different subjects, go in
//! parallel. A delivery that fails is tried again on the retry schedule and
//! lands in the dead-letter queue when the schedule is used up, or at once
//! when the failure cannot heal (the target refused the input for good).
//! Delivery is at least once: a crash mid-attempt means the attempt is made
//! again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::scheduler::Scheduler;
use super::subscriptions::{FailureStreak, Subscription};
use super::template::{render, view};
use super::{Command, Events};
use crate::audit::AuditTrail;
use crate::capabilities::now_ms;
use crate::invoke::{CallServices, InvokeError, InvokeRequest, invoke};
use crate::metrics::Metrics;
use crate::model::{CallContext, Event};
use crate::names::TenantId;
use crate::pipeline::{PipelineError, Pipelines};
use crate::registry::Registry;
use crate::runtime::call::CallError;
use crate::store::{
    AttemptRecord, DeliveryRecord, DeliveryState, StoreError, StoredEvent, Target, blocking,
};
use crate::store::{AuditKind, AuditRecord};

/// How long a delivery whose attempt produced no outcome waits, in milliseconds.
const RETRY_UNREADABLE_MS: u64 = 1_000;
/// Events fanned out per store transaction.
const FAN_OUT_BATCH: usize = 256;
/// Bytes of a response or error kept with an attempt.
const EXCERPT_BYTES: usize = 512;

/// A new pending delivery of event `sequence` to `target`, due at `now`.
pub fn new_delivery(
    id: u64,
    sequence: u64,
    event: &StoredEvent,
    target: Target,
    now: u64,
) -> DeliveryRecord {
    DeliveryRecord {
        id,
        event: sequence,
        target,
        order_key: event
            .subject
            .as_ref()
            .map(|subject| format!("{}/{subject}", event.tenant)),
        state: DeliveryState::Pending,
        attempts: 0,
        revived_after: 0,
        next_attempt_ms: now,
        created_ms: now,
        last_error: None,
    }
}

/// What the dispatcher works with.
pub struct Dispatch {
    events: Arc<Events>,
    registry: Arc<Registry>,
    pipelines: Arc<Pipelines>,
    metrics: Arc<Metrics>,
    audit: Arc<AuditTrail>,
    http: reqwest::Client,
}

/// A running dispatcher.
pub struct DispatcherHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl DispatcherHandle {
    /// Stops it: attempts in flight are abandoned (they are made again at
    /// the next start) and everything it held is released when this returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "the dispatcher failed");
        }
    }
}

/// The services deliveries go through.
pub struct DispatchServices {
    /// Events, rules, subscriptions and deliveries.
    pub events: Arc<Events>,
    /// Connectors that subscribe to events.
    pub registry: Arc<Registry>,
    /// Their pipelines.
    pub pipelines: Arc<Pipelines>,
    /// Counts deliveries.
    pub metrics: Arc<Metrics>,
    /// Records each attempt.
    pub audit: Arc<AuditTrail>,
}

/// Starts the dispatcher; it runs until stopped.
pub fn start(services: DispatchServices) -> anyhow::Result<DispatcherHandle> {
    let DispatchServices {
        events,
        registry,
        pipelines,
        metrics,
        audit,
    } = services;
    let inbox = events.connect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(events.settings().request_timeout)
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let dispatch = Arc::new(Dispatch {
        events,
        registry,
        pipelines,
        metrics,
        audit,
        http,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(dispatch, inbox, stopped));
    Ok(DispatcherHandle { stop, task })
}

/// What an attempt came to.
struct Finished {
    delivery: DeliveryRecord,
    /// For subscriptions: whether the subscriber took it.
    subscriber_ok: Option<bool>,
}

async fn run(
    dispatch: Arc<Dispatch>,
    mut inbox: mpsc::UnboundedReceiver<Command>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let store = dispatch.events.store().clone();
    let mut scheduler = Scheduler::default();
    let restored = {
        let store = store.clone();
        blocking(move || {
            Ok::<_, StoreError>((store.pending_deliveries()?, store.fan_out_cursor()?))
        })
        .await
    };
    let mut cursor = match restored {
        Ok((pending, cursor)) => {
            if !pending.is_empty() {
                tracing::info!(pending = pending.len(), "resuming pending deliveries");
            }
            pending.iter().for_each(|d| scheduler.add(d));
            cursor
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot read the delivery queue; events are not dispatched");
            let _ = stopped.changed().await;
            return;
        }
    };
    let mut durable = dispatch.events.ingest().durable();
    let mut attempts = tokio::task::JoinSet::new();
    let mut running: HashMap<tokio::task::Id, (u64, Target)> = HashMap::new();
    let mut streaks: HashMap<String, FailureStreak> = HashMap::new();
    let settings = dispatch.events.settings().clone();
    loop {
        let watermark = *durable.borrow_and_update();
        while cursor <= watermark {
            match fan_out(&dispatch, cursor, watermark).await {
                Ok((next, deliveries)) => {
                    deliveries.iter().for_each(|d| scheduler.add(d));
                    cursor = next;
                }
                Err(err) => {
                    tracing::error!(error = %err, "fan-out failed; trying again shortly");
                    break;
                }
            }
        }
        let now = now_ms();
        let (ready, next_due) =
            scheduler.take_ready(now, settings.max_in_flight, settings.per_target_in_flight);
        for (id, target) in ready {
            let dispatch = dispatch.clone();
            let task = attempts.spawn(async move { attempt(&dispatch, id).await });
            running.insert(task.id(), (id, target));
        }
        let sleep = match (cursor <= watermark, next_due) {
            (true, _) => Duration::from_millis(200),
            (false, Some(due)) => Duration::from_millis(due.saturating_sub(now).max(1)),
            (false, None) => Duration::from_secs(3600),
        };
        tokio::select! {
            Some(joined) = attempts.join_next_with_id() => {
                let mut next = Some(joined);
                while let Some(joined) = next {
                    let (task, finished) = match joined {
                        Ok((task, finished)) => (task, finished),
                        Err(err) => {
                            tracing::error!(error = %err, "a delivery attempt failed");
                            (err.id(), None)
                        }
                    };
                    let attempted = running.remove(&task);
                    match (finished, attempted) {
                        (Some(finished), _) => settle(&dispatch, &mut scheduler, &mut streaks, finished),
                        // No outcome: the delivery is tried again shortly.
                        (None, Some((id, target))) => {
                            scheduler.release(&target, id, now_ms().saturating_add(RETRY_UNREADABLE_MS));
                        }
                        (None, None) => {}
                    }
                    next = attempts.try_join_next_with_id();
                }
            }
            command = inbox.recv() => match command {
                Some(Command::Schedule(delivery)) => scheduler.add(&delivery),
                Some(Command::Wake(target)) => scheduler.wake(&target, now_ms()),
                None => break,
            },
            changed = durable.changed() => if changed.is_err() { break },
            _ = stopped.changed() => break,
            () = tokio::time::sleep(sleep) => {}
        }
    }
    attempts.abort_all();
    while attempts.join_next().await.is_some() {}
}

/// Fans out the durable events from `cursor`, one batch; returns the next
/// cursor and the deliveries made.
async fn fan_out(
    dispatch: &Arc<Dispatch>,
    cursor: u64,
    watermark: u64,
) -> Result<(u64, Vec<DeliveryRecord>), StoreError> {
    let store = dispatch.events.store().clone();
    let limit = usize::try_from(watermark - cursor + 1)
        .unwrap_or(FAN_OUT_BATCH)
        .min(FAN_OUT_BATCH);
    let events = {
        let store = store.clone();
        blocking(move || store.read_events(cursor, limit)).await?
    };
    let Some(&(last, _)) = events.last() else {
        return Ok((cursor, Vec::new()));
    };
    let now = now_ms();
    let targets: Vec<Vec<Target>> = events
        .iter()
        .map(|(sequence, event)| targets_of(dispatch, *sequence, event))
        .collect();
    let deliveries = blocking(move || {
        let deliveries = events
            .iter()
            .zip(targets)
            .flat_map(|((sequence, event), targets)| {
                targets
                    .into_iter()
                    .map(move |target| (*sequence, event, target))
            })
            .map(|(sequence, event, target)| {
                Ok(new_delivery(
                    store.next_delivery_id()?,
                    sequence,
                    event,
                    target,
                    now,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        store.fan_out(&deliveries, last + 1)?;
        Ok::<_, StoreError>(deliveries)
    })
    .await?;
    Ok((last + 1, deliveries))
}

/// Where one event goes: each target once.
fn targets_of(dispatch: &Dispatch, sequence: u64, event: &StoredEvent) -> Vec<Target> {
    let events = &dispatch.events;
    let view = view(sequence, event);
    let mut targets = Vec::new();
    for rule in events.rules() {
        if rule.spec.matches(&event.kind, &event.tenant, &view) {
            targets.push(match &rule.spec.action {
                super::rules::Action::Invoke { .. } => Target::Rule { id: rule.id },
                super::rules::Action::Notify { subscription } => {
                    // Sent whatever kinds the subscription takes, but only
                    // to an enabled one, of the event's tenant, and never a
                    // notice about itself.
                    match events.subscription(subscription) {
                        Ok(s) if s.spec.enabled && s.takes_notice(event) => {
                            Target::Subscription { id: s.id }
                        }
                        _ => continue,
                    }
                }
            });
        }
    }
    for subscription in events.subscriptions() {
        if subscription.spec.enabled && subscription.wants(event) {
            targets.push(Target::Subscription {
                id: subscription.id,
            });
        }
    }
    for connector in dispatch.registry.list() {
        let name = connector.manifest.name.as_str();
        if name != event.connector
            && super::kinds::any_matches(&connector.manifest.subscribes, &event.kind)
        {
            targets.push(Target::Connector {
                name: name.to_owned(),
            });
        }
    }
    let mut seen = HashSet::new();
    targets.retain(|t| seen.insert(t.clone()));
    targets
}

/// What one attempt did.
enum Outcome {
    /// The target took it.
    Delivered { status: Option<u16>, detail: String },
    /// It failed; `heals` says whether trying again may help.
    Failed {
        status: Option<u16>,
        detail: String,
        heals: bool,
    },
    /// Nothing was attempted: the target is gone or disabled.
    NotAttempted(DeliveryState),
}

async fn attempt(dispatch: &Arc<Dispatch>, id: u64) -> Option<Finished> {
    let store = dispatch.events.store().clone();
    let loaded = {
        let store = store.clone();
        blocking(move || {
            let Some(delivery) = store.delivery(id)? else {
                return Ok(None);
            };
            let event = store.event(delivery.event)?;
            Ok::<_, StoreError>(event.map(|event| (delivery, event)))
        })
        .await
    };
    let (mut delivery, event) = match loaded {
        Ok(Some(found)) => found,
        Ok(None) => {
            tracing::error!(delivery = id, "a pending delivery or its event is missing");
            return None;
        }
        Err(err) => {
            tracing::error!(delivery = id, error = %err, "cannot read a delivery");
            return None;
        }
    };
    if delivery.state != DeliveryState::Pending {
        // An operator changed it since it was scheduled.
        return Some(Finished {
            delivery,
            subscriber_ok: None,
        });
    }
    let started_ms = now_ms();
    let started = Instant::now();
    let is_subscription = matches!(delivery.target, Target::Subscription { .. });
    let target_kind = match &delivery.target {
        Target::Subscription { .. } => "subscription",
        Target::Rule { .. } => "rule",
        Target::Connector { .. } => "connector",
    };
    let outcome = match &delivery.target {
        Target::Subscription { id } => send_to_subscriber(dispatch, id, &delivery, &event).await,
        Target::Rule { id } => run_rule(dispatch, id, &delivery, &event).await,
        Target::Connector { name } => hand_to_connector(dispatch, name, &delivery, &event).await,
    };
    let latency = started.elapsed();
    let latency_ms = crate::runtime::limits::millis(latency);
    let settings = dispatch.events.settings();
    let audit = |code: Option<&str>, detail: &str| {
        dispatch.audit.record(AuditRecord {
            time_ms: started_ms,
            kind: AuditKind::Delivery,
            actor: "dispatcher".into(),
            action: "delivery".into(),
            connector: event.connector.clone(),
            detail: format!(
                "event {} ({}), attempt {}",
                delivery.event,
                event.kind,
                delivery.attempts + 1
            ),
            tenant: Some(event.tenant.clone()),
            operation: Some(format!("{target_kind}:{}", delivery.target.id())),
            status: Some(if code.is_none() { "ok" } else { "error" }.into()),
            code: code.map(str::to_owned),
            latency_us: Some(latency.as_micros() as u64),
            output: Some(crate::audit::excerpt(detail)),
            ..AuditRecord::default()
        })
    };
    let (attempt, subscriber_ok) = match outcome {
        Outcome::NotAttempted(state) => {
            delivery.state = state;
            (None, None)
        }
        Outcome::Delivered { status, detail } => {
            audit(None, &detail);
            delivery.attempts += 1;
            delivery.state = DeliveryState::Delivered;
            let lag = Duration::from_millis(now_ms().saturating_sub(event.time_ms));
            dispatch
                .metrics
                .record_delivery(target_kind, "delivered", Some(lag));
            let attempt = attempt_record(&delivery, started_ms, latency_ms, true, status, detail);
            (Some(attempt), Some(true))
        }
        Outcome::Failed {
            status,
            detail,
            heals,
        } => {
            audit(
                Some(if heals {
                    "delivery_failed"
                } else {
                    "delivery_refused"
                }),
                &detail,
            );
            delivery.attempts += 1;
            delivery.last_error = Some(detail.clone());
            let made = delivery.attempts - delivery.revived_after;
            let wait = heals
                .then(|| settings.retries.wait_after(made, rand::random()))
                .flatten();
            delivery.state = match wait {
                Some(wait) => {
                    delivery.next_attempt_ms =
                        now_ms().saturating_add(crate::runtime::limits::millis(wait));
                    DeliveryState::Pending
                }
                None if heals => DeliveryState::Dead {
                    reason: format!("retries exhausted after {made} attempts: {detail}"),
                },
                None => DeliveryState::Dead {
                    reason: detail.clone(),
                },
            };
            let outcome = match delivery.state {
                DeliveryState::Dead { .. } => "dead",
                _ => "failed",
            };
            dispatch.metrics.record_delivery(target_kind, outcome, None);
            let attempt = attempt_record(&delivery, started_ms, latency_ms, false, status, detail);
            (Some(attempt), Some(false))
        }
    };
    let saved = {
        let delivery = delivery.clone();
        blocking(move || store.put_delivery(&delivery, attempt.as_ref())).await
    };
    match saved {
        Err(err) => {
            tracing::error!(delivery = id, error = %err, "cannot record a delivery attempt; it will be made again");
            delivery.state = DeliveryState::Pending;
            delivery.next_attempt_ms = now_ms() + 1_000;
        }
        Ok(()) if subscriber_ok.is_some() => announce_if_dead(dispatch, &delivery, &event),
        Ok(()) => {}
    }
    Some(Finished {
        delivery,
        subscriber_ok: subscriber_ok.filter(|_| is_subscription),
    })
}

/// Raises `switchboard.delivery_dead` when an attempt sent a delivery to the
/// dead-letter queue, so a subscription can alert someone (a sync that keeps
/// failing). The host's own events never raise it, which rules out loops.
fn announce_if_dead(dispatch: &Arc<Dispatch>, delivery: &DeliveryRecord, event: &StoredEvent) {
    let DeliveryState::Dead { reason } = &delivery.state else {
        return;
    };
    if event.kind.starts_with(super::HOST_KINDS) {
        return;
    }
    tracing::warn!(delivery = delivery.id, event = delivery.event, %reason, "a delivery went to the dead-letter queue");
    let data = serde_json::json!({
        "delivery": delivery.id,
        "event": delivery.event,
        "event_kind": event.kind,
        "event_subject": event.subject,
        "tenant": event.tenant,
        "target": delivery.target,
        "attempts": delivery.attempts,
        "reason": reason,
    });
    let events = Arc::clone(&dispatch.events);
    let subject = match &delivery.target {
        Target::Rule { id } | Target::Subscription { id } => id.clone(),
        Target::Connector { name } => name.clone(),
    };
    tokio::spawn(async move {
        events
            .announce("switchboard.delivery_dead", &subject, data)
            .await;
    });
}

fn attempt_record(
    delivery: &DeliveryRecord,
    time_ms: u64,
    latency_ms: u64,
    ok: bool,
    status: Option<u16>,
    detail: String,
) -> AttemptRecord {
    AttemptRecord {
        number: delivery.attempts,
        time_ms,
        latency_ms,
        ok,
        status,
        detail,
    }
}

fn excerpt(text: &str) -> String {
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

async fn send_to_subscriber(
    dispatch: &Dispatch,
    id: &str,
    delivery: &DeliveryRecord,
    event: &StoredEvent,
) -> Outcome {
    let subscription: Subscription = match dispatch.events.subscription(id) {
        Ok(s) => s,
        Err(_) => {
            return Outcome::NotAttempted(DeliveryState::Discarded {
                reason: "the subscription was removed".into(),
            });
        }
    };
    if !subscription.spec.enabled {
        return Outcome::NotAttempted(DeliveryState::Dead {
            reason: format!(
                "subscription_disabled: {}",
                subscription
                    .disabled_reason
                    .as_deref()
                    .unwrap_or("disabled by an operator")
            ),
        });
    }
    let failed = |detail: String| Outcome::Failed {
        status: None,
        detail,
        heals: false,
    };
    let request = match subscription.request_for(&view(delivery.event, event)) {
        Ok(request) => request,
        Err(err) => return failed(format!("cannot build the request: {err}")),
    };
    let secret = match subscription.signing_secret() {
        Ok(secret) => secret,
        Err(err) => return failed(format!("the signing secret is unusable: {err}")),
    };
    let message_id = format!("evt_{}", delivery.event);
    let timestamp = now_ms() / 1000;
    let signature = secret.sign(&message_id, timestamp, &request.body);
    let mut builder = dispatch
        .http
        .request(request.method.as_reqwest(), request.url)
        .header("webhook-id", &message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature);
    if !request.body.is_empty() {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(request.body);
    }
    match builder.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let detail = excerpt(&body);
            if status.is_success() {
                Outcome::Delivered {
                    status: Some(status.as_u16()),
                    detail,
                }
            } else {
                Outcome::Failed {
                    status: Some(status.as_u16()),
                    detail: format!("answered {status}: {detail}"),
                    heals: true,
                }
            }
        }
        Err(err) => Outcome::Failed {
            status: None,
            detail: format!("request failed: {}", excerpt(&error_chain(&err))),
            heals: true,
        },
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn context_for(delivery: &DeliveryRecord, event: &StoredEvent) -> CallContext {
    CallContext {
        request_id: format!("evt_{}-dlv_{}", delivery.event, delivery.id),
        tenant: TenantId::parse(&event.tenant).unwrap_or_else(|_| TenantId::default_tenant()),
        agent: None,
        channel: None,
        customer: None,
    }
}

/// Whether a failed call into a connector may succeed later: anything but
/// an answer the connector gives as final.
fn heals(err: &CallError) -> bool {
    match err {
        CallError::Connector(err) => err.retryable,
        _ => true,
    }
}

async fn run_rule(
    dispatch: &Dispatch,
    id: &str,
    delivery: &DeliveryRecord,
    event: &StoredEvent,
) -> Outcome {
    let Ok(rule) = dispatch.events.rule(id) else {
        return Outcome::NotAttempted(DeliveryState::Discarded {
            reason: "the rule was removed".into(),
        });
    };
    let super::rules::Action::Invoke {
        connector,
        operation,
        input,
    } = &rule.spec.action
    else {
        return Outcome::NotAttempted(DeliveryState::Discarded {
            reason: "the rule no longer invokes a connector".into(),
        });
    };
    let input = match render(input, &view(delivery.event, event)) {
        Ok(input) => input.to_string(),
        Err(err) => {
            return Outcome::Failed {
                status: None,
                detail: format!("mapping_failed: {err}"),
                heals: false,
            };
        }
    };
    let request = InvokeRequest {
        actor: "dispatcher",
        connector: connector.as_str(),
        operation,
        context: context_for(delivery, event),
        input: input.as_bytes(),
        idempotency_key: false,
    };
    let services = CallServices {
        registry: &dispatch.registry,
        pipelines: &dispatch.pipelines,
        metrics: &dispatch.metrics,
        audit: &dispatch.audit,
    };
    match invoke(services, request).await {
        Ok(output) => Outcome::Delivered {
            status: None,
            detail: excerpt(&output.output),
        },
        Err(err) => {
            let heals = match &err {
                InvokeError::Pipeline(PipelineError::Call { error }) => heals(error),
                InvokeError::Pipeline(_) | InvokeError::ConnectorNotFound(_) => true,
                InvokeError::OperationNotFound { .. }
                | InvokeError::InvalidJson(_)
                | InvokeError::SchemaViolation { .. } => false,
            };
            Outcome::Failed {
                status: None,
                detail: excerpt(&err.to_string()),
                heals,
            }
        }
    }
}

async fn hand_to_connector(
    dispatch: &Dispatch,
    name: &str,
    delivery: &DeliveryRecord,
    event: &StoredEvent,
) -> Outcome {
    let context = context_for(delivery, event);
    let Some(routed) = dispatch.registry.route(name, &context) else {
        return Outcome::Failed {
            status: None,
            detail: format!("connector `{name}` is not installed"),
            heals: true,
        };
    };
    let subscribes = |loaded: &crate::registry::LoadedConnector| {
        super::kinds::any_matches(&loaded.manifest.subscribes, &event.kind)
    };
    let event = Event {
        id: event.id.clone(),
        kind: event.kind.clone(),
        subject: event.subject.clone(),
        time_ms: event.time_ms,
        data: event.data.clone(),
    };
    let runtime = dispatch.registry.runtime();
    let context = Arc::new(context);
    let (loaded, result) = if subscribes(&routed.loaded) {
        // The version the call is routed to (a canary's candidate takes
        // its share), counted in its canary window like any call.
        let loaded = routed.loaded.clone();
        let started = Instant::now();
        let result = runtime
            .on_event(&loaded.prepared, &loaded.grants, context, event)
            .await;
        let failed = result
            .as_ref()
            .err()
            .is_some_and(crate::pipeline::counts_against);
        dispatch.registry.finish(routed, started.elapsed(), failed);
        (loaded, result)
    } else {
        // A candidate that dropped the subscription: the active version gets it.
        match dispatch
            .registry
            .get(name)
            .filter(|active| subscribes(active))
        {
            Some(active) => {
                let result = runtime
                    .on_event(&active.prepared, &active.grants, context, event)
                    .await;
                (active, result)
            }
            None => {
                return Outcome::NotAttempted(DeliveryState::Discarded {
                    reason: format!(
                        "connector `{name}` no longer subscribes to `{}`",
                        event.kind
                    ),
                });
            }
        }
    };
    match result {
        Ok(()) => Outcome::Delivered {
            status: None,
            detail: format!("on-event of {name}@{} succeeded", loaded.manifest.version),
        },
        Err(err) => Outcome::Failed {
            status: None,
            detail: excerpt(&err.to_string()),
            heals: heals(&err),
        },
    }
}

/// Updates the scheduler and, for subscriptions, the failure streak.
///
/// Streaks are counted here, in the one dispatcher task; only their
/// turning points (announced, disabled, ended after an announcement) are
/// written to the store, by a task of their own, so a failing subscriber
/// does not slow the loop down with a flush per attempt.
fn settle(
    dispatch: &Arc<Dispatch>,
    scheduler: &mut Scheduler,
    streaks: &mut HashMap<String, FailureStreak>,
    finished: Finished,
) {
    scheduler.finished(&finished.delivery);
    let (Some(ok), Target::Subscription { id }) =
        (finished.subscriber_ok, &finished.delivery.target)
    else {
        return;
    };
    let settings = dispatch.events.settings();
    let now = now_ms();
    if ok {
        if streaks.remove(id).is_some_and(|streak| streak.notified) {
            spawn_streak_change(dispatch, id, FailureStreak::default(), false, false, None);
        }
        return;
    }
    let streak = streaks.entry(id.clone()).or_insert_with(|| {
        dispatch
            .events
            .subscription(id)
            .map(|s| s.failing)
            .ok()
            .filter(|f| f.count > 0)
            .unwrap_or(FailureStreak {
                count: 0,
                since_ms: now,
                notified: false,
            })
    });
    streak.count += 1;
    let failing = streak.count >= settings.failing_after;
    let announce = failing && !streak.notified;
    streak.notified |= announce;
    let disable = failing
        && now.saturating_sub(streak.since_ms)
            >= crate::runtime::limits::millis(settings.disable_after);
    if announce || disable {
        let last_error = finished.delivery.last_error.clone();
        spawn_streak_change(dispatch, id, streak.clone(), announce, disable, last_error);
    }
    if disable {
        streaks.remove(id);
    }
}

/// Records a turning point of a subscription's failure streak, announces
/// it when `announce` says so, and disables the subscription when `disable` does.
fn spawn_streak_change(
    dispatch: &Arc<Dispatch>,
    id: &str,
    streak: FailureStreak,
    announce: bool,
    disable: bool,
    last_error: Option<String>,
) {
    let events = dispatch.events.clone();
    let id = id.to_owned();
    tokio::spawn(async move {
        let mut disabled = false;
        let updated = events
            .update_subscription(&id, |s| {
                s.failing = streak.clone();
                if disable && s.spec.enabled {
                    s.spec.enabled = false;
                    s.disabled_reason = Some(format!(
                        "{} failed attempts in a row since {} (ms since the epoch)",
                        streak.count, streak.since_ms
                    ));
                    disabled = true;
                }
            })
            .await;
        let subscription = match updated {
            Ok(Some(subscription)) => subscription,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(subscription = id, error = %err, "cannot record the subscription's failure streak");
                return;
            }
        };
        let data = serde_json::json!({
            "subscription": subscription.id,
            "name": subscription.spec.name,
            "url": subscription.spec.url,
            "failures": streak.count,
            "failing_since_ms": streak.since_ms,
            "last_error": last_error,
        });
        if announce {
            tracing::warn!(
                subscription = id,
                failures = streak.count,
                "a subscription keeps failing"
            );
            events
                .announce("switchboard.subscription_failing", &id, data.clone())
                .await;
        }
        if disabled {
            tracing::warn!(
                subscription = id,
                "a subscription was disabled after failing too long"
            );
            events
                .announce("switchboard.subscription_disabled", &id, data)
                .await;
            events.tell(Command::Wake(Target::Subscription { id }));
        }
    });
}
