//! The fake Clink (天润融通) provider: outbound calls through `PreviewOutcall`, the agent
//! state a toolbar shows, and the call-end push.
//!
//! `GET /interface/PreviewOutcall?enterpriseId=&cno=&pwd=&customerNumber=&userField=&clidLeftNumber=&sync=`
//! rings the agent `cno` and then the customer; `pwd` is the lower-case hex MD5 of the
//! agent's login password ([`CLINK_AGENT_PASSWORD`]). `GET /interface/AgentStatus?enterpriseId=&cno=&pwd=`
//! reports the agent's state. Both always answer HTTP 200 with `{"res": N}` (see [`Res`]);
//! `uniqueId` comes only with `res` 0 of a synchronous (`sync=1`) call.
//!
//! Control routes play the other side: `/__sandbox/clink/enterprise` (the account),
//! `/__sandbox/clink/agents[/{cno}]` (agents' states and whether they pick up),
//! `/__sandbox/clink/calls` (every accepted call) and
//! `POST /__sandbox/clink/calls/{uniqueId}/hangup`, which ends a call and pushes
//! `{"cno","uniqueId","customerNumber","userField","startTime","endTime","status","hangupSide"}`
//! as JSON to exactly the URL set with `PUT /__sandbox/webhook` (Clink signs nothing: the
//! receiver's token travels in that URL's query). This module owns the routes; the rules
//! live in [`center`], parameter checks in [`request`].

mod center;
mod request;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, Query, State,
        rejection::{BytesRejection, PathRejection, QueryRejection},
    },
    routing::{get, post},
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::CLINK_AGENT_PASSWORD;
use crate::error::ApiError;
use crate::upstream::parse_json_body;
use crate::webhook::{self, Delivery, WebhookTarget};
use center::{Account, AccountPatch, Agent, AgentPatch, Call, Center, Hangup};
use request::{Credentials, OutcallRequest};

/// Clink's `res` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Res {
    /// 0: `sync=1` the agent answered; `sync=0` the call request was accepted.
    Success = 0,
    /// 1: calling the agent failed (呼叫座席失败): the agent did not pick up.
    AgentCallFailed = 1,
    /// 2: a parameter is missing or malformed (参数不正确).
    ParametersIncorrect = 2,
    /// 3: unknown enterprise or agent, or wrong `pwd` (用户验证没有通过).
    AuthenticationFailed = 3,
    /// 4: the account is disabled (账号被停用).
    AccountDisabled = 4,
    /// 5: the balance is used up (资费不足).
    InsufficientBalance = 5,
    /// 6: the outbound-call service is not enabled (指定的业务尚未开通).
    ServiceNotEnabled = 6,
    /// 7: the customer's number cannot be dialled (电话号码不正确).
    InvalidNumber = 7,
    /// 8: the agent is not available — busy, in a call or offline (座席…).
    AgentUnavailable = 8,
}

/// What the routes share.
#[derive(Debug)]
struct Clink {
    center: Mutex<Center>,
    /// Where call-end pushes go.
    webhook: Arc<WebhookTarget>,
}

impl Clink {
    fn center(&self) -> MutexGuard<'_, Center> {
        self.center.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The provider's routes; faults, counting and the shared control routes are added by
/// `upstream`.
pub(crate) fn routes() -> Router {
    let webhook = Arc::new(WebhookTarget::default());
    let clink = Arc::new(Clink {
        center: Mutex::new(Center::new(CLINK_AGENT_PASSWORD)),
        webhook: Arc::clone(&webhook),
    });
    Router::new()
        .route("/interface/PreviewOutcall", get(preview_outcall))
        .route("/interface/AgentStatus", get(agent_status))
        .route(
            "/__sandbox/clink/enterprise",
            get(get_account).put(put_account),
        )
        .route("/__sandbox/clink/agents", get(list_agents))
        .route(
            "/__sandbox/clink/agents/{cno}",
            get(get_agent).put(put_agent),
        )
        .route("/__sandbox/clink/calls", get(list_calls))
        .route("/__sandbox/clink/calls/{unique_id}/hangup", post(hang_up))
        .with_state(clink)
        .merge(webhook::control_routes(webhook))
}

/// `PreviewOutcall`'s answer: `{"res": N}`, plus `uniqueId` for an answered `sync=1` call.
#[derive(Debug, Serialize)]
struct OutcallReply {
    res: u8,
    #[serde(rename = "uniqueId", skip_serializing_if = "Option::is_none")]
    unique_id: Option<String>,
}

async fn preview_outcall(
    State(clink): State<Arc<Clink>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Json<OutcallReply> {
    let placed = parse_query(query)
        .and_then(|query| OutcallRequest::parse(&query))
        .and_then(|request| clink.center().place_call(request, now()));
    Json(match placed {
        Ok(call) => OutcallReply {
            res: Res::Success as u8,
            unique_id: (call.sync == 1).then_some(call.unique_id),
        },
        Err(res) => OutcallReply {
            res: res as u8,
            unique_id: None,
        },
    })
}

async fn agent_status(
    State(clink): State<Arc<Clink>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Json<Value> {
    let status = parse_query(query)
        .and_then(|query| Credentials::parse(&query))
        .and_then(|credentials| {
            let state = clink.center().agent_status(&credentials)?;
            Ok((credentials.cno, state))
        });
    Json(match status {
        Ok((cno, state)) => json!({ "res": Res::Success as u8, "cno": cno, "state": state }),
        Err(res) => json!({ "res": res as u8 }),
    })
}

/// A query string that does not decode is a parameter error, like any other.
fn parse_query(
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, Res> {
    query
        .map(|Query(query)| query)
        .map_err(|_| Res::ParametersIncorrect)
}

async fn get_account(State(clink): State<Arc<Clink>>) -> Json<Account> {
    Json(clink.center().account())
}

async fn put_account(
    State(clink): State<Arc<Clink>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Account>, ApiError> {
    let patch: AccountPatch = parse_json_body(body)?;
    Ok(Json(clink.center().patch_account(patch)))
}

async fn list_agents(State(clink): State<Arc<Clink>>) -> Json<Vec<Agent>> {
    Json(clink.center().agents())
}

async fn get_agent(
    State(clink): State<Arc<Clink>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Agent>, ApiError> {
    let Path(cno) = path?;
    clink.center().agent(&cno).map(Json)
}

async fn put_agent(
    State(clink): State<Arc<Clink>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Agent>, ApiError> {
    let Path(cno) = path?;
    let patch: AgentPatch = parse_json_body(body)?;
    clink.center().patch_agent(&cno, patch).map(Json)
}

async fn list_calls(State(clink): State<Arc<Clink>>) -> Json<Vec<Call>> {
    Json(clink.center().calls())
}

/// What hanging up did: the ended call, and the push's fate (`null` when no webhook URL
/// is set).
#[derive(Debug, Serialize)]
struct HungUp {
    call: Call,
    delivery: Option<Delivery>,
}

/// Ends a call (body `{"status","hangupSide"}`, both optional, or empty) and sends the
/// call-end push before answering, so the caller sees its effects.
async fn hang_up(
    State(clink): State<Arc<Clink>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<HungUp>, ApiError> {
    let Path(unique_id) = path?;
    let body = body?;
    let hangup: Hangup = if body.iter().all(u8::is_ascii_whitespace) {
        Hangup::default()
    } else {
        parse_json_body(Ok(body))?
    };
    let call = clink.center().hang_up(&unique_id, hangup, now())?;
    let delivery = push_call_end(&clink.webhook, &call).await;
    Ok(Json(HungUp { call, delivery }))
}

/// POSTs the call-end push to the configured URL as it is, if one is set.
async fn push_call_end(target: &WebhookTarget, call: &Call) -> Option<Delivery> {
    let url = target.config().url?;
    let body = json!({
        "cno": call.cno,
        "uniqueId": call.unique_id,
        "customerNumber": call.customer_number,
        "userField": call.user_field.as_deref().unwrap_or_default(),
        "startTime": call.start_time,
        "endTime": call.end_time,
        "status": call.status,
        "hangupSide": call.hangup_side,
    });
    let request = webhook::client()
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_string());
    Some(target.send(&url, request).await)
}

/// Unix seconds.
/// Seconds since the Unix epoch.
fn now() -> u64 {
    crate::clock::now_s()
}

#[cfg(test)]
mod tests;
