//! `events`: connectors emit events into the durable log.
//!
//! An event is on disk when `emit` returns; the dispatcher hands it to rules,
//! subscriptions and other connectors from there.

use super::CallCapabilities;
use crate::events::{EventsError, HOST_KINDS, check_event};
use crate::model::{ConnectorError, Event};

/// Validates and durably stores one event; returns its id.
pub async fn emit(
    caps: &CallCapabilities,
    kind: String,
    subject: Option<String>,
    data: String,
) -> Result<String, ConnectorError> {
    let event = Event {
        id: uuid::Uuid::new_v4().to_string(),
        kind,
        subject,
        time_ms: super::now_ms(),
        data,
    };
    check_event(&event).map_err(|err| ConnectorError::permanent("event_invalid", err))?;
    if event.kind.starts_with(HOST_KINDS) {
        return Err(ConnectorError::permanent(
            "event_invalid",
            format!("kinds starting with `{HOST_KINDS}` are the host's own"),
        ));
    }
    let id = event.id.clone();
    let stored = crate::store::StoredEvent {
        id: event.id,
        connector: caps.grants.name.to_string(),
        tenant: caps.context.tenant.to_string(),
        kind: event.kind,
        subject: event.subject,
        time_ms: event.time_ms,
        data: event.data,
    };
    match caps.services.events.ingest(vec![stored]).await {
        Ok(_) => Ok(id),
        Err(err) => {
            tracing::error!(error = %EventsError::from(err), "event log append failed");
            Err(ConnectorError::transient(
                "event_store_failed",
                "the event log is unavailable",
            ))
        }
    }
}
