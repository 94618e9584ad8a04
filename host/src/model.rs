//! The host's own types for what crosses the connector boundary.
//!
//! Generated WIT bindings are converted to and from these at the edge
//! (`runtime::bindings`), so nothing else depends on generated code.

use serde::Serialize;

use crate::names::TenantId;

/// Who a call is made for; filled from the incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// Unique id of the request.
    pub request_id: String,
    /// Tenant the call belongs to.
    pub tenant: TenantId,
    /// The agent acting, if known.
    pub agent: Option<String>,
    /// The channel of the interaction, if known.
    pub channel: Option<String>,
    /// The customer concerned, if known.
    pub customer: Option<String>,
}

/// A failure reported by a connector or by a host capability to a connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ConnectorError {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation without secrets.
    pub message: String,
    /// Whether trying again later may succeed.
    pub retryable: bool,
}

impl ConnectorError {
    /// A permanent failure.
    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A transient failure worth retrying.
    pub fn transient(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retryable: true,
        }
    }
}

/// One operation a connector offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationInfo {
    /// Operation name.
    pub name: String,
    /// One-sentence description.
    pub description: String,
    /// JSON Schema of the input, as text.
    pub input_schema: String,
    /// JSON Schema of the output, as text.
    pub output_schema: String,
    /// Whether repeating a call has the effect of one.
    pub idempotent: bool,
}

/// What a connector's `describe` export returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorInfo {
    /// Name, equal to the manifest's.
    pub name: String,
    /// Version, equal to the manifest's.
    pub version: String,
    /// Description for operators.
    pub description: String,
    /// Operations offered.
    pub operations: Vec<OperationInfo>,
    /// Event kinds emitted.
    pub emits: Vec<String>,
}

/// An HTTP request made by a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Upper-case method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

/// An HTTP response to a connector's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

/// A normalized event crossing the connector boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique id; for provider events, the provider's own.
    pub id: String,
    /// Dotted kind.
    pub kind: String,
    /// What it is about, if anything.
    pub subject: Option<String>,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The JSON payload, as text.
    pub data: String,
}

/// What a connector returned for a webhook it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// The reply for the provider.
    pub response: HttpResponse,
    /// The events the webhook carried.
    pub events: Vec<Event>,
}
