//! Who a call is made for.

/// Who a call is made for and how long it may take; the host fills it from the
/// incoming request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Unique id of the request, also returned to the caller and logged.
    pub request_id: String,
    /// Tenant the call belongs to; [`kv`](crate::kv) data is scoped by it.
    pub tenant: String,
    /// The agent (seat, `cno`) acting, when the caller said.
    pub agent: Option<String>,
    /// The channel the interaction came through (`voice`, `im`, `sms`, ...).
    pub channel: Option<String>,
    /// The customer concerned (a phone number, a customer id), when known.
    pub customer: Option<String>,
    /// Milliseconds left before the host abandons the call.
    pub deadline_ms: u64,
}
