//! Ticketing: turns IM conversations into tickets in a Zendesk-style ticket system and keeps
//! both sides in step.
//!
//! `create-ticket` maps a message and its conversation to a ticket (subject, description
//! with the conversation and media URLs, requester, priority, tags, custom fields) and never
//! creates the same external id twice; `get-ticket`, `update-ticket` and `add-comment` read
//! and change it. The provider's signed status-change webhook (hook `status`) becomes
//! `ticket.status_changed`, so the IM side learns when an agent picks up or solves a ticket.

mod api;
mod create;
mod fields;
mod hook;
mod model;
mod render;
mod tickets;
mod time;

use switchboard_sdk::{
    Connector, Context, Error, Operation, WebhookOutcome, export_connector, http,
};

/// The connector.
struct Ticketing;

impl Connector for Ticketing {
    const NAME: &'static str = "ticketing";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Opens tickets from IM conversations in a Zendesk-style \
        ticket system (once per external id), reads and updates them, and turns the system's \
        signed status-change webhooks into ticket.status_changed.";
    const EMITS: &'static [&'static str] = &[create::TICKET_CREATED, hook::STATUS_CHANGED];

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "create-ticket",
                "Opens a ticket from a message and its conversation; the same external id \
                 always gets the same ticket.",
                create::create_ticket,
            )
            .idempotent(),
            Operation::new(
                "get-ticket",
                "Returns a ticket with its comments.",
                tickets::get_ticket,
            )
            .idempotent(),
            Operation::new(
                "update-ticket",
                "Changes a ticket's status, priority or tags, with an optional agent comment.",
                tickets::update_ticket,
            ),
            Operation::new(
                "add-comment",
                "Adds an agent's comment or a customer's follow-up message to a ticket.",
                tickets::add_comment,
            ),
        ]
    }

    fn handle_webhook(
        _ctx: &Context,
        hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        match hook {
            "status" => hook::status_webhook(&request),
            other => Err(Error::new(
                "hook_unknown",
                format!("connector `ticketing` takes webhooks on hook `status`, not `{other}`"),
            )),
        }
    }
}

export_connector!(Ticketing);
