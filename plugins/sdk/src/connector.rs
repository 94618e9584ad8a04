//! The trait a connector implements and what a webhook handler returns.

use crate::{Context, Error, Event, Operation, http};

/// A connector: its identity, its operations and, optionally, how it handles
/// webhooks and events. Export it with [`export_connector!`](crate::export_connector).
///
/// Every call runs in a fresh instance, so there is no state to keep between
/// calls except what [`kv`](crate::kv) stores.
pub trait Connector {
    /// The connector's name, equal to the manifest's `name`.
    const NAME: &'static str;
    /// The connector's semantic version, equal to the manifest's `version`;
    /// `env!("CARGO_PKG_VERSION")` keeps it in step with `Cargo.toml`.
    const VERSION: &'static str;
    /// One paragraph for operators.
    const DESCRIPTION: &'static str;
    /// The event kinds this connector may emit, such as `payment.link_created`.
    const EMITS: &'static [&'static str] = &[];

    /// The operations callers may invoke.
    fn operations() -> Vec<Operation>;

    /// Handles a request a provider sent to this connector's webhook `hook`:
    /// verify its signature over the raw body, reply, and return the normalized
    /// events it carried. The host stores them before the provider gets the reply.
    ///
    /// By default connectors take no webhooks (`webhook_not_supported`).
    fn handle_webhook(
        _ctx: &Context,
        hook: &str,
        _request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        Err(Error::new(
            "webhook_not_supported",
            format!(
                "connector `{}` takes no webhooks (hook `{hook}`)",
                Self::NAME
            ),
        ))
    }

    /// Receives an event the connector subscribed to. By default it is ignored.
    fn on_event(_ctx: &Context, _event: Event) -> Result<(), Error> {
        Ok(())
    }
}

/// What a connector returns for a webhook it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookOutcome {
    /// The reply the provider receives once the events are stored.
    pub response: http::Response,
    /// The normalized events the webhook carried, possibly none.
    pub events: Vec<Event>,
}
