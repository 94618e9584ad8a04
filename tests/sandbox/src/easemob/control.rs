//! Control routes for tests and people playing the agents' side; no token, no faults:
//!
//! - `GET /__sandbox/easemob/agents`, `PUT /__sandbox/easemob/agents/{agentUserName}` with
//!   `{"status"?, "max_sessions"?, "skill_group"?, "sessions"?}` (a new agent needs
//!   `skill_group`);
//! - `GET /__sandbox/easemob/bindings`;
//! - `GET|PUT /__sandbox/easemob/routing-rules` with `{"<routingRuleFlag>": "<group>"}`
//!   (PUT replaces every rule);
//! - `GET /__sandbox/easemob/sessions`: the most recent routed sessions;
//! - `POST /__sandbox/easemob/tokens/expire`: every issued token expires now;
//! - `GET /__sandbox/easemob/stats`; `POST /__sandbox/easemob/reset`: back to the seed state.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State, rejection::PathRejection},
    routing::{get, post, put},
};
use serde_json::{Value, json};

use super::desk::AgentUpdate;
use super::params::Body;
use super::routing::Agent;
use super::{Easemob, now_ms};
use crate::error::ApiError;
use crate::upstream::parse_json_body;

/// The control routes over the provider's shared state.
pub(super) fn routes(easemob: Arc<Easemob>) -> Router {
    Router::new()
        .route("/__sandbox/easemob/agents", get(list_agents))
        .route("/__sandbox/easemob/agents/{agent}", put(update_agent))
        .route("/__sandbox/easemob/bindings", get(list_bindings))
        .route(
            "/__sandbox/easemob/routing-rules",
            get(list_rules).put(set_rules),
        )
        .route("/__sandbox/easemob/sessions", get(list_sessions))
        .route("/__sandbox/easemob/tokens/expire", post(expire_tokens))
        .route("/__sandbox/easemob/stats", get(stats))
        .route("/__sandbox/easemob/reset", post(reset))
        .with_state(easemob)
}

async fn list_agents(State(easemob): State<Arc<Easemob>>) -> Json<Vec<Agent>> {
    Json(easemob.desk.agents())
}

async fn update_agent(
    State(easemob): State<Arc<Easemob>>,
    agent: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Agent>, ApiError> {
    let Path(agent) = agent?;
    let update: AgentUpdate = parse_json_body(body)?;
    easemob.desk.update_agent(&agent, update).map(Json)
}

async fn list_bindings(State(easemob): State<Arc<Easemob>>) -> Json<Value> {
    Json(json!(easemob.desk.bindings()))
}

async fn list_rules(State(easemob): State<Arc<Easemob>>) -> Json<BTreeMap<String, String>> {
    Json(easemob.desk.rules())
}

async fn set_rules(
    State(easemob): State<Arc<Easemob>>,
    body: Body,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    easemob.desk.set_rules(parse_json_body(body)?).map(Json)
}

async fn list_sessions(State(easemob): State<Arc<Easemob>>) -> Json<Value> {
    Json(easemob.desk.sessions())
}

async fn expire_tokens(State(easemob): State<Arc<Easemob>>) -> Json<Value> {
    Json(json!({ "expired": easemob.tokens.expire_all(now_ms()) }))
}

async fn stats(State(easemob): State<Arc<Easemob>>) -> Json<Value> {
    let (tokens, active_tokens) = easemob.tokens.stats(now_ms());
    let desk = easemob.desk.stats();
    Json(json!({
        "token_requests": tokens.token_requests,
        "tokens_issued": tokens.tokens_issued,
        "active_tokens": active_tokens,
        "token_rejections": tokens.token_rejections,
        "bindings": desk.bindings,
        "sessions": desk.sessions,
    }))
}

async fn reset(State(easemob): State<Arc<Easemob>>) -> Json<Value> {
    easemob.tokens.reset();
    easemob.desk.reset();
    Json(json!({ "reset": true }))
}
