//! `events`: connectors emit events into the durable log.
//!
//! An event is on disk when `emit` returns. Dispatch to rules and subscribers
//! reads the same log.

use super::{CallCapabilities, now_ms};
use crate::model::ConnectorError;
use crate::store::{StoredEvent, blocking};

/// Largest event payload, in bytes.
pub const MAX_DATA_BYTES: usize = 256 << 10;
/// Longest event kind, in bytes.
pub const MAX_KIND_BYTES: usize = 128;

fn invalid(message: String) -> ConnectorError {
    ConnectorError::permanent("event_invalid", message)
}

/// Validates and durably stores one event; returns its id.
pub async fn emit(
    caps: &CallCapabilities,
    kind: String,
    subject: Option<String>,
    data: String,
) -> Result<String, ConnectorError> {
    let kind_ok = !kind.is_empty()
        && kind.len() <= MAX_KIND_BYTES
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !kind_ok {
        return Err(invalid(format!(
            "kind must be 1-{MAX_KIND_BYTES} ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    if data.len() > MAX_DATA_BYTES {
        return Err(invalid(format!(
            "data is {} bytes; the limit is {MAX_DATA_BYTES}",
            data.len()
        )));
    }
    serde_json::from_str::<serde::de::IgnoredAny>(&data)
        .map_err(|err| invalid(format!("data is not JSON: {err}")))?;
    let event = StoredEvent {
        id: uuid::Uuid::new_v4().to_string(),
        connector: caps.grants.name.to_string(),
        tenant: caps.context.tenant.to_string(),
        kind,
        subject,
        time_ms: now_ms(),
        data,
    };
    let log = caps.services.events.clone();
    let id = event.id.clone();
    match blocking(move || log.append_event(&event)).await {
        Ok(_sequence) => Ok(id),
        Err(err) => {
            tracing::error!(error = %err, "event log append failed");
            Err(ConnectorError::transient(
                "event_store_failed",
                "the event log is unavailable",
            ))
        }
    }
}
