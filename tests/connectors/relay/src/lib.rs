//! Relay: the test connector of the event system.
//!
//! - Webhooks `signed`, `restricted` and `small` take
//!   `{"events": [{"id", "kind", "subject", "data"}]}` signed with
//!   `X-Signature: sha256=<hex HMAC-SHA256 of the raw body>` under the secret
//!   `hook_secret`, and return the events.
//! - Operation `record` keeps its input (rules call it); `records` lists them.
//! - `on-event` receives `order.*` events and keeps them; one whose data has
//!   `"fail": true` fails (retryably) until `"fail_times"` attempts were made,
//!   counted per event id. Operation `seen` lists what arrived.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_sdk::signature::{Algorithm, Encoding, verify_hmac};
use switchboard_sdk::{
    Connector, Context, Error, Event, Operation, WebhookOutcome, config, export_connector, http, kv,
};

struct Relay;

impl Connector for Relay {
    const NAME: &'static str = "relay";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Test connector for events: signed webhooks in, records rule calls, receives order events.";

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new("record", "Keeps its input.", record),
            Operation::new("records", "Everything `record` kept, in order.", records).idempotent(),
            Operation::new("seen", "Every event `on-event` received, in order.", seen).idempotent(),
        ]
    }

    fn handle_webhook(
        _ctx: &Context,
        _hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        let secret = config::require_secret("hook_secret")?;
        let signature = request
            .header_value("x-signature")
            .map(|s| s.strip_prefix("sha256=").unwrap_or(s));
        verify_hmac(
            Algorithm::Sha256,
            Encoding::Hex,
            secret.as_bytes(),
            &request.body,
            signature,
        )?;
        let payload: Payload = serde_json::from_slice(&request.body).map_err(|e| {
            Error::new(
                "payload_invalid",
                format!("the body is not a relay payload: {e}"),
            )
        })?;
        let events: Vec<Event> = payload
            .events
            .into_iter()
            .map(|e| Event {
                id: e.id,
                kind: e.kind,
                subject: e.subject,
                time_ms: 0,
                data: e.data.to_string(),
            })
            .collect();
        let reply = json!({ "ok": true, "received": events.len() });
        Ok(WebhookOutcome {
            response: http::Response::new(200)
                .header("Content-Type", "application/json")
                .body(reply.to_string()),
            events,
        })
    }

    fn on_event(_ctx: &Context, event: Event) -> Result<(), Error> {
        let data: Value = event.data_json()?;
        if data["fail"] == json!(true) {
            let key = format!("attempts:{}", event.id);
            let made = kv::get_json::<u64>(&key)?.unwrap_or(0) + 1;
            kv::set_json(&key, &made, None)?;
            if made <= data["fail_times"].as_u64().unwrap_or(u64::MAX) {
                return Err(Error::retryable(
                    "not_ready",
                    format!("failing attempt {made} on purpose"),
                ));
            }
        }
        append(
            "seen",
            json!({ "id": event.id, "kind": event.kind, "subject": event.subject, "data": data }),
        )
    }
}

#[derive(Deserialize)]
struct Payload {
    events: Vec<IncomingEvent>,
}

#[derive(Deserialize)]
struct IncomingEvent {
    id: String,
    kind: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    data: Value,
}

fn append(key: &str, item: Value) -> Result<(), Error> {
    let mut list: Vec<Value> = kv::get_json(key)?.unwrap_or_default();
    list.push(item);
    kv::set_json(key, &list, None)
}

/// Anything.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
struct Anything(Value);

/// Nothing.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Nothing {}

/// Kept items.
#[derive(Serialize, JsonSchema)]
struct Items {
    /// In the order they came.
    items: Vec<Value>,
}

fn record(_ctx: &Context, input: Anything) -> Result<Items, Error> {
    append("records", input.0)?;
    Ok(Items { items: Vec::new() })
}

fn records(_ctx: &Context, _input: Nothing) -> Result<Items, Error> {
    Ok(Items {
        items: kv::get_json("records")?.unwrap_or_default(),
    })
}

fn seen(_ctx: &Context, _input: Nothing) -> Result<Items, Error> {
    Ok(Items {
        items: kv::get_json("seen")?.unwrap_or_default(),
    })
}

export_connector!(Relay);
