//! What the CRM keeps about a customer, as its JSON shows it: the profile, orders and tickets,
//! and the control route's request that adds a customer.
//!
//! Times are Unix seconds. This module owns the shapes and their checks; who is stored where
//! lives in `store`, the seeded people in `seed`.

use serde::{Deserialize, Serialize};

use super::phone::{PHONE_RULES, normalize};
use crate::error::ApiError;

/// The longest customer id, in characters.
const MAX_ID_CHARS: usize = 64;

/// How much the customer is worth to the business.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Tier {
    Vip,
    #[default]
    Regular,
}

/// A customer's profile, as `GET /v1/customers/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Customer {
    pub(crate) id: String,
    pub(crate) name: String,
    /// E.164, such as `+8613800138000`.
    pub(crate) phone: String,
    pub(crate) email: Option<String>,
    pub(crate) tier: Tier,
    pub(crate) tags: Vec<String>,
    pub(crate) created_at: u64,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
    Refunded,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Item {
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) qty: u32,
}

/// An order of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) status: OrderStatus,
    /// A decimal in major units, such as `"299.00"`, as e-commerce back ends write money.
    pub(crate) total: String,
    /// ISO 4217, such as `CNY`.
    pub(crate) currency: String,
    #[serde(default = "super::now")]
    pub(crate) created_at: u64,
    pub(crate) items: Vec<Item>,
}

/// Whether a ticket still needs work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TicketStatus {
    Open,
    Closed,
}

/// A support ticket of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Ticket {
    pub(crate) id: String,
    pub(crate) subject: String,
    pub(crate) status: TicketStatus,
    #[serde(default = "super::now")]
    pub(crate) updated_at: u64,
}

/// A customer with everything the CRM holds about them, as the control routes show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Record {
    #[serde(flatten)]
    pub(crate) customer: Customer,
    pub(crate) orders: Vec<Order>,
    pub(crate) tickets: Vec<Ticket>,
}

/// `POST /__sandbox/crm/customers`: a customer to add, with their orders and tickets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCustomer {
    /// Chosen by the CRM when absent.
    #[serde(default)]
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    /// Any form [`normalize`] reads; stored as E.164.
    pub(crate) phone: String,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) tier: Tier,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) orders: Vec<Order>,
    #[serde(default)]
    pub(crate) tickets: Vec<Ticket>,
}

impl NewCustomer {
    /// The record this request adds under `id` at `now`, once its fields pass their checks.
    pub(crate) fn into_record(self, id: String, now: u64) -> Result<Record, ApiError> {
        if self.name.trim().is_empty() {
            return Err(ApiError::invalid_param("name", "name must not be blank"));
        }
        let digits =
            normalize(&self.phone).ok_or_else(|| ApiError::invalid_param("phone", PHONE_RULES))?;
        Ok(Record {
            customer: Customer {
                id,
                name: self.name,
                phone: format!("+{digits}"),
                email: self.email,
                tier: self.tier,
                tags: self.tags,
                created_at: now,
            },
            orders: self.orders,
            tickets: self.tickets,
        })
    }
}

/// `id` if it is 1 to 64 letters, digits, `_` or `-`.
pub(crate) fn checked_id(id: String) -> Result<String, ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if (1..=MAX_ID_CHARS).contains(&id.len()) && id.chars().all(allowed) {
        Ok(id)
    } else {
        Err(ApiError::invalid_param(
            "id",
            format!("id must be 1 to {MAX_ID_CHARS} letters, digits, '_' or '-'"),
        ))
    }
}
