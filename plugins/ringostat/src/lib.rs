//! Ringostat call tracking: the webhooks Ringostat sends at five moments of a call
//! (call initiated, each forwarding step, call answered, call completed, rating menu done)
//! become normalized `call.*` events that operators forward to their CRM with
//! subscriptions.
//!
//! The hook `call` trusts a request only when its `key` query parameter is the secret
//! `url_key` (Ringostat's URL secret key); the host's IP allowlist for the hook keeps out
//! everyone but Ringostat's addresses. The `parameters` operation lists which event fields
//! an integration can map, per moment. The connector calls nothing outbound.

mod hook;
mod moment;
mod parameters;
mod payload;

use switchboard_sdk::{
    Connector, Context, Error, Operation, WebhookOutcome, export_connector, http,
};

struct Ringostat;

impl Connector for Ringostat {
    const NAME: &'static str = "ringostat";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Turns Ringostat call-tracking webhooks (call initiated, \
        each forwarding step, answered, completed, rating done), authenticated by the URL \
        secret key, into call.* events, and lists the fields integrations can map.";
    const EMITS: &'static [&'static str] = moment::KINDS;

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "parameters",
                "Lists, per moment, the event fields a subscription can map into an integration.",
                parameters::parameters,
            )
            .idempotent(),
        ]
    }

    fn handle_webhook(
        _ctx: &Context,
        _hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        hook::receive(&request)
    }
}

export_connector!(Ringostat);
