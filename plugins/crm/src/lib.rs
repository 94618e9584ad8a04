//! CRM: the 360° view of a caller — profile, tier and tags, latest orders and open tickets —
//! found by the number they call from, for the agent who answers.
//!
//! `lookup-customer` returns the view and is cacheable (the manifest gives it a cache TTL,
//! so a caller's hot data is served without asking the CRM again); `screen-pop` returns the
//! same view for a ringing call and emits it as `call.screen_pop` for the agent's desktop.
//! An unknown number is a view with `found: false`, not an error.

mod client;
mod phone;

use client::{Crm, Customer, Order, Ticket};
use switchboard_sdk::{
    Connector, Context, Deserialize, Error, JsonSchema, Operation, Serialize, events,
    export_connector,
};

/// The event `screen-pop` emits.
const SCREEN_POP: &str = "call.screen_pop";

struct CrmConnector;

impl Connector for CrmConnector {
    const NAME: &'static str = "crm";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Looks callers up in the CRM by phone number: profile, \
        tier and tags, latest orders and open tickets; pops that 360° view to the agent's \
        desktop as call.screen_pop.";
    const EMITS: &'static [&'static str] = &[SCREEN_POP];

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "lookup-customer",
                "Returns the 360° view of the customer calling from a phone number.",
                lookup_customer,
            )
            .idempotent(),
            Operation::new(
                "screen-pop",
                "Returns the 360° view of a call's caller and emits it as call.screen_pop.",
                screen_pop,
            ),
        ]
    }
}

export_connector!(CrmConnector);

/// The number to look up.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LookupInput {
    /// The caller's number in any usual form: `+8613800138000`, `0086 138 0013 8000`,
    /// `138-0013-8000`; a number without a country code is read as mainland China.
    phone: String,
}

/// A ringing call to pop on the agent's screen.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ScreenPopInput {
    /// The telephony platform's id of the call; the event's subject.
    call_id: String,
    /// The caller's number, in any form `lookup-customer` takes.
    phone: String,
    /// The agent (seat) the call rings at; the call context's agent when absent.
    #[serde(default)]
    agent: Option<String>,
}

/// What the CRM knows about a caller.
#[derive(Serialize, JsonSchema)]
struct CustomerView {
    /// Whether a customer is filed under the number.
    found: bool,
    /// The number as looked up, in E.164 such as `+8613800138000`.
    phone: String,
    /// The customer's profile; absent when `found` is false.
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<Customer>,
    /// The latest orders, newest first (at most `recent_orders`); empty when not found.
    recent_orders: Vec<Order>,
    /// Open support tickets, last updated first; empty when not found.
    open_tickets: Vec<Ticket>,
}

/// The view of a call's caller.
#[derive(Serialize, JsonSchema)]
struct ScreenPop {
    /// The call the view is for.
    call_id: String,
    #[serde(flatten)]
    view: CustomerView,
}

/// The data of `call.screen_pop`.
#[derive(Serialize)]
struct ScreenPopEvent<'a> {
    call_id: &'a str,
    agent: Option<&'a str>,
    phone: &'a str,
    found: bool,
    customer: Option<&'a Customer>,
    recent_orders: &'a [Order],
    open_tickets: &'a [Ticket],
}

fn lookup_customer(_ctx: &Context, input: LookupInput) -> Result<CustomerView, Error> {
    customer_view(&input.phone)
}

fn screen_pop(ctx: &Context, input: ScreenPopInput) -> Result<ScreenPop, Error> {
    let call_id = input.call_id.trim();
    if call_id.is_empty() {
        return Err(Error::invalid_input("`call_id` must not be blank"));
    }
    let agent = [input.agent.as_deref(), ctx.agent.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|agent| !agent.is_empty());
    let view = customer_view(&input.phone)?;
    let event = ScreenPopEvent {
        call_id,
        agent,
        phone: &view.phone,
        found: view.found,
        customer: view.customer.as_ref(),
        recent_orders: &view.recent_orders,
        open_tickets: &view.open_tickets,
    };
    events::emit(SCREEN_POP, Some(call_id), &event)?;
    Ok(ScreenPop {
        call_id: call_id.to_owned(),
        view,
    })
}

/// The view of whoever is filed under `raw_phone`: the first customer the CRM finds, then
/// their orders and open tickets.
fn customer_view(raw_phone: &str) -> Result<CustomerView, Error> {
    let phone = phone::normalize(raw_phone)?;
    let crm = Crm::from_config()?;
    let Some(customer) = crm.find_by_phone(&phone)? else {
        return Ok(CustomerView {
            found: false,
            phone,
            customer: None,
            recent_orders: Vec::new(),
            open_tickets: Vec::new(),
        });
    };
    Ok(CustomerView {
        found: true,
        phone,
        recent_orders: crm.recent_orders(&customer.id)?,
        open_tickets: crm.open_tickets(&customer.id)?,
        customer: Some(customer),
    })
}
