//! Status-change webhooks, sent as Zendesk sends them: JSON
//! `{"id","type":"ticket.status_changed","time","detail":{ticket…, "previous_status"}}` with
//! `X-Zendesk-Webhook-Signature: base64(HMAC-SHA256(secret, timestamp + body))` and
//! `X-Zendesk-Webhook-Signature-Timestamp: <timestamp>` (RFC 3339).
//!
//! Webhooks leave in the order the changes happened, one at a time, from a background task:
//! the API reply never waits for the receiver and no lock is held while sending.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::ticket::{Choice, Status, Ticket};
use crate::clock;
use crate::webhook::{self, WebhookConfig, WebhookTarget};

/// The event type of a status change.
pub(crate) const STATUS_CHANGED: &str = "ticket.status_changed";
/// The header carrying the signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-zendesk-webhook-signature";
/// The header carrying the signed timestamp.
pub(crate) const TIMESTAMP_HEADER: &str = "x-zendesk-webhook-signature-timestamp";

/// One webhook waiting to leave.
#[derive(Debug)]
struct Outgoing {
    url: String,
    secret: Option<String>,
    body: String,
}

/// Sends the provider's webhooks to its [`WebhookTarget`], in order.
#[derive(Debug)]
pub(crate) struct Notifier {
    target: Arc<WebhookTarget>,
    /// The queue to the sending task, started with the first webhook (inside the runtime).
    queue: OnceLock<mpsc::UnboundedSender<Outgoing>>,
}

impl Notifier {
    /// A notifier sending to `target`.
    pub(crate) fn new(target: Arc<WebhookTarget>) -> Self {
        Self {
            target,
            queue: OnceLock::new(),
        }
    }

    /// Queues `ticket.status_changed` for `ticket`, which was `previous` until `time`, if a
    /// webhook URL is set.
    pub(crate) fn status_changed(&self, ticket: &Ticket, previous: Status, time: &str) {
        let WebhookConfig {
            url: Some(url),
            secret,
        } = self.target.config()
        else {
            return;
        };
        let body = status_changed_body(ticket, previous, time).to_string();
        let queue = self
            .queue
            .get_or_init(|| spawn_sender(Arc::clone(&self.target)));
        if queue.send(Outgoing { url, secret, body }).is_err() {
            tracing::warn!("the tickets webhook sender has stopped; a status change is not sent");
        }
    }
}

/// The webhook body for a status change.
fn status_changed_body(ticket: &Ticket, previous: Status, time: &str) -> Value {
    let mut detail = serde_json::to_value(ticket).unwrap_or_else(|_| json!({"id": ticket.id}));
    detail["previous_status"] = json!(previous.as_str());
    json!({
        "id": event_id(),
        "type": STATUS_CHANGED,
        "time": time,
        "detail": detail,
    })
}

/// A random id shaped like a UUID (version 4), as Zendesk's event ids are.
fn event_id() -> String {
    let bits = rand::random::<u128>();
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// `base64(HMAC-SHA256(secret, timestamp + body))`.
pub(crate) fn signature(secret: &str, timestamp: &str, body: &str) -> String {
    let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch is never taken.
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(body.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Starts the task that sends queued webhooks one after the other; it ends when the
/// provider (the queue's sender) is dropped.
fn spawn_sender(target: Arc<WebhookTarget>) -> mpsc::UnboundedSender<Outgoing> {
    let (queue, mut outgoing) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        while let Some(Outgoing { url, secret, body }) = outgoing.recv().await {
            let mut request = webhook::client()
                .post(&url)
                .header("content-type", "application/json");
            if let Some(secret) = secret {
                let timestamp = clock::now_rfc3339();
                request = request
                    .header(SIGNATURE_HEADER, signature(&secret, &timestamp, &body))
                    .header(TIMESTAMP_HEADER, timestamp);
            }
            target.send(&url, request.body(body)).await;
        }
    });
    queue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_look_like_version_4_uuids() {
        let id = event_id();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12], "{id}");
        assert_eq!(id.chars().nth(14), Some('4'), "{id}");
        assert_ne!(event_id(), id);
    }

    #[test]
    fn the_signature_is_base64_hmac_sha256_of_timestamp_then_body() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog") split in two.
        assert_eq!(
            signature("key", "The quick brown fox ", "jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }
}
