//! Events, rules, subscriptions, deliveries and the dead-letter queue.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::hooks::InjectedEvent;
use axum::Extension;

use super::auth::tenant_forbidden;
use super::invoke::{body_error, caller_context};
use super::{ApiError, AppState};
use crate::auth::Caller;
use crate::events::rules::RuleSpec;
use crate::events::subscriptions::SubscriptionSpec;
use crate::events::{API_SOURCE, EventsError, Replay};
use crate::store::{Appended, DeliveryState};

/// Most items one page returns.
const MAX_PAGE: usize = 1000;

/// Parses a required JSON body.
pub fn required_json<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let body = body.map_err(body_error)?;
    serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("send {shape}: {err}"),
        )
    })
}

/// The API error for `err`; `invalid` is the code of a refused request.
pub fn events_error(err: EventsError, invalid: &str) -> ApiError {
    let message = err.to_string();
    match err {
        EventsError::NotFound { what, .. } => {
            ApiError::new(StatusCode::NOT_FOUND, &format!("{what}_not_found"), message)
        }
        EventsError::Invalid(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, invalid, message)
        }
        EventsError::NotDead(_) => {
            ApiError::new(StatusCode::CONFLICT, "delivery_not_dead", message)
        }
        EventsError::Store(err) => err.into(),
    }
}

/// Paging and filters of list routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The first sequence number or id to return.
    #[serde(default)]
    from: u64,
    /// Most items to return (default 100, at most 1000).
    limit: Option<usize>,
    /// Events: only this kind.
    kind: Option<String>,
    /// Events: only this subject.
    subject: Option<String>,
    /// Events: only from this source.
    source: Option<String>,
    /// Events: only of this tenant.
    tenant: Option<String>,
    /// Deliveries: only in this state (`pending`, `delivered`, `dead`, `discarded`).
    state: Option<String>,
    /// Deliveries: only to this target id or connector name.
    target: Option<String>,
    /// Deliveries: only of this event.
    event: Option<u64>,
}

impl ListQuery {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_PAGE)
    }
}

fn page<T: serde::Serialize>(items: &[T], next: Option<u64>) -> Json<Value> {
    Json(json!({ "items": items, "next": next }))
}

fn state_name(state: &DeliveryState) -> &'static str {
    match state {
        DeliveryState::Pending => "pending",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Dead { .. } => "dead",
        DeliveryState::Discarded { .. } => "discarded",
    }
}

/// `POST /v1/events`: injects an event (an agent's button, another system).
/// Stored before the answer; a repeat of the same `id` is not stored twice.
pub async fn inject(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let context = caller_context(&headers, &caller)?;
    let event: InjectedEvent = required_json(
        body,
        "{\"kind\": \"agent.button_pressed\", \"subject\": \"call-1\", \"data\": {...}}",
    )?;
    let appended = state
        .events
        .accept(API_SOURCE, context.tenant.as_str(), vec![event.into()])
        .await
        .map_err(|err| events_error(err, "invalid_event"))?;
    let (sequence, duplicate) = match appended.first() {
        Some(Appended::New(s)) => (*s, false),
        Some(Appended::Duplicate(s)) => (*s, true),
        None => {
            return Err(ApiError::internal(
                "an accepted event has no sequence number",
            ));
        }
    };
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Json(json!({ "sequence": sequence, "duplicate": duplicate })),
    ))
}

/// `GET /v1/events`: the log, oldest first, filtered; a caller bound to a
/// tenant sees only that tenant's events.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit();
    let ListQuery {
        from,
        kind,
        subject,
        source,
        tenant,
        ..
    } = query;
    let tenant = match (tenant, &caller.tenant) {
        (Some(asked), Some(own)) if asked != own.as_str() => {
            return Err(tenant_forbidden(&format!(
                "key {} is bound to tenant {own}; it cannot read tenant {asked}'s events",
                caller.id
            )));
        }
        (asked, own) => asked.or_else(|| own.as_ref().map(ToString::to_string)),
    };
    let events = state
        .events
        .list_events(from, limit, move |e| {
            kind.as_ref().is_none_or(|k| *k == e.kind)
                && subject
                    .as_ref()
                    .is_none_or(|s| e.subject.as_ref() == Some(s))
                && source.as_ref().is_none_or(|s| *s == e.connector)
                && tenant.as_ref().is_none_or(|t| *t == e.tenant)
        })
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    let next = (events.len() == limit)
        .then(|| events.last().map(|e| e.sequence + 1))
        .flatten();
    Ok(page(&events, next))
}

/// `GET /v1/events/{sequence}`: one event and its deliveries.
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(sequence): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let (event, deliveries) = state
        .events
        .event(sequence)
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    if !caller.sees_tenant(&event.event.tenant) {
        let hidden = EventsError::NotFound {
            what: "event",
            id: sequence.to_string(),
        };
        return Err(events_error(hidden, "invalid_request"));
    }
    let mut shown = serde_json::to_value(event).map_err(|e| ApiError::internal(&e.to_string()))?;
    // Deliveries name host-wide subscriptions and rules.
    if caller.is_host_wide() {
        shown["deliveries"] = json!(deliveries);
    }
    Ok(Json(shown))
}

/// `GET /v1/deliveries`: deliveries by id, filtered.
pub async fn deliveries(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit();
    if let Some(wanted) = &query.state
        && !["pending", "delivered", "dead", "discarded"].contains(&wanted.as_str())
    {
        return Err(ApiError::invalid_query(
            "`state` is one of pending, delivered, dead and discarded",
        ));
    }
    let ListQuery {
        from,
        state: wanted,
        target,
        event,
        ..
    } = query;
    let found = state
        .events
        .deliveries(from, limit, move |d| {
            wanted.as_deref().is_none_or(|s| s == state_name(&d.state))
                && target.as_deref().is_none_or(|t| t == d.target.id())
                && event.is_none_or(|e| e == d.event)
        })
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    let next = (found.len() == limit)
        .then(|| found.last().map(|d| d.id + 1))
        .flatten();
    Ok(page(&found, next))
}

/// `GET /v1/deliveries/{id}`: one delivery with every attempt.
pub async fn delivery(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .events
        .delivery(id)
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    Ok(Json(json!(view)))
}

/// `GET /v1/dlq`: the dead-letter queue.
pub async fn dead_letters(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit();
    let found = state
        .events
        .dead_letters(query.from, limit)
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    let next = (found.len() == limit)
        .then(|| found.last().map(|d| d.id + 1))
        .flatten();
    Ok(page(&found, next))
}

/// `POST /v1/dlq/{id}/retry`: back into the queue, due now, attempts reset.
pub async fn retry_dead(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let revived = state
        .events
        .retry_dead(id)
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    Ok((StatusCode::ACCEPTED, Json(json!(revived))))
}

/// `DELETE /v1/dlq/{id}`: discards a dead letter.
pub async fn discard_dead(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let discarded = state
        .events
        .discard_dead(id)
        .await
        .map_err(|err| events_error(err, "invalid_request"))?;
    Ok(Json(json!(discarded)))
}

/// `GET /v1/rules`.
pub async fn rules(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "items": state.events.rules() }))
}

/// `POST /v1/rules`: creates a rule.
pub async fn create_rule(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec: RuleSpec = required_json(body, "a rule (see docs/api.md)")?;
    let rule = state
        .events
        .put_rule(None, spec)
        .await
        .map_err(|err| events_error(err, "invalid_rule"))?;
    Ok((StatusCode::CREATED, Json(json!(rule))))
}

/// `GET /v1/rules/{id}`.
pub async fn rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rule = state
        .events
        .rule(&id)
        .map_err(|err| events_error(err, "invalid_rule"))?;
    Ok(Json(json!(rule)))
}

/// `PUT /v1/rules/{id}`: replaces a rule.
pub async fn put_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let spec: RuleSpec = required_json(body, "a rule (see docs/api.md)")?;
    let rule = state
        .events
        .put_rule(Some(&id), spec)
        .await
        .map_err(|err| events_error(err, "invalid_rule"))?;
    Ok(Json(json!(rule)))
}

/// `DELETE /v1/rules/{id}`.
pub async fn delete_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .events
        .delete_rule(&id)
        .await
        .map_err(|err| events_error(err, "invalid_rule"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription as posted: its spec plus, optionally, its secret.
#[derive(Debug, Deserialize)]
pub struct SubscriptionBody {
    /// A `whsec_…` secret; a fresh one when absent.
    #[serde(default)]
    secret: Option<String>,
    #[serde(flatten)]
    spec: Value,
}

fn subscription_body(
    body: Result<Bytes, BytesRejection>,
) -> Result<(SubscriptionSpec, Option<String>), ApiError> {
    let SubscriptionBody { secret, spec } =
        required_json(body, "a subscription (see docs/api.md)")?;
    let spec = serde_json::from_value(spec).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("send a subscription (see docs/api.md): {err}"),
        )
    })?;
    Ok((spec, secret))
}

/// `GET /v1/subscriptions` (secrets are not shown).
pub async fn subscriptions(State(state): State<AppState>) -> Json<Value> {
    let items: Vec<Value> = state
        .events
        .subscriptions()
        .iter()
        .map(|s| s.public_view())
        .collect();
    Json(json!({ "items": items }))
}

/// `POST /v1/subscriptions`: creates one; the answer shows its secret, once.
pub async fn create_subscription(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (spec, secret) = subscription_body(body)?;
    let created = state
        .events
        .put_subscription(None, spec, secret)
        .await
        .map_err(|err| events_error(err, "invalid_subscription"))?;
    let mut shown = created.public_view();
    shown["secret"] = json!(created.secret);
    Ok((StatusCode::CREATED, Json(shown)))
}

/// `GET /v1/subscriptions/{id}` (the secret is not shown).
pub async fn subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = state
        .events
        .subscription(&id)
        .map_err(|err| events_error(err, "invalid_subscription"))?;
    Ok(Json(found.public_view()))
}

/// `PUT /v1/subscriptions/{id}`: replaces its spec (and its secret, when given).
pub async fn put_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let (spec, secret) = subscription_body(body)?;
    let updated = state
        .events
        .put_subscription(Some(&id), spec, secret)
        .await
        .map_err(|err| events_error(err, "invalid_subscription"))?;
    Ok(Json(updated.public_view()))
}

/// `DELETE /v1/subscriptions/{id}`.
pub async fn delete_subscription(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .events
        .delete_subscription(&id)
        .await
        .map_err(|err| events_error(err, "invalid_subscription"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to replay: one event, or a time range.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// One event's sequence number.
    event: Option<u64>,
    /// Start of a range, in milliseconds since the Unix epoch (inclusive).
    from_ms: Option<u64>,
    /// End of a range (exclusive).
    to_ms: Option<u64>,
}

/// `POST /v1/subscriptions/{id}/replay`: delivers again one event or every
/// event it takes from a time range.
pub async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: ReplayBody =
        required_json(body, "{\"event\": 12} or {\"from_ms\": …, \"to_ms\": …}")?;
    let selection = match body {
        ReplayBody {
            event: Some(sequence),
            from_ms: None,
            to_ms: None,
        } => Replay::Event(sequence),
        ReplayBody {
            event: None,
            from_ms: Some(from_ms),
            to_ms: Some(to_ms),
        } if from_ms < to_ms => Replay::Range { from_ms, to_ms },
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_replay",
                "send either `event` or both `from_ms` and `to_ms` with from_ms < to_ms",
            ));
        }
    };
    let deliveries = state
        .events
        .replay(&id, selection)
        .await
        .map_err(|err| events_error(err, "invalid_replay"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "deliveries": deliveries })),
    ))
}
