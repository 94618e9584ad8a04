//! Easemob (环信) business-binding dispatch: keep the bindings "this visitor, for this
//! business, is served by this agent" in step with a CRM, and route a visitor's new session
//! so that it goes to the bound agent, overflows to a skill group when that agent cannot take
//! it, or is routed normally.
//!
//! `create-binding` and `delete-binding` call Easemob's `busniessbind` API (Easemob's
//! spelling); `route-session` opens a session with the visitor's `businessFlag` and
//! `routingRuleFlag` in `ext.weichat` and emits `im.session_routed`. Every call carries the
//! tenant's access token, cached in kv and refreshed by one call at a time (see the `token`
//! module).

mod client;
mod token;

use switchboard_sdk::{
    Connector, Context, Deserialize, Error, JsonSchema, Operation, Serialize, events,
    export_connector,
};

use client::Client;

/// The event emitted for every session `route-session` routes.
const SESSION_ROUTED: &str = "im.session_routed";

struct EasemobRouting;

impl Connector for EasemobRouting {
    const NAME: &'static str = "easemob-routing";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Creates and removes Easemob business bindings (visitor \
        and business flag to agent) and routes visitors' sessions to their bound agent, with \
        overflow to a skill group when that agent is busy, offline or full; emits \
        im.session_routed.";
    const EMITS: &'static [&'static str] = &[SESSION_ROUTED];

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "create-binding",
                "Binds a visitor to an agent for a business flag, so the visitor's sessions \
                 with that flag go to the agent.",
                create_binding,
            ),
            Operation::new(
                "delete-binding",
                "Removes a visitor's binding for a business flag; their sessions are then \
                 routed normally.",
                delete_binding,
            ),
            Operation::new(
                "route-session",
                "Opens a visitor's session and routes it: to the bound agent, as an overflow \
                 to a skill group, or by normal routing.",
                route_session,
            ),
        ]
    }
}

export_connector!(EasemobRouting);

/// A binding to create.
#[derive(Serialize, Deserialize, JsonSchema)]
struct Binding {
    /// The business the binding is for, such as `sales-lead`: one value, no commas (join
    /// several attributes into one value).
    business_flag: String,
    /// The visitor, their Easemob IM user name (`visitUserName`).
    visitor: String,
    /// The agent, the e-mail address of their Easemob account (`agentUserName`).
    agent: String,
}

/// A binding created.
#[derive(Serialize, JsonSchema)]
struct Bound {
    #[serde(flatten)]
    binding: Binding,
    /// Always `true`: the binding exists now.
    bound: bool,
}

/// A binding to remove.
#[derive(Deserialize, JsonSchema)]
struct BindingKey {
    /// The business flag the binding was created for.
    business_flag: String,
    /// The visitor's Easemob IM user name.
    visitor: String,
}

/// A binding removed.
#[derive(Serialize, JsonSchema)]
struct Deleted {
    /// Always `true`: the binding no longer exists.
    deleted: bool,
}

/// A visitor asking for service.
#[derive(Deserialize, JsonSchema)]
struct SessionRequest {
    /// The visitor's Easemob IM user name.
    visitor: String,
    /// Business flag (`ext.weichat.businessFlag`): when the visitor is bound for it, the
    /// session goes to the bound agent. One value, no commas.
    #[serde(default)]
    business_flag: Option<String>,
    /// Business routing flag (`ext.weichat.routingRuleFlag`): picks the skill group mapped to
    /// it in Easemob, in place of `skill_group`. One value, no commas.
    #[serde(default)]
    routing_rule_flag: Option<String>,
    /// The skill group to route in when no routing rule applies.
    #[serde(default)]
    skill_group: Option<String>,
}

/// How a session found (or did not find) its agent.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Dispatch {
    // No doc comments on the variants: with them the schema becomes a `oneOf`
    // instead of a plain `enum`.
    Binding,
    Overflow,
    Routing,
}

/// A routed session.
#[derive(Serialize, JsonSchema)]
struct RoutedSession {
    /// Easemob's id of the session.
    session_id: String,
    /// The agent it was assigned to; `null` when it waits in the skill group's queue.
    agent: Option<String>,
    /// The skill group it was routed in; `null` only when none was asked for and no agent
    /// was available anywhere.
    skill_group: Option<String>,
    /// `binding` (to the bound agent), `overflow` (the bound agent was busy, away, hidden,
    /// offline or full) or `routing` (no flag, or no binding for it).
    dispatch: Dispatch,
}

/// A routed session as Easemob returns it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProviderSessionReply {
    session_id: String,
    agent_user_name: Option<String>,
    skill_group: Option<String>,
    dispatch: Dispatch,
}

impl From<ProviderSessionReply> for RoutedSession {
    fn from(reply: ProviderSessionReply) -> Self {
        Self {
            session_id: reply.session_id,
            agent: reply.agent_user_name,
            skill_group: reply.skill_group,
            dispatch: reply.dispatch,
        }
    }
}

/// The data of `im.session_routed`.
#[derive(Serialize)]
struct SessionRouted<'a> {
    #[serde(flatten)]
    session: &'a RoutedSession,
    visitor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    business_flag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing_rule_flag: Option<&'a str>,
}

/// Easemob's `busniessbind` body; deleting sends no agent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderBinding<'a> {
    business_flag: &'a str,
    visit_user_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_user_name: Option<&'a str>,
}

/// Easemob's session body: the flags travel in `ext.weichat`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderSession<'a> {
    visitor_user_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    skill_group: Option<&'a str>,
    ext: Ext<'a>,
}

#[derive(Serialize)]
struct Ext<'a> {
    weichat: Weichat<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Weichat<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    business_flag: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routing_rule_flag: Option<&'a str>,
}

fn create_binding(ctx: &Context, input: Binding) -> Result<Bound, Error> {
    let body = ProviderBinding {
        business_flag: &input.business_flag,
        visit_user_name: &input.visitor,
        agent_user_name: Some(&input.agent),
    };
    busniessbind(ctx, "POST", &body, || {
        format!(
            "binding visitor `{}` to agent `{}` for `{}` (already bound, or no such agent?)",
            input.visitor, input.agent, input.business_flag
        )
    })?;
    Ok(Bound {
        binding: input,
        bound: true,
    })
}

fn delete_binding(ctx: &Context, input: BindingKey) -> Result<Deleted, Error> {
    let body = ProviderBinding {
        business_flag: &input.business_flag,
        visit_user_name: &input.visitor,
        agent_user_name: None,
    };
    busniessbind(ctx, "DELETE", &body, || {
        format!(
            "unbinding visitor `{}` for `{}` (is there such a binding?)",
            input.visitor, input.business_flag
        )
    })?;
    Ok(Deleted { deleted: true })
}

/// Sends `body` to Easemob's `busniessbind` with `method`; Easemob's refusals of the binding
/// or its parameters say what was being done.
fn busniessbind(
    ctx: &Context,
    method: &str,
    body: &ProviderBinding<'_>,
    doing: impl FnOnce() -> String,
) -> Result<(), Error> {
    Client::new(ctx)?
        .call::<()>(method, "busniessbind", body)
        .map_err(|mut error| {
            if matches!(error.code.as_str(), "binding_failed" | "invalid_parameters") {
                error.message = format!("{}: {}", doing(), error.message);
            }
            error
        })
}

fn route_session(ctx: &Context, input: SessionRequest) -> Result<RoutedSession, Error> {
    let body = ProviderSession {
        visitor_user_name: &input.visitor,
        skill_group: input.skill_group.as_deref(),
        ext: Ext {
            weichat: Weichat {
                business_flag: input.business_flag.as_deref(),
                routing_rule_flag: input.routing_rule_flag.as_deref(),
            },
        },
    };
    let session = RoutedSession::from(
        Client::new(ctx)?.call::<ProviderSessionReply>("POST", "sessions", &body)?,
    );
    let data = SessionRouted {
        session: &session,
        visitor: &input.visitor,
        business_flag: input.business_flag.as_deref(),
        routing_rule_flag: input.routing_rule_flag.as_deref(),
    };
    events::emit(SESSION_ROUTED, Some(&session.session_id), &data)?;
    Ok(session)
}
