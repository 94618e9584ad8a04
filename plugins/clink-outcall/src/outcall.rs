//! The operations: place a call the way Clink recommends, report an agent's state, and
//! release an agent whose call-end push was lost.

use switchboard_sdk::{Context, Deserialize, Error, JsonSchema, Serialize, events};

use crate::clink::{Clink, Outcall};
use crate::marks::{self, CallMark};
use crate::settings::Settings;

/// The event emitted for every call Clink accepts.
pub(crate) const OUTBOUND_STARTED: &str = "call.outbound_started";

/// What an agent number (座席号, `cno`) looks like.
const CNO_PATTERN: &str = "^[0-9]{1,11}$";

/// A call to place.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OutcallInput {
    /// The agent (座席号) who makes the call, such as `2000`; Clink rings this agent first.
    #[schemars(pattern(CNO_PATTERN))]
    cno: String,
    /// The customer's phone number, called once the agent picks up.
    #[schemars(length(min = 1, max = 32))]
    customer_number: String,
    /// Free text Clink writes into the call record (CDR) and returns in the call-end push,
    /// such as a ticket id.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    user_field: Option<String>,
    /// The number the customer sees (客户侧外显号码): a trunk number of the enterprise.
    #[serde(default)]
    #[schemars(length(min = 1, max = 32))]
    clid_left_number: Option<String>,
    /// `true` waits until the agent picks up and returns Clink's `unique_id`; `false`
    /// (the default) returns as soon as Clink accepts the request.
    #[serde(default)]
    sync: bool,
}

/// A call Clink accepted.
#[derive(Serialize, JsonSchema)]
pub(crate) struct OutcallOutput {
    /// The agent who makes the call.
    cno: String,
    /// The customer being called.
    customer_number: String,
    /// Clink's id of the call; only `sync` calls get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_id: Option<String>,
    /// Whether the call was placed synchronously (the agent has picked up).
    sync: bool,
}

/// The data of `call.outbound_started`.
#[derive(Serialize)]
struct OutboundStarted<'a> {
    cno: &'a str,
    customer_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_id: Option<&'a str>,
    sync: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_field: Option<&'a str>,
}

/// Places a call after the checks Clink recommends, cheapest first: the input, the click
/// debounce, the agent's unfinished call, the agent's state at Clink; then
/// `PreviewOutcall`.
pub(crate) fn preview_outcall(_ctx: &Context, input: OutcallInput) -> Result<OutcallOutput, Error> {
    let cno = cno(&input.cno)?;
    let customer_number = not_blank("customer_number", &input.customer_number)?;
    let settings = Settings::load()?;
    if !marks::claim_click(cno, settings.debounce)? {
        return Err(Error::new(
            "outcall_debounced",
            format!(
                "agent {cno} clicked to call less than {} ms ago; wait for that call to go through",
                settings.debounce.as_millis()
            ),
        ));
    }
    if let Some(call) = marks::current_call(cno)? {
        return Err(agent_in_call(cno, &call));
    }
    let clink = Clink::new(&settings)?;
    if settings.check_agent_state {
        let state = clink.agent_state(cno)?;
        if !takes_calls(&state) {
            return Err(Error::new(
                "agent_not_available",
                format!("agent {cno} is {state}; only an idle or wrapup agent can be called"),
            ));
        }
    }
    let unique_id = clink.preview_outcall(&Outcall {
        cno,
        customer_number,
        user_field: input.user_field.as_deref(),
        clid_left_number: input.clid_left_number.as_deref(),
        sync: input.sync,
    })?;
    let mark = CallMark {
        unique_id: unique_id.clone(),
        customer_number: customer_number.to_owned(),
    };
    marks::mark_call(cno, &mark, settings.call_guard)?;
    let started = OutboundStarted {
        cno,
        customer_number,
        unique_id: unique_id.as_deref(),
        sync: input.sync,
        user_field: input.user_field.as_deref(),
    };
    events::emit(
        OUTBOUND_STARTED,
        Some(unique_id.as_deref().unwrap_or(cno)),
        &started,
    )?;
    Ok(OutcallOutput {
        cno: cno.to_owned(),
        customer_number: customer_number.to_owned(),
        unique_id,
        sync: input.sync,
    })
}

/// An agent to look at or release.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentInput {
    /// The agent (座席号), such as `2000`.
    #[schemars(pattern(CNO_PATTERN))]
    cno: String,
}

/// An agent's state.
#[derive(Serialize, JsonSchema)]
pub(crate) struct AgentState {
    /// The agent.
    cno: String,
    /// As Clink reports it: `idle`, `wrapup` (整理), `busy` or `offline`.
    state: String,
    /// Whether the connector holds a call of this agent that has not ended (no call-end
    /// push yet, guard time not over); such an agent is not called.
    in_call: bool,
}

/// Asks Clink for the agent's state.
pub(crate) fn agent_state(_ctx: &Context, input: AgentInput) -> Result<AgentState, Error> {
    let cno = cno(&input.cno)?;
    let settings = Settings::load()?;
    let state = Clink::new(&settings)?.agent_state(cno)?;
    Ok(AgentState {
        cno: cno.to_owned(),
        state,
        in_call: marks::current_call(cno)?.is_some(),
    })
}

/// What `release-agent` did.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Released {
    /// The agent.
    cno: String,
    /// Whether the agent was marked as in a call (and no longer is).
    released: bool,
}

/// Forgets the agent's unfinished call, for when its call-end push was lost.
pub(crate) fn release_agent(_ctx: &Context, input: AgentInput) -> Result<Released, Error> {
    let cno = cno(&input.cno)?;
    Ok(Released {
        cno: cno.to_owned(),
        released: marks::release(cno)?,
    })
}

/// Whether Clink's toolbar state lets the agent be called: idle, or wrapping up.
fn takes_calls(state: &str) -> bool {
    matches!(state, "idle" | "wrapup")
}

fn agent_in_call(cno: &str, call: &CallMark) -> Error {
    let which = call
        .unique_id
        .as_deref()
        .map_or_else(String::new, |id| format!(" {id}"));
    Error::new(
        "agent_in_call",
        format!(
            "agent {cno}'s previous call{which} has not ended (no call-end push yet); \
             call `release-agent` if the push was lost"
        ),
    )
}

/// `value` when it is an agent number: 1–11 digits.
fn cno(value: &str) -> Result<&str, Error> {
    if (1..=11).contains(&value.len()) && value.bytes().all(|byte| byte.is_ascii_digit()) {
        Ok(value)
    } else {
        Err(Error::invalid_input(format!(
            "`cno` must be 1 to 11 digits, got {value:?}"
        )))
    }
}

/// `value` unchanged, or `invalid_input` if it is empty or only whitespace.
fn not_blank<'a>(field: &str, value: &'a str) -> Result<&'a str, Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid_input(format!("`{field}` must not be blank")));
    }
    Ok(value)
}
