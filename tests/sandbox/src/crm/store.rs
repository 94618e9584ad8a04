//! The CRM's memory: every customer with their orders and tickets, starting from the seed.
//!
//! This module owns lookups by phone and id, the newest-first order of orders and tickets, and
//! adding customers; the routes and their query checks live in the parent.

use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;

use super::phone::normalize;
use super::records::{Customer, NewCustomer, Order, Record, Ticket, TicketStatus, checked_id};
use super::seed;
use crate::error::ApiError;

/// Which tickets `GET /v1/customers/{id}/tickets` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TicketFilter {
    Only(TicketStatus),
    All,
}

/// All customers, behind one lock so check-and-insert is atomic.
#[derive(Debug)]
pub(crate) struct Directory {
    records: Mutex<Vec<Record>>,
}

impl Default for Directory {
    /// The seeded customers of [`seed`].
    fn default() -> Self {
        Self {
            records: Mutex::new(seed::customers()),
        }
    }
}

impl Directory {
    /// The customers whose number reads as `digits` (see [`normalize`]), oldest first.
    pub(crate) fn by_phone(&self, digits: &str) -> Vec<Customer> {
        self.lock()
            .iter()
            .filter(|record| normalize(&record.customer.phone).as_deref() == Some(digits))
            .map(|record| record.customer.clone())
            .collect()
    }

    /// The customer with `id`, or a 404.
    pub(crate) fn customer(&self, id: &str) -> Result<Customer, ApiError> {
        self.with_record(id, |record| record.customer.clone())
    }

    /// The customer's `limit` latest orders, newest first, or a 404 for an unknown customer.
    pub(crate) fn orders(&self, id: &str, limit: usize) -> Result<Vec<Order>, ApiError> {
        self.with_record(id, |record| {
            let mut orders = record.orders.clone();
            orders.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            orders.truncate(limit);
            orders
        })
    }

    /// The customer's tickets that pass `filter`, last updated first, or a 404 for an
    /// unknown customer.
    pub(crate) fn tickets(&self, id: &str, filter: TicketFilter) -> Result<Vec<Ticket>, ApiError> {
        self.with_record(id, |record| {
            let mut tickets: Vec<Ticket> = record
                .tickets
                .iter()
                .filter(|ticket| {
                    filter == TicketFilter::All || filter == TicketFilter::Only(ticket.status)
                })
                .cloned()
                .collect();
            tickets.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
            tickets
        })
    }

    /// Adds a customer created at `now`, under the requested id or the next free
    /// `cus_<n>`; a taken id is a 409 `customer_exists`.
    pub(crate) fn add(&self, new: NewCustomer, now: u64) -> Result<Record, ApiError> {
        let mut records = self.lock();
        let taken = |id: &str| records.iter().any(|record| record.customer.id == id);
        let id = match new.id.clone() {
            Some(id) => checked_id(id)?,
            None => (1001..)
                .map(|n: u64| format!("cus_{n}"))
                .find(|id| !taken(id))
                .unwrap_or_default(),
        };
        if taken(&id) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "customer_exists",
                format!("a customer with id {id:?} already exists"),
            ));
        }
        let record = new.into_record(id, now)?;
        records.push(record.clone());
        Ok(record)
    }

    /// Every customer with their orders and tickets, oldest first.
    pub(crate) fn all(&self) -> Vec<Record> {
        self.lock().clone()
    }

    fn with_record<T>(&self, id: &str, read: impl FnOnce(&Record) -> T) -> Result<T, ApiError> {
        self.lock()
            .iter()
            .find(|record| record.customer.id == id)
            .map(read)
            .ok_or_else(|| ApiError::not_found(format!("no customer with id {id:?}")))
    }

    /// A poisoned lock still holds a consistent list: every update above is a single push.
    fn lock(&self) -> MutexGuard<'_, Vec<Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_customer(id: Option<&str>, phone: &str) -> NewCustomer {
        NewCustomer {
            id: id.map(str::to_owned),
            name: "Test Person".into(),
            phone: phone.into(),
            email: None,
            tier: Default::default(),
            tags: Vec::new(),
            orders: Vec::new(),
            tickets: Vec::new(),
        }
    }

    #[test]
    fn added_customers_get_the_next_free_id_and_a_taken_id_is_a_conflict() -> anyhow::Result<()> {
        let directory = Directory::default();
        let added = directory.add(new_customer(None, "13700000001"), 5)?;
        assert_eq!(added.customer.id, "cus_1006");
        assert_eq!(added.customer.phone, "+8613700000001");
        assert_eq!(added.customer.created_at, 5);
        let clash = directory.add(new_customer(Some("cus_1001"), "13700000002"), 5);
        assert_eq!(
            clash.err().map(|error| (error.status(), error.kind())),
            Some((StatusCode::CONFLICT, "customer_exists"))
        );
        Ok(())
    }

    #[test]
    fn a_bad_id_or_phone_names_the_field() {
        let directory = Directory::default();
        for (new, param) in [
            (new_customer(Some("has space"), "13700000001"), "id"),
            (new_customer(None, "call me"), "phone"),
        ] {
            let error = directory.add(new, 0).err();
            assert_eq!(error.as_ref().and_then(|e| e.param()), Some(param));
        }
    }

    #[test]
    fn tickets_filter_by_status_newest_first() -> anyhow::Result<()> {
        let directory = Directory::default();
        let ids = |filter| -> anyhow::Result<Vec<String>> {
            Ok(directory
                .tickets("cus_1001", filter)?
                .into_iter()
                .map(|ticket| ticket.id)
                .collect())
        };
        assert_eq!(ids(TicketFilter::All)?, ["TCK-5001", "TCK-4990"]);
        assert_eq!(ids(TicketFilter::Only(TicketStatus::Open))?, ["TCK-5001"]);
        assert_eq!(ids(TicketFilter::Only(TicketStatus::Closed))?, ["TCK-4990"]);
        Ok(())
    }
}
