//! Payment links: let an agent send the customer a link to pay for an order.
//!
//! `create-link` asks the payment provider for a link (idempotent per order id),
//! remembers which link belongs to the order and emits `payment.link_created`;
//! `get-status` tells the agent whether the customer has paid. The event is
//! emitted each time `create-link` succeeds, so a retried create emits it again:
//! subscribers get it at least once per order, keyed by the order id (its subject).
//! The provider's `payment_link.paid` webhook, verified by its Stripe-style
//! signature, becomes `payment.paid`.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde_json::Value;
use switchboard_sdk::{
    Connector, Context, Deserialize, Error, Event, JsonSchema, Operation, Serialize,
    WebhookOutcome, config, events, export_connector, http, kv, signature,
};

/// The event emitted for every link `create-link` returns.
const LINK_CREATED: &str = "payment.link_created";
/// The event a paid link's webhook becomes.
const PAID: &str = "payment.paid";
/// The metadata keys the connector keeps on a link.
const REFERENCE: &str = "reference";
const CUSTOMER_PHONE: &str = "customer_phone";

struct PaymentLink;

impl Connector for PaymentLink {
    const NAME: &'static str = "payment-link";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Creates payment links for orders with the payment \
        provider, reports whether they have been paid, and turns the provider's paid webhook \
        into payment.paid.";
    const EMITS: &'static [&'static str] = &[LINK_CREATED, PAID];

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "create-link",
                "Creates the payment link of an order; the same order always gets the same link.",
                create_link,
            )
            .idempotent(),
            Operation::new(
                "get-status",
                "Returns the payment link of an order and whether it has been paid.",
                get_status,
            )
            .idempotent(),
        ]
    }

    fn handle_webhook(
        _ctx: &Context,
        _hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        paid_webhook(&request)
    }
}

export_connector!(PaymentLink);

/// An ISO 4217 currency the provider accepts: Chinese yuan, US dollar, euro or
/// Russian rouble.
#[derive(Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
enum Currency {
    // No doc comments on the variants: with them the schema becomes a `oneOf`
    // instead of a plain `enum`.
    Cny,
    Usd,
    Eur,
    Rub,
}

/// What an order id may look like.
const ORDER_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

/// The order to create a payment link for.
#[derive(Deserialize, JsonSchema)]
struct CreateLinkInput {
    /// The order being paid; a second request for the same order returns the same link.
    /// Letters, digits, `-` and `_`: it also travels as the `Idempotency-Key` header.
    #[schemars(pattern(ORDER_ID_PATTERN))]
    order_id: String,
    /// Amount to pay in minor units (fen, cents, kopecks).
    amount: NonZeroU64,
    /// Currency of `amount`.
    currency: Currency,
    /// Shown to the customer on the payment page.
    #[serde(default)]
    description: Option<String>,
    /// What the payment is for on the merchant's side, such as a ticket id; comes back
    /// in `payment.paid`. At most 500 characters.
    #[serde(default)]
    #[schemars(length(max = 500))]
    reference: Option<String>,
    /// The customer's phone, to text the link to; comes back in the events.
    #[serde(default)]
    #[schemars(length(max = 32))]
    customer_phone: Option<String>,
}

/// The provider's create request.
#[derive(Serialize)]
struct ProviderCreate<'a> {
    order_id: &'a str,
    amount: NonZeroU64,
    currency: Currency,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    metadata: BTreeMap<&'static str, &'a str>,
}

impl<'a> From<&'a CreateLinkInput> for ProviderCreate<'a> {
    fn from(input: &'a CreateLinkInput) -> Self {
        let metadata = [
            (REFERENCE, input.reference.as_deref()),
            (CUSTOMER_PHONE, input.customer_phone.as_deref()),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?)))
        .collect();
        Self {
            order_id: &input.order_id,
            amount: input.amount,
            currency: input.currency,
            description: input.description.as_deref(),
            metadata,
        }
    }
}

/// The order whose payment link to look up.
#[derive(Deserialize, JsonSchema)]
struct GetStatusInput {
    /// The order the link was created for.
    #[schemars(pattern(ORDER_ID_PATTERN))]
    order_id: String,
}

/// An order's payment link.
#[derive(Serialize, JsonSchema)]
struct Link {
    /// The provider's id of the link.
    link_id: String,
    /// Where the customer pays.
    url: String,
    /// The order the link is for.
    order_id: String,
    /// Amount in minor units.
    amount: u64,
    /// Currency of `amount`.
    currency: Currency,
    /// The link's state as the provider reports it, such as `pending` or `paid`.
    status: String,
    /// When the link stops accepting payment, as the provider reports it.
    expires_at: String,
    /// The merchant's reference given at creation, such as a ticket id.
    #[serde(skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    /// The customer's phone given at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_phone: Option<String>,
}

/// A link as the provider returns it.
#[derive(Deserialize)]
struct ProviderLink {
    id: String,
    url: String,
    order_id: String,
    amount: u64,
    currency: Currency,
    status: String,
    expires_at: Value,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl From<ProviderLink> for Link {
    fn from(mut link: ProviderLink) -> Self {
        Self {
            reference: link.metadata.remove(REFERENCE),
            customer_phone: link.metadata.remove(CUSTOMER_PHONE),
            link_id: link.id,
            url: link.url,
            order_id: link.order_id,
            amount: link.amount,
            currency: link.currency,
            status: link.status,
            expires_at: match link.expires_at {
                Value::String(text) => text,
                other => other.to_string(),
            },
        }
    }
}

/// The provider's error body: `{"error": {"type": ..., "message": ..., "param": ...}}`.
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

fn create_link(_ctx: &Context, input: CreateLinkInput) -> Result<Link, Error> {
    let order_id = not_blank("order_id", &input.order_id)?;
    let response = http::post(format!("{}/v1/payment_links", base_url()?))
        .bearer(&config::require_secret("api_key")?)
        .header("Idempotency-Key", order_id)
        .json(&ProviderCreate::from(&input))?
        .send()?;
    let link = read_link(&response, order_id)?;
    kv::set_json(&order_key(order_id), &link.link_id, None)?;
    events::emit(LINK_CREATED, Some(order_id), &link)?;
    Ok(link)
}

fn get_status(_ctx: &Context, input: GetStatusInput) -> Result<Link, Error> {
    let order_id = not_blank("order_id", &input.order_id)?;
    let link_id: String =
        kv::get_json(&order_key(order_id))?.ok_or_else(|| link_not_found(order_id))?;
    let url = format!(
        "{}/v1/payment_links/{}",
        base_url()?,
        http::path_segment(&link_id)?
    );
    let response = http::get(url)
        .bearer(&config::require_secret("api_key")?)
        .send()?;
    if response.status == 404 {
        return Err(link_not_found(order_id));
    }
    read_link(&response, order_id)
}

/// The link in a successful response, or the provider's failure as an error.
fn read_link(response: &http::Response, order_id: &str) -> Result<Link, Error> {
    if response.is_success() {
        return Ok(response.json::<ProviderLink>()?.into());
    }
    let detail = response.json::<ProviderError>().ok().map(|body| body.error);
    Err(match (response.status, detail) {
        (400, Some(detail)) => Error::new("invalid_request", invalid_request_message(detail)),
        (409, _) => Error::new(
            "order_conflict",
            format!("order `{order_id}` already has a payment link with other details"),
        ),
        (status, _) => Error::upstream_status(status, &response.body),
    })
}

fn invalid_request_message(detail: ProviderErrorDetail) -> String {
    match detail.param {
        Some(param) => format!("{} (parameter `{param}`)", detail.message),
        None => detail.message,
    }
}

fn link_not_found(order_id: &str) -> Error {
    Error::new(
        "link_not_found",
        format!("no payment link was created for order `{order_id}`"),
    )
}

fn order_key(order_id: &str) -> String {
    format!("order:{order_id}")
}

fn base_url() -> Result<String, Error> {
    Ok(config::require("base_url")?
        .trim_end_matches('/')
        .to_owned())
}

/// `value` unchanged, or `invalid_input` if it is empty or only whitespace.
fn not_blank<'a>(field: &str, value: &'a str) -> Result<&'a str, Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!("`{field}` must not be blank")));
    }
    Ok(value)
}

/// How old a webhook's signed timestamp may be, against replays.
const SIGNATURE_TOLERANCE_S: u64 = 300;

/// The provider's webhook: `{"id","type","created","data":{"object": link}}`, signed with
/// `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the
/// secret `webhook_secret`. `payment_link.paid` becomes `payment.paid`; other types are
/// acknowledged and dropped.
fn paid_webhook(request: &http::Request) -> Result<WebhookOutcome, Error> {
    let secret = config::require_secret("webhook_secret")?;
    let header = request.header_value("stripe-signature");
    let (timestamp, given) = header.map(parse_signature_header).unwrap_or_default();
    let signed = format!("{timestamp}.");
    let mut message = signed.into_bytes();
    message.extend_from_slice(&request.body);
    signature::verify_hmac(
        signature::Algorithm::Sha256,
        signature::Encoding::Hex,
        secret.as_bytes(),
        &message,
        header.and(given),
    )?;
    let age = now_s().abs_diff(timestamp.parse().unwrap_or(0));
    if age > SIGNATURE_TOLERANCE_S {
        return Err(Error::new(
            "signature_expired",
            format!("the signature is {age} s old; at most {SIGNATURE_TOLERANCE_S} s are accepted"),
        ));
    }
    let webhook: ProviderWebhook = serde_json::from_slice(&request.body).map_err(|e| {
        Error::new(
            "payload_invalid",
            format!("the body is not a payment event: {e}"),
        )
    })?;
    let response = http::Response::new(200)
        .header("content-type", "application/json")
        .body(br#"{"received":true}"#.to_vec());
    if webhook.kind != "payment_link.paid" {
        return Ok(WebhookOutcome {
            response,
            events: Vec::new(),
        });
    }
    let link = Link::from(webhook.data.object);
    let data = serde_json::to_string(&link)
        .map_err(|e| Error::new("payload_invalid", format!("cannot encode the link: {e}")))?;
    let event = Event {
        id: format!("payment:{}", webhook.id),
        kind: PAID.to_owned(),
        subject: Some(link.order_id.clone()),
        time_ms: webhook.created.saturating_mul(1000),
        data,
    };
    Ok(WebhookOutcome {
        response,
        events: vec![event],
    })
}

/// `t` and `v1` of a `Stripe-Signature` header.
fn parse_signature_header(header: &str) -> (&str, Option<&str>) {
    let mut timestamp = "";
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value,
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    (timestamp, v1)
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The provider's webhook envelope.
#[derive(Deserialize)]
struct ProviderWebhook {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: u64,
    data: ProviderWebhookData,
}

#[derive(Deserialize)]
struct ProviderWebhookData {
    object: ProviderLink,
}
