//! The fake CRM: customers with tags and tiers, their orders and their support tickets, found
//! by the caller's phone number so an agent gets a 360° view when a call comes in.
//!
//! API (`Authorization: Bearer sk_sandbox_crm`, else HTTP 401 `unauthorized`); errors have
//! the shared shape `{"error":{"type","message","param"?}}`; times are Unix seconds:
//! - `GET /v1/customers?phone=<number>` → `{"data":[customer…]}`: every customer whose number
//!   reads the same (`+86 138-0013-8000`, `0086…`, `13800138000`; see [`phone`]); a missing
//!   or malformed `phone` is a 400 `invalid_request` with `param: "phone"`.
//! - `GET /v1/customers/{id}` → `{id, name, phone, email, tier: "vip"|"regular", tags,
//!   created_at}`, or 404 `not_found`.
//! - `GET /v1/customers/{id}/orders?limit=N` (1 to 50, default 5) → `{"data":[{id, status,
//!   total, currency, created_at, items:[{sku, name, qty}]}]}`, newest first.
//! - `GET /v1/customers/{id}/tickets?status=open|closed|all` (default `all`) →
//!   `{"data":[{id, subject, status, updated_at}]}`, last updated first.
//!
//! Control routes (no key): `POST /__sandbox/crm/customers` adds a customer (see
//! [`records::NewCustomer`]) and answers 201 with it, its orders and tickets; `GET
//! /__sandbox/crm/customers` lists everyone that way. The seeded customers are in [`seed`].
//! This module owns the routes and their query checks.

mod phone;
mod records;
mod seed;
mod store;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, PathRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode},
    routing::get,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::CRM_API_KEY;
use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::upstream::parse_json_body;
use records::{Customer, Record, TicketStatus};
use store::{Directory, TicketFilter};

/// How many orders a request gets unless it says.
const DEFAULT_ORDER_LIMIT: usize = 5;
/// The most orders one request gets.
const MAX_ORDER_LIMIT: usize = 50;

/// The provider's routes; faults, counting and the shared control routes are added by
/// `upstream`.
pub(crate) fn routes() -> Router {
    Router::new()
        .route("/v1/customers", get(find_customers))
        .route("/v1/customers/{id}", get(get_customer))
        .route("/v1/customers/{id}/orders", get(list_orders))
        .route("/v1/customers/{id}/tickets", get(list_tickets))
        .route(
            "/__sandbox/crm/customers",
            get(list_everyone).post(add_customer),
        )
        .with_state(Arc::new(Directory::default()))
}

/// Unix seconds now.
/// Seconds since the Unix epoch.
fn now() -> u64 {
    crate::clock::now_s()
}

/// The query string of any CRM route; each route reads its own parameter and ignores others.
#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// The customer id of a `/v1/customers/{id}…` path.
type CustomerId = Result<Path<String>, PathRejection>;
/// The query string of a request.
type QueryParams = Result<Query<Params>, QueryRejection>;

async fn find_customers(
    State(directory): State<Arc<Directory>>,
    headers: HeaderMap,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    require_bearer(&headers, CRM_API_KEY)?;
    let raw = params(query)?.phone.ok_or_else(|| {
        ApiError::invalid_param("phone", "phone is required, as in ?phone=%2B8613800138000")
    })?;
    let digits = phone::normalize(&raw)
        .ok_or_else(|| ApiError::invalid_param("phone", phone::PHONE_RULES))?;
    Ok(data(directory.by_phone(&digits)))
}

async fn get_customer(
    State(directory): State<Arc<Directory>>,
    headers: HeaderMap,
    path: CustomerId,
) -> Result<Json<Customer>, ApiError> {
    require_bearer(&headers, CRM_API_KEY)?;
    let Path(id) = path?;
    directory.customer(&id).map(Json)
}

async fn list_orders(
    State(directory): State<Arc<Directory>>,
    headers: HeaderMap,
    path: CustomerId,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    require_bearer(&headers, CRM_API_KEY)?;
    let Path(id) = path?;
    let limit = order_limit(params(query)?.limit.as_deref())?;
    Ok(data(directory.orders(&id, limit)?))
}

async fn list_tickets(
    State(directory): State<Arc<Directory>>,
    headers: HeaderMap,
    path: CustomerId,
    query: QueryParams,
) -> Result<Json<Value>, ApiError> {
    require_bearer(&headers, CRM_API_KEY)?;
    let Path(id) = path?;
    let filter = ticket_filter(params(query)?.status.as_deref())?;
    Ok(data(directory.tickets(&id, filter)?))
}

async fn add_customer(
    State(directory): State<Arc<Directory>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Record>), ApiError> {
    let record = directory.add(parse_json_body(body)?, now())?;
    Ok((StatusCode::CREATED, Json(record)))
}

async fn list_everyone(State(directory): State<Arc<Directory>>) -> Json<Value> {
    data(directory.all())
}

/// `{"data": items}`, the CRM's list envelope.
fn data<T: serde::Serialize>(items: Vec<T>) -> Json<Value> {
    Json(json!({ "data": items }))
}

fn params(query: QueryParams) -> Result<Params, ApiError> {
    query.map(|Query(params)| params).map_err(|rejection| {
        ApiError::invalid_request(format!(
            "the query string is not valid: {}",
            rejection.body_text()
        ))
    })
}

/// `limit` as a number of orders, [`DEFAULT_ORDER_LIMIT`] when absent.
fn order_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    let Some(limit) = limit else {
        return Ok(DEFAULT_ORDER_LIMIT);
    };
    limit
        .parse()
        .ok()
        .filter(|limit| (1..=MAX_ORDER_LIMIT).contains(limit))
        .ok_or_else(|| {
            ApiError::invalid_param(
                "limit",
                format!("limit must be an integer from 1 to {MAX_ORDER_LIMIT}"),
            )
        })
}

/// `status` as a ticket filter, all tickets when absent.
fn ticket_filter(status: Option<&str>) -> Result<TicketFilter, ApiError> {
    match status {
        None | Some("all") => Ok(TicketFilter::All),
        Some("open") => Ok(TicketFilter::Only(TicketStatus::Open)),
        Some("closed") => Ok(TicketFilter::Only(TicketStatus::Closed)),
        Some(_) => Err(ApiError::invalid_param(
            "status",
            "status must be one of open, closed, all",
        )),
    }
}

#[cfg(test)]
mod tests;
