//! Clink (天润融通) outbound calls: an agent clicks a customer's number, Clink rings the
//! agent, then the customer, and connects them.
//!
//! `preview-outcall` follows Clink's advice for calling its `PreviewOutcall` API: debounce
//! clicks (5 s), check the agent is idle or wrapping up, and allow an agent one call at a
//! time until Clink's call-end push says it ended, with a timeout in case the push is lost.
//! It emits `call.outbound_started`. `agent-state` reports an agent's state, and
//! `release-agent` forgets a call whose push never came. The `call-end` hook takes the
//! push, authenticated by a token in its URL, and emits `call.ended`.

mod clink;
mod marks;
mod outcall;
mod push;
mod settings;

use switchboard_sdk::{
    Connector, Context, Error, Operation, WebhookOutcome, export_connector, http,
};

/// The one hook: Clink's call-end push.
const CALL_END_HOOK: &str = "call-end";

struct ClinkOutcall;

impl Connector for ClinkOutcall {
    const NAME: &'static str = "clink-outcall";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Places Clink (天润融通) outbound calls for agents with \
        PreviewOutcall, guarded as Clink recommends (click debounce, agent-state check, one call \
        per agent until the call-end push or a timeout), reports agents' states, and turns \
        Clink's call-end push into call.ended.";
    const EMITS: &'static [&'static str] = &[outcall::OUTBOUND_STARTED, push::ENDED];

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "preview-outcall",
                "Calls the agent, then the customer, through Clink's PreviewOutcall, unless \
                 the agent clicked moments ago, is still in a call, or is not idle or wrapup.",
                outcall::preview_outcall,
            ),
            Operation::new(
                "agent-state",
                "Returns the agent's state at Clink and whether the connector holds an \
                 unfinished call of theirs.",
                outcall::agent_state,
            )
            .idempotent(),
            Operation::new(
                "release-agent",
                "Forgets the agent's unfinished call, for when Clink's call-end push was lost.",
                outcall::release_agent,
            )
            .idempotent(),
        ]
    }

    fn handle_webhook(
        _ctx: &Context,
        hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        if hook != CALL_END_HOOK {
            return Err(Error::new(
                "webhook_not_supported",
                format!("clink-outcall takes only the `{CALL_END_HOOK}` hook, not `{hook}`"),
            ));
        }
        push::call_end(&request)
    }
}

export_connector!(ClinkOutcall);
