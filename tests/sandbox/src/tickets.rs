//! The fake ticket system, in the style of the Zendesk Support API.
//!
//! With `Authorization: Bearer sk_sandbox_tickets`:
//! - `POST /api/v2/tickets` `{"ticket": {"subject", "comment": {"body"}, "requester": {"name",
//!   "email"?, "phone"?, "im_id"?}, "priority"?, "type"?, "tags"?, "custom_fields"?: [{"id",
//!   "value"}], "external_id"?}}` → 201 `{"ticket": {...}}` with `status: "new"`;
//! - `GET /api/v2/tickets[?external_id=X]` → `{"tickets": [...], "count"}`;
//! - `GET|PUT /api/v2/tickets/{id}` (`PUT` `{"ticket": {"status"?, "priority"?, "tags"?,
//!   "comment"?: {"body", "public"?, "author_id"?}}}`) → `{"ticket": {...}}`;
//! - `GET /api/v2/tickets/{id}/comments` → `{"comments": [...], "count"}`;
//! - `GET /api/v2/ticket_fields` → `{"ticket_fields": [...]}`, the custom fields tickets may set.
//!
//! Errors: 401 `{"error":"Couldn't authenticate you"}`, 404 `{"error":"RecordNotFound",
//! "description":"Not found"}`, 422 `{"error":"RecordInvalid","description":"Record validation
//! errors","details":{"<field>":[{"description"}]}}` (a closed ticket takes no update), 400
//! `{"error":"InvalidRequest","description"}` for a body that is not JSON.
//!
//! Control routes (no key): `GET /__sandbox/tickets` lists every ticket; `PUT
//! /__sandbox/tickets/{id}/status` `{"status"}` plays an agent changing the status in the
//! ticket UI; `GET|PUT /__sandbox/webhook` and `GET /__sandbox/webhook/sent` set and show where
//! status changes are sent (see [`notify`]). This module owns the routes; the shapes live in
//! [`ticket`], the request checks in [`request`], memory in [`store`].

mod error;
mod notify;
mod request;
mod store;
mod ticket;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    routing::{get, put},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::TICKETS_API_KEY;
use crate::auth::require_bearer;
use crate::webhook::{self, WebhookTarget};
use error::TicketError;
use notify::Notifier;
use request::{NewTicket, TicketUpdate};
use store::{Tickets, Updated};
use ticket::{TICKET_FIELDS, Ticket};

/// What the ticket routes share.
#[derive(Debug)]
struct Provider {
    tickets: Tickets,
    notifier: Notifier,
}

/// The provider's routes; faults, counting and the shared control routes are added by
/// `upstream`.
pub(crate) fn routes() -> Router {
    let target = Arc::new(WebhookTarget::default());
    let provider = Arc::new(Provider {
        tickets: Tickets::default(),
        notifier: Notifier::new(Arc::clone(&target)),
    });
    Router::new()
        .route("/api/v2/tickets", get(list_tickets).post(create_ticket))
        .route("/api/v2/tickets/{id}", get(get_ticket).put(update_ticket))
        .route("/api/v2/tickets/{id}/comments", get(list_comments))
        .route("/api/v2/ticket_fields", get(list_ticket_fields))
        .route("/__sandbox/tickets", get(all_tickets))
        .route("/__sandbox/tickets/{id}/status", put(agent_sets_status))
        .with_state(provider)
        .merge(webhook::control_routes(target))
}

type Reply = Result<Json<Value>, TicketError>;

/// The query of `GET /api/v2/tickets`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    external_id: Option<String>,
}

fn authenticate(headers: &HeaderMap) -> Result<(), TicketError> {
    require_bearer(headers, TICKETS_API_KEY).map_err(|_| TicketError::Unauthenticated)
}

/// The ticket id in the path; one that is not a number names no ticket.
fn ticket_id(path: Result<Path<String>, PathRejection>) -> Result<u64, TicketError> {
    let Path(id) = path.map_err(|_| TicketError::NotFound)?;
    id.parse().map_err(|_| TicketError::NotFound)
}

fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, TicketError> {
    serde_json::from_slice(&body?)
        .map_err(|error| TicketError::bad_request(format!("the body is not valid JSON: {error}")))
}

fn ticket_list(tickets: Vec<Ticket>) -> Json<Value> {
    Json(json!({
        "count": tickets.len(),
        "tickets": tickets,
        "next_page": null,
        "previous_page": null,
    }))
}

async fn create_ticket(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), TicketError> {
    authenticate(&headers)?;
    let new = NewTicket::parse(&json_body(body)?)?;
    let ticket = provider.tickets.create(new, &crate::clock::now_rfc3339());
    Ok((StatusCode::CREATED, Json(json!({"ticket": ticket}))))
}

async fn list_tickets(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Reply {
    authenticate(&headers)?;
    let Query(query) = query.map_err(|rejection| {
        TicketError::bad_request(format!("the query is not valid: {}", rejection.body_text()))
    })?;
    Ok(ticket_list(
        provider.tickets.list(query.external_id.as_deref()),
    ))
}

async fn get_ticket(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    authenticate(&headers)?;
    let ticket = provider.tickets.get(ticket_id(path)?)?;
    Ok(Json(json!({"ticket": ticket})))
}

async fn update_ticket(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    authenticate(&headers)?;
    let id = ticket_id(path)?;
    let update = TicketUpdate::parse(&json_body(body)?)?;
    provider.update(id, update)
}

async fn list_comments(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Reply {
    authenticate(&headers)?;
    let comments = provider.tickets.comments(ticket_id(path)?)?;
    Ok(Json(json!({
        "count": comments.len(),
        "comments": comments,
        "next_page": null,
        "previous_page": null,
    })))
}

async fn list_ticket_fields(headers: HeaderMap) -> Reply {
    authenticate(&headers)?;
    Ok(Json(json!({"ticket_fields": TICKET_FIELDS})))
}

async fn all_tickets(State(provider): State<Arc<Provider>>) -> Json<Value> {
    ticket_list(provider.tickets.list(None))
}

async fn agent_sets_status(
    State(provider): State<Arc<Provider>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let id = ticket_id(path)?;
    let update = TicketUpdate::status_only(&json_body(body)?)?;
    provider.update(id, update)
}

impl Provider {
    /// Applies an update and, when it changed the status, queues the webhook (after the
    /// store's lock is released).
    fn update(&self, id: u64, update: TicketUpdate) -> Reply {
        let now = crate::clock::now_rfc3339();
        let Updated {
            ticket,
            previous_status,
        } = self.tickets.update(id, update, &now)?;
        if let Some(previous) = previous_status {
            self.notifier.status_changed(&ticket, previous, &now);
        }
        Ok(Json(json!({"ticket": ticket})))
    }
}

#[cfg(test)]
mod tests;
