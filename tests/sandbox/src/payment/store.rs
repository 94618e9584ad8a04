//! The payment provider's memory: links by id, and which link each order already has.
//!
//! This module owns idempotent creation, lookup and paying; it takes the time as an argument
//! so expiry is testable without waiting.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;

use super::link::{LinkStatus, NewLink, PaymentLink};
use crate::error::ApiError;

/// All links of one provider, behind one lock so check-and-insert is atomic.
#[derive(Debug, Default)]
pub(crate) struct Links {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<String, PaymentLink>,
    id_by_order: HashMap<String, String>,
}

/// What a create request did.
#[derive(Debug, PartialEq)]
pub(crate) enum Created {
    /// A new link (201).
    New(PaymentLink),
    /// The order already had a link for the same amount and currency (200).
    Existing(PaymentLink),
}

impl Links {
    /// Creates a link for the order, or returns the one it has if amount and currency match;
    /// a different amount or currency for a known order is a 409 `order_conflict`.
    /// `url_base` is what the link id is appended to, e.g. `http://127.0.0.1:18082/pay/`.
    pub(crate) fn create(
        &self,
        request: NewLink,
        url_base: &str,
        now: u64,
    ) -> Result<Created, ApiError> {
        let mut inner = self.lock();
        if let Some(existing) = inner
            .id_by_order
            .get(&request.order_id)
            .and_then(|id| inner.by_id.get(id))
        {
            if existing.amount == request.amount && existing.currency == request.currency {
                return Ok(Created::Existing(existing.as_of(now)));
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "order_conflict",
                format!(
                    "order {} already has link {} for {} {}; a link for another amount or currency needs a new order_id",
                    existing.order_id,
                    existing.id,
                    existing.amount,
                    existing.currency.code()
                ),
            ));
        }
        let id = loop {
            let candidate = format!("plink_{:016x}", rand::random::<u64>());
            if !inner.by_id.contains_key(&candidate) {
                break candidate;
            }
        };
        let link = PaymentLink::new(id.clone(), format!("{url_base}{id}"), request, now);
        inner.id_by_order.insert(link.order_id.clone(), id.clone());
        inner.by_id.insert(id, link.clone());
        Ok(Created::New(link))
    }

    /// The link as it reads at `now`, if it exists.
    pub(crate) fn get(&self, id: &str, now: u64) -> Option<PaymentLink> {
        self.lock().by_id.get(id).map(|link| link.as_of(now))
    }

    /// Marks a pending link paid at `now` and says whether this call paid it; paying a paid
    /// link again changes nothing. An unknown link is a 404, an expired one a 409
    /// `link_expired`.
    pub(crate) fn pay(&self, id: &str, now: u64) -> Result<(PaymentLink, bool), ApiError> {
        let mut inner = self.lock();
        let link = inner.by_id.get_mut(id).ok_or_else(|| unknown_link(id))?;
        match link.as_of(now).status {
            LinkStatus::Expired => Err(ApiError::new(
                StatusCode::CONFLICT,
                "link_expired",
                format!(
                    "payment link {id} expired at {} and can no longer be paid",
                    link.expires_at
                ),
            )),
            LinkStatus::Paid => Ok((link.clone(), false)),
            LinkStatus::Pending => {
                link.status = LinkStatus::Paid;
                link.paid_at = Some(now);
                Ok((link.clone(), true))
            }
        }
    }

    /// A poisoned lock still holds consistent maps: every update above is a single insert.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// 404 for a link id the provider never issued.
pub(crate) fn unknown_link(id: &str) -> ApiError {
    ApiError::not_found(format!("no payment link with id {id:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::link::Currency;

    fn order(order_id: &str, amount: u64, currency: Currency) -> NewLink {
        NewLink {
            order_id: order_id.into(),
            amount,
            currency,
            description: None,
            expires_in_minutes: 10,
            metadata: Default::default(),
        }
    }

    fn created(result: Result<Created, ApiError>) -> anyhow::Result<PaymentLink> {
        match result? {
            Created::New(link) | Created::Existing(link) => Ok(link),
        }
    }

    #[test]
    fn ids_are_plink_and_16_hex_digits_and_urls_end_with_the_id() -> anyhow::Result<()> {
        let links = Links::default();
        let link = created(links.create(order("o1", 5, Currency::Usd), "http://p/pay/", 0))?;
        let hex = link.id.strip_prefix("plink_").unwrap_or_default();
        assert_eq!(hex.len(), 16);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(link.url, format!("http://p/pay/{}", link.id));
        Ok(())
    }

    #[test]
    fn paying_an_expired_link_is_refused_and_paying_twice_keeps_the_first_time()
    -> anyhow::Result<()> {
        let links = Links::default();
        let late = created(links.create(order("late", 5, Currency::Eur), "", 0))?;
        let error = links
            .pay(&late.id, 600)
            .err()
            .map(|e| (e.status(), e.kind()));
        assert_eq!(error, Some((StatusCode::CONFLICT, "link_expired")));
        assert_eq!(
            links.get(&late.id, 600).map(|l| l.status),
            Some(LinkStatus::Expired)
        );

        let prompt = created(links.create(order("prompt", 5, Currency::Eur), "", 0))?;
        let (first, paid_now) = links.pay(&prompt.id, 10)?;
        assert_eq!((first.paid_at, paid_now), (Some(10), true));
        let (again, paid_now) = links.pay(&prompt.id, 20)?;
        assert_eq!((again.paid_at, paid_now), (Some(10), false));
        assert_eq!(
            links.get(&prompt.id, 9_999).map(|l| l.status),
            Some(LinkStatus::Paid)
        );
        Ok(())
    }

    #[test]
    fn an_expired_link_is_still_returned_for_its_order() -> anyhow::Result<()> {
        let links = Links::default();
        let first = created(links.create(order("o", 5, Currency::Rub), "", 0))?;
        let again = links.create(order("o", 5, Currency::Rub), "", 600)?;
        assert_eq!(
            again,
            Created::Existing(PaymentLink {
                status: LinkStatus::Expired,
                ..first
            })
        );
        Ok(())
    }
}
