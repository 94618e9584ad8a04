//! The `status` webhook: the ticket system's `ticket.status_changed` event, verified by its
//! Zendesk-style signature and turned into the connector's `ticket.status_changed` event.
//!
//! The provider signs `timestamp + body` (no separator) with HMAC-SHA256 under the
//! `webhook_secret` and sends `X-Zendesk-Webhook-Signature: <base64 digest>` and
//! `X-Zendesk-Webhook-Signature-Timestamp: <timestamp>` (RFC 3339 or Unix seconds). A
//! timestamp further than `signature_tolerance_s` from now is refused as a replay.

use serde_json::Value;
use switchboard_sdk::{
    Deserialize, Error, Event, Serialize, WebhookOutcome, config, http, signature,
};

use crate::model::{Requester, TicketId};
use crate::time;

/// The event kind a status change becomes.
pub(crate) const STATUS_CHANGED: &str = "ticket.status_changed";
/// The provider's event types for a status change: the sandbox's, and Zendesk's own.
const PROVIDER_STATUS_CHANGED: [&str; 2] = [
    "ticket.status_changed",
    "zen:event-type:ticket.status_changed",
];
/// The signature header.
const SIGNATURE_HEADER: &str = "x-zendesk-webhook-signature";
/// The signed-timestamp header.
const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";
/// How old a signature may be unless `signature_tolerance_s` says otherwise.
const DEFAULT_TOLERANCE_S: u64 = 300;

/// The provider's event envelope.
#[derive(Deserialize)]
struct ProviderEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    detail: Value,
}

/// The ticket in a status-change event.
#[derive(Deserialize)]
struct ChangedTicket {
    id: TicketId,
    status: String,
    #[serde(default)]
    previous_status: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    requester: Option<Requester>,
}

/// The data of a `ticket.status_changed` event.
#[derive(Serialize)]
struct StatusChange {
    ticket_id: String,
    status: String,
    previous_status: Option<String>,
    external_id: Option<String>,
    subject: Option<String>,
    requester: Option<Requester>,
    time: String,
}

/// Verifies and reads a request to the `status` hook.
pub(crate) fn status_webhook(request: &http::Request) -> Result<WebhookOutcome, Error> {
    let signed_at_ms = verify(request)?;
    let event: ProviderEvent = serde_json::from_slice(&request.body).map_err(|e| {
        Error::new(
            "payload_invalid",
            format!("the body is not a ticket event: {e}"),
        )
    })?;
    let response = http::Response::new(200)
        .header("content-type", "application/json")
        .body(br#"{"received":true}"#.to_vec());
    if !PROVIDER_STATUS_CHANGED.contains(&event.kind.as_str()) {
        return Ok(WebhookOutcome {
            response,
            events: Vec::new(),
        });
    }
    let ticket: ChangedTicket = serde_json::from_value(event.detail).map_err(|e| {
        Error::new(
            "payload_invalid",
            format!("event {} does not describe a ticket: {e}", event.id),
        )
    })?;
    let time_ms = event
        .time
        .as_deref()
        .and_then(time::parse_ms)
        .unwrap_or(signed_at_ms);
    let change = StatusChange {
        ticket_id: ticket.id.to_string(),
        status: ticket.status.to_ascii_lowercase(),
        previous_status: ticket.previous_status.map(|s| s.to_ascii_lowercase()),
        external_id: ticket.external_id,
        subject: ticket.subject,
        requester: ticket.requester,
        time: event.time.unwrap_or_default(),
    };
    let data = serde_json::to_string(&change)
        .map_err(|e| Error::new("payload_invalid", format!("cannot encode the change: {e}")))?;
    Ok(WebhookOutcome {
        response,
        events: vec![Event {
            id: format!("tickets:{}", event.id),
            kind: STATUS_CHANGED.to_owned(),
            subject: Some(change.ticket_id),
            time_ms,
            data,
        }],
    })
}

/// Checks the signature over the raw body and the timestamp's age; returns when it was
/// signed, in milliseconds.
fn verify(request: &http::Request) -> Result<u64, Error> {
    let secret = config::require_secret("webhook_secret")?;
    let timestamp = request.header_value(TIMESTAMP_HEADER).unwrap_or_default();
    let mut message = timestamp.as_bytes().to_vec();
    message.extend_from_slice(&request.body);
    let given = request
        .header_value(SIGNATURE_HEADER)
        .filter(|_| !timestamp.trim().is_empty());
    signature::verify_hmac(
        signature::Algorithm::Sha256,
        signature::Encoding::Base64,
        secret.as_bytes(),
        &message,
        given,
    )?;
    let signed_at_ms = time::parse_ms(timestamp).ok_or_else(|| {
        Error::new(
            "signature_invalid",
            format!("the signature timestamp `{timestamp}` is neither RFC 3339 nor Unix seconds"),
        )
    })?;
    let tolerance_s = tolerance_s()?;
    let age_s = time::now_ms().abs_diff(signed_at_ms) / 1000;
    if age_s > tolerance_s {
        return Err(Error::new(
            "signature_expired",
            format!(
                "the signature timestamp is {age_s} s away from now; at most {tolerance_s} s are accepted"
            ),
        ));
    }
    Ok(signed_at_ms)
}

/// The `signature_tolerance_s` config key, 300 when unset.
fn tolerance_s() -> Result<u64, Error> {
    match config::get("signature_tolerance_s").filter(|text| !text.trim().is_empty()) {
        None => Ok(DEFAULT_TOLERANCE_S),
        Some(text) => text.trim().parse().map_err(|_| {
            Error::new(
                "config_invalid",
                format!("config key `signature_tolerance_s` must be a whole number of seconds, not `{text}`"),
            )
        }),
    }
}
