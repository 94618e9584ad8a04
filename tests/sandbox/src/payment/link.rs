//! A payment link and the request that creates one.
//!
//! This module owns the link's JSON shape, its lifecycle (pending → paid or expired) and the
//! field-by-field checks of a create request; storage lives in `store`, routes in the parent.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The largest amount a link may ask for, in minor units.
pub(crate) const MAX_AMOUNT: u64 = 100_000_000;
/// The longest order id, in characters.
pub(crate) const MAX_ORDER_ID_CHARS: usize = 64;
/// The longest description, in characters.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 200;
/// How long a link lives unless the request says otherwise.
pub(crate) const DEFAULT_EXPIRES_IN_MINUTES: u64 = 24 * 60;
/// The longest a link may live: one week.
pub(crate) const MAX_EXPIRES_IN_MINUTES: u64 = 7 * 24 * 60;

/// The most metadata keys a link may carry, as with Stripe.
pub(crate) const MAX_METADATA_KEYS: usize = 20;
/// The longest metadata key, in characters.
pub(crate) const MAX_METADATA_KEY_CHARS: usize = 40;
/// The longest metadata value, in characters.
pub(crate) const MAX_METADATA_VALUE_CHARS: usize = 500;

const FIELDS: [&str; 6] = [
    "order_id",
    "amount",
    "currency",
    "description",
    "expires_in_minutes",
    "metadata",
];

/// Currencies the provider settles in; all have two decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Currency {
    Cny,
    Usd,
    Eur,
    Rub,
}

impl Currency {
    const ALL: [Currency; 4] = [Currency::Cny, Currency::Usd, Currency::Eur, Currency::Rub];

    /// The ISO 4217 code, e.g. `CNY`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Currency::Cny => "CNY",
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Rub => "RUB",
        }
    }

    fn parse(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|currency| currency.code() == code)
    }
}

/// A create request whose every field has been checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewLink {
    pub(crate) order_id: String,
    pub(crate) amount: u64,
    pub(crate) currency: Currency,
    pub(crate) description: Option<String>,
    pub(crate) expires_in_minutes: u64,
    pub(crate) metadata: BTreeMap<String, String>,
}

impl NewLink {
    /// Checks a create request body, naming the first field at fault in the error's `param`.
    pub(crate) fn parse(body: Value) -> Result<Self, ApiError> {
        let Value::Object(fields) = body else {
            return Err(ApiError::invalid_request(
                "the request body must be a JSON object",
            ));
        };
        if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(ApiError::invalid_param(
                unknown,
                format!(
                    "unknown parameter {unknown:?}; known: {}",
                    FIELDS.join(", ")
                ),
            ));
        }
        Ok(Self {
            order_id: order_id(required(&fields, "order_id")?)?,
            amount: integer_in(required(&fields, "amount")?, "amount", 1..=MAX_AMOUNT)?,
            currency: currency(required(&fields, "currency")?)?,
            description: optional(&fields, "description")
                .map(description)
                .transpose()?,
            expires_in_minutes: optional(&fields, "expires_in_minutes")
                .map(|minutes| {
                    integer_in(minutes, "expires_in_minutes", 1..=MAX_EXPIRES_IN_MINUTES)
                })
                .transpose()?
                .unwrap_or(DEFAULT_EXPIRES_IN_MINUTES),
            metadata: optional(&fields, "metadata")
                .map(metadata)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

fn required<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a Value, ApiError> {
    optional(fields, name)
        .ok_or_else(|| ApiError::invalid_param(name, format!("{name} is required")))
}

/// A field that is absent or `null` is not given.
fn optional<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|value| !value.is_null())
}

fn order_id(value: &Value) -> Result<String, ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    value
        .as_str()
        .filter(|id| (1..=MAX_ORDER_ID_CHARS).contains(&id.len()) && id.chars().all(allowed))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "order_id",
                format!(
                    "order_id must be a string of 1 to {MAX_ORDER_ID_CHARS} letters, digits, '_' or '-'"
                ),
            )
        })
}

/// An integer field within `range`; amounts are minor units, lifetimes minutes.
fn integer_in(value: &Value, param: &str, range: RangeInclusive<u64>) -> Result<u64, ApiError> {
    value
        .as_u64()
        .filter(|number| range.contains(number))
        .ok_or_else(|| {
            ApiError::invalid_param(
                param,
                format!(
                    "{param} must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

fn currency(value: &Value) -> Result<Currency, ApiError> {
    value.as_str().and_then(Currency::parse).ok_or_else(|| {
        let codes: Vec<&str> = Currency::ALL.iter().map(|c| c.code()).collect();
        ApiError::invalid_param(
            "currency",
            format!("currency must be one of {}", codes.join(", ")),
        )
    })
}

fn description(value: &Value) -> Result<String, ApiError> {
    value
        .as_str()
        .filter(|text| text.chars().count() <= MAX_DESCRIPTION_CHARS)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::invalid_param(
                "description",
                format!(
                    "description must be a string of at most {MAX_DESCRIPTION_CHARS} characters"
                ),
            )
        })
}

/// Key-value pairs the merchant attaches (an order's ticket, the customer's phone), returned
/// with the link and in its webhooks: string values, at most 20 keys.
fn metadata(value: &Value) -> Result<BTreeMap<String, String>, ApiError> {
    let invalid = || {
        ApiError::invalid_param(
            "metadata",
            format!(
                "metadata must be an object of at most {MAX_METADATA_KEYS} keys of up to \
                 {MAX_METADATA_KEY_CHARS} characters with string values of up to \
                 {MAX_METADATA_VALUE_CHARS} characters"
            ),
        )
    };
    let fields = value.as_object().ok_or_else(invalid)?;
    if fields.len() > MAX_METADATA_KEYS {
        return Err(invalid());
    }
    fields
        .iter()
        .map(|(key, value)| match value.as_str() {
            Some(text)
                if (1..=MAX_METADATA_KEY_CHARS).contains(&key.chars().count())
                    && text.chars().count() <= MAX_METADATA_VALUE_CHARS =>
            {
                Ok((key.clone(), text.to_owned()))
            }
            _ => Err(invalid()),
        })
        .collect()
}

/// Where a link is in its life. `Expired` is never stored: it is how a pending link reads
/// once its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LinkStatus {
    Pending,
    Paid,
    Expired,
}

impl LinkStatus {
    /// The status as it appears in JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Pending => "pending",
            LinkStatus::Paid => "paid",
            LinkStatus::Expired => "expired",
        }
    }
}

/// A payment link as the provider stores and shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PaymentLink {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) order_id: String,
    pub(crate) amount: u64,
    pub(crate) currency: Currency,
    pub(crate) description: Option<String>,
    pub(crate) status: LinkStatus,
    /// Unix seconds.
    pub(crate) created_at: u64,
    /// Unix seconds; from then on a pending link reads as expired.
    pub(crate) expires_at: u64,
    /// Unix seconds; only once paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) paid_at: Option<u64>,
    /// What the merchant attached when creating the link.
    pub(crate) metadata: BTreeMap<String, String>,
}

impl PaymentLink {
    /// A fresh pending link for `request`, created at `now`.
    pub(crate) fn new(id: String, url: String, request: NewLink, now: u64) -> Self {
        Self {
            id,
            url,
            order_id: request.order_id,
            amount: request.amount,
            currency: request.currency,
            description: request.description,
            status: LinkStatus::Pending,
            created_at: now,
            expires_at: now + request.expires_in_minutes * 60,
            paid_at: None,
            metadata: request.metadata,
        }
    }

    /// The link as it reads at `now`.
    pub(crate) fn as_of(&self, now: u64) -> Self {
        let mut link = self.clone();
        if link.status == LinkStatus::Pending && now >= link.expires_at {
            link.status = LinkStatus::Expired;
        }
        link
    }

    /// The amount in major units, e.g. `12.50`.
    pub(crate) fn display_amount(&self) -> String {
        format!("{}.{:02}", self.amount / 100, self.amount % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(field: &str, value: Value) -> Value {
        let mut body = json!({"order_id": "A-1", "amount": 100, "currency": "CNY"});
        body[field] = value;
        body
    }

    fn param_at_fault(body: Value) -> Option<String> {
        NewLink::parse(body)
            .err()
            .and_then(|error| error.param().map(str::to_owned))
    }

    #[test]
    fn a_minimal_request_gets_the_default_lifetime_and_no_description() {
        let parsed = NewLink::parse(with("description", Value::Null)).ok();
        assert_eq!(
            parsed,
            Some(NewLink {
                order_id: "A-1".into(),
                amount: 100,
                currency: Currency::Cny,
                description: None,
                expires_in_minutes: DEFAULT_EXPIRES_IN_MINUTES,
                metadata: BTreeMap::new(),
            })
        );
    }

    #[test]
    fn metadata_takes_string_values_and_names_itself_when_refused() {
        let parsed = NewLink::parse(with("metadata", json!({"ticket_id": "42"})));
        assert_eq!(
            parsed.ok().map(|link| link.metadata),
            Some(BTreeMap::from([("ticket_id".to_owned(), "42".to_owned())]))
        );
        for refused in [
            json!({"ticket_id": 42}),
            json!(["ticket_id"]),
            json!({"": "x"}),
            json!({"k": "v".repeat(MAX_METADATA_VALUE_CHARS + 1)}),
        ] {
            assert_eq!(
                param_at_fault(with("metadata", refused)).as_deref(),
                Some("metadata")
            );
        }
    }

    #[test]
    fn each_limit_accepts_its_edge_and_rejects_one_past_it() {
        let long_id = "x".repeat(MAX_ORDER_ID_CHARS);
        let long_text = "字".repeat(MAX_DESCRIPTION_CHARS);
        for (field, inside, outside) in [
            ("amount", json!(1), json!(0)),
            ("amount", json!(MAX_AMOUNT), json!(MAX_AMOUNT + 1)),
            ("order_id", json!(long_id), json!(format!("{long_id}x"))),
            ("order_id", json!("a_b-C9"), json!("")),
            (
                "description",
                json!(long_text),
                json!(format!("{long_text}!")),
            ),
            ("expires_in_minutes", json!(1), json!(0)),
            (
                "expires_in_minutes",
                json!(MAX_EXPIRES_IN_MINUTES),
                json!(MAX_EXPIRES_IN_MINUTES + 1),
            ),
        ] {
            assert_eq!(param_at_fault(with(field, inside)), None, "{field} inside");
            assert_eq!(
                param_at_fault(with(field, outside)).as_deref(),
                Some(field),
                "{field} outside"
            );
        }
    }

    #[test]
    fn wrong_types_and_unknown_values_name_the_field() {
        for (field, value) in [
            ("amount", json!("100")),
            ("amount", json!(1.5)),
            ("amount", json!(-5)),
            ("order_id", json!(42)),
            ("order_id", json!("has space")),
            ("currency", json!("cny")),
            ("currency", json!("JPY")),
            ("description", json!(["a"])),
            ("amount", Value::Null),
            ("surprise", json!(1)),
        ] {
            assert_eq!(
                param_at_fault(with(field, value.clone())).as_deref(),
                Some(field),
                "{field}: {value}"
            );
        }
    }

    #[test]
    fn a_pending_link_reads_as_expired_from_its_expiry_on_but_a_paid_one_stays_paid()
    -> anyhow::Result<()> {
        let request = NewLink::parse(with("expires_in_minutes", json!(1)))?;
        let mut link = PaymentLink::new("plink_1".into(), "u".into(), request, 1_000);
        assert_eq!(link.expires_at, 1_060);
        assert_eq!(link.as_of(1_059).status, LinkStatus::Pending);
        assert_eq!(link.as_of(1_060).status, LinkStatus::Expired);
        link.status = LinkStatus::Paid;
        assert_eq!(link.as_of(9_999).status, LinkStatus::Paid);
        Ok(())
    }

    #[test]
    fn amounts_display_in_major_units() -> anyhow::Result<()> {
        let request = NewLink::parse(with("amount", json!(1_205)))?;
        let link = PaymentLink::new("plink_1".into(), "u".into(), request, 0);
        assert_eq!(link.display_amount(), "12.05");
        Ok(())
    }
}
