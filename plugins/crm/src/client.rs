//! The CRM's REST API as this connector calls it: find a customer by phone, their latest
//! orders and their open tickets, each provider failure turned into a documented error.

use switchboard_sdk::{Deserialize, Error, JsonSchema, Serialize, config, http};

/// How many orders the view shows unless `recent_orders` says otherwise.
const DEFAULT_RECENT_ORDERS: u32 = 5;
/// The most orders the CRM returns at once.
const MAX_RECENT_ORDERS: u32 = 50;

/// A customer's profile.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Customer {
    /// The CRM's id of the customer, such as `cus_1001`.
    pub(crate) id: String,
    /// Full name as the CRM files it.
    pub(crate) name: String,
    /// E.164, such as `+8613800138000`.
    pub(crate) phone: String,
    /// E-mail address, if the CRM has one.
    pub(crate) email: Option<String>,
    /// `vip` or `regular`.
    pub(crate) tier: String,
    /// Labels such as `vip` or `repeat-buyer`.
    pub(crate) tags: Vec<String>,
}

/// One line of an order.
#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct Item {
    /// Stock-keeping unit.
    sku: String,
    /// Product name.
    name: String,
    /// Quantity.
    qty: u32,
}

/// One of the customer's orders.
#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct Order {
    /// The order id, such as `ORD-1001`.
    id: String,
    /// `pending`, `paid`, `shipped`, `delivered`, `cancelled` or `refunded`.
    status: String,
    /// Decimal amount in major units, such as `"299.00"`.
    total: String,
    /// ISO 4217 currency of `total`.
    currency: String,
    /// When the order was placed, Unix seconds.
    created_at: u64,
    /// What was ordered.
    items: Vec<Item>,
}

/// One of the customer's support tickets.
#[derive(Serialize, Deserialize, JsonSchema)]
pub(crate) struct Ticket {
    /// The ticket id, such as `TCK-5001`.
    id: String,
    /// What the ticket is about.
    subject: String,
    /// `open` or `closed`.
    status: String,
    /// When the ticket last changed, Unix seconds.
    updated_at: u64,
}

/// The CRM's list envelope.
#[derive(Deserialize)]
struct List<T> {
    data: Vec<T>,
}

/// The CRM's error body: `{"error": {"type", "message", "param"?}}`.
#[derive(Deserialize)]
struct ProviderError {
    error: ProviderErrorDetail,
}

#[derive(Deserialize)]
struct ProviderErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    param: Option<String>,
}

/// The configured CRM.
pub(crate) struct Crm {
    base_url: String,
    api_key: String,
    recent_orders: u32,
}

impl Crm {
    /// The CRM named by `base_url`, `recent_orders` and the secret `api_key`.
    pub(crate) fn from_config() -> Result<Self, Error> {
        Ok(Self {
            base_url: config::require("base_url")?
                .trim_end_matches('/')
                .to_owned(),
            api_key: config::require_secret("api_key")?,
            recent_orders: recent_orders()?,
        })
    }

    /// The first customer filed under `phone` (E.164), if any.
    pub(crate) fn find_by_phone(&self, phone: &str) -> Result<Option<Customer>, Error> {
        let path = format!("/v1/customers?phone={}", http::path_segment(phone)?);
        let found: List<Customer> = self.get(&path, None)?;
        Ok(found.data.into_iter().next())
    }

    /// The customer's latest orders, newest first, as many as `recent_orders`.
    pub(crate) fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, Error> {
        let path = format!(
            "/v1/customers/{}/orders?limit={}",
            http::path_segment(customer_id)?,
            self.recent_orders
        );
        Ok(self.get::<List<Order>>(&path, Some(customer_id))?.data)
    }

    /// The customer's open tickets, last updated first.
    pub(crate) fn open_tickets(&self, customer_id: &str) -> Result<Vec<Ticket>, Error> {
        let path = format!(
            "/v1/customers/{}/tickets?status=open",
            http::path_segment(customer_id)?
        );
        Ok(self.get::<List<Ticket>>(&path, Some(customer_id))?.data)
    }

    /// `GET <base_url><path>` parsed as `T`; `customer_id` names the customer a 404 means.
    fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        customer_id: Option<&str>,
    ) -> Result<T, Error> {
        let response = http::get(format!("{}{path}", self.base_url))
            .bearer(&self.api_key)
            .send()?;
        if response.is_success() {
            return response.json();
        }
        Err(failure(&response, customer_id))
    }
}

/// The provider's failure as a connector error.
fn failure(response: &http::Response, customer_id: Option<&str>) -> Error {
    let detail = response.json::<ProviderError>().ok().map(|body| body.error);
    match (response.status, customer_id, detail) {
        (401 | 403, _, _) => Error::new(
            "authentication_failed",
            format!(
                "the CRM refused the API key (secret `api_key`) with HTTP {}",
                response.status
            ),
        ),
        (404, Some(id), _) => Error::new(
            "customer_not_found",
            format!("the CRM no longer has customer `{id}`"),
        ),
        (400, _, Some(detail)) if detail.param.as_deref() == Some("phone") => Error::invalid_input(
            format!("the CRM refused the phone number: {}", detail.message),
        ),
        (status, _, _) => Error::upstream_status(status, &response.body),
    }
}

/// The `recent_orders` setting: 1 to 50, [`DEFAULT_RECENT_ORDERS`] when unset.
fn recent_orders() -> Result<u32, Error> {
    let Some(value) = config::get("recent_orders").filter(|value| !value.trim().is_empty()) else {
        return Ok(DEFAULT_RECENT_ORDERS);
    };
    value
        .trim()
        .parse()
        .ok()
        .filter(|count| (1..=MAX_RECENT_ORDERS).contains(count))
        .ok_or_else(|| {
            Error::new(
                "config_invalid",
                format!(
                    "configuration key `recent_orders` must be an integer from 1 to \
                     {MAX_RECENT_ORDERS}, not `{value}`"
                ),
            )
        })
}
