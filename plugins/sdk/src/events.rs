//! Events: emitting them into the host's durable event log, and the event type
//! webhooks produce and [`Connector::on_event`](crate::Connector::on_event) receives.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::host;

/// A normalized event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id; for provider events, the provider's own id (used to drop duplicates).
    pub id: String,
    /// Dotted kind such as `call.answered` or `ticket.updated`.
    pub kind: String,
    /// What the event is about (a call id, a ticket id); events of one subject keep their order.
    pub subject: Option<String>,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The event's payload as a JSON document.
    pub data: String,
}

impl Event {
    /// The payload parsed as `T`; fails with `event_invalid` when it does not fit.
    pub fn data_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_str(&self.data).map_err(|e| {
            Error::new(
                "event_invalid",
                format!("data of `{}` event `{}`: {e}", self.kind, self.id),
            )
        })
    }
}

/// Stores an event of `kind` about `subject` with `data` as its JSON payload and
/// returns its id. The event is on disk when this returns.
///
/// `kind` should be one the connector lists in [`Connector::EMITS`](crate::Connector::EMITS).
pub fn emit<T: Serialize + ?Sized>(
    kind: &str,
    subject: Option<&str>,
    data: &T,
) -> Result<String, Error> {
    let data = serde_json::to_string(data).map_err(|e| {
        Error::new(
            "event_invalid",
            format!("data of `{kind}` cannot be written as JSON: {e}"),
        )
    })?;
    host::events_emit(kind, subject, &data)
}
