//! The tenant's service desk in memory: agents, business bindings, routing rules
//! (`routingRuleFlag` → skill group) and the sessions routed.
//!
//! This module owns changing that state atomically; who gets a session is decided by
//! [`routing`](super::routing).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use super::params::{BindRequest, SessionRequest, UnbindRequest};
use super::reply::Fail;
use super::routing::{Agent, AgentStatus, Dispatch, decide};
use crate::error::ApiError;

/// How many sessions `GET /__sandbox/easemob/sessions` keeps, the most recent ones.
const RECENT_SESSIONS: usize = 1000;

/// The agents every fresh (or reset) sandbox starts with: online, up to 3 sessions each.
const SEED_AGENTS: [(&str, &str); 3] = [
    ("alice@example.com", "sales"),
    ("bob@example.com", "sales"),
    ("carol@example.com", "support"),
];

/// The sessions an agent takes at once unless told otherwise.
const DEFAULT_MAX_SESSIONS: u32 = 3;

/// All desk state, behind one lock so a routing decision and its assignment are atomic.
#[derive(Debug)]
pub(super) struct Desk {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    agents: BTreeMap<String, Agent>,
    /// Agent bound to each (businessFlag, visitUserName).
    bindings: BTreeMap<(String, String), String>,
    /// Skill group of each routingRuleFlag.
    rules: BTreeMap<String, String>,
    recent: VecDeque<Session>,
    routed: u64,
}

/// A routed session as the API answers it (the reply's `entity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Routed {
    pub(super) session_id: String,
    pub(super) agent_user_name: Option<String>,
    pub(super) skill_group: Option<String>,
    pub(super) dispatch: Dispatch,
}

/// A routed session as the control routes list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    visitor_user_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    business_flag: Option<String>,
    #[serde(flatten)]
    routed: Routed,
}

/// One binding as `GET /__sandbox/easemob/bindings` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Binding {
    business_flag: String,
    visit_user_name: String,
    agent_user_name: String,
}

/// `PUT /__sandbox/easemob/agents/{agent}`: what to change; absent fields stay.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentUpdate {
    status: Option<AgentStatus>,
    max_sessions: Option<u32>,
    skill_group: Option<String>,
    sessions: Option<u32>,
}

/// What `GET /__sandbox/easemob/stats` reports about the desk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct DeskStats {
    /// Bindings that exist now.
    pub(super) bindings: usize,
    /// Sessions routed since the start or the last reset.
    pub(super) sessions: u64,
}

impl Default for Desk {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner::seeded()),
        }
    }
}

impl Inner {
    fn seeded() -> Self {
        let agents = SEED_AGENTS
            .into_iter()
            .map(|(name, group)| {
                (
                    name.to_owned(),
                    Agent::new(name, group, DEFAULT_MAX_SESSIONS),
                )
            })
            .collect();
        Self {
            agents,
            bindings: BTreeMap::new(),
            rules: BTreeMap::new(),
            recent: VecDeque::new(),
            routed: 0,
        }
    }
}

impl Desk {
    /// Binds the visitor to the agent for the flag: `API_120` if the pair is bound already
    /// (to anyone) or the agent is unknown.
    pub(super) fn bind(&self, request: BindRequest) -> Result<(), Fail> {
        let mut inner = self.lock();
        if !inner.agents.contains_key(&request.agent) {
            return Err(Fail::BindFailed);
        }
        let key = (request.business_flag, request.visitor);
        if inner.bindings.contains_key(&key) {
            return Err(Fail::BindFailed);
        }
        inner.bindings.insert(key, request.agent);
        Ok(())
    }

    /// Removes the visitor's binding for the flag: `API_120` if there is none.
    pub(super) fn unbind(&self, request: UnbindRequest) -> Result<(), Fail> {
        let key = (request.business_flag, request.visitor);
        match self.lock().bindings.remove(&key) {
            Some(_) => Ok(()),
            None => Err(Fail::BindFailed),
        }
    }

    /// Routes a new session and counts it against the agent it goes to.
    pub(super) fn route(&self, request: SessionRequest) -> Routed {
        let mut inner = self.lock();
        let bound = request.business_flag.as_ref().and_then(|flag| {
            let key = (flag.clone(), request.visitor.clone());
            inner
                .bindings
                .get(&key)
                .and_then(|agent| inner.agents.get(agent))
        });
        let asked_group = request
            .routing_rule_flag
            .as_ref()
            .and_then(|flag| inner.rules.get(flag))
            .or(request.skill_group.as_ref());
        let decision = decide(&inner.agents, bound, asked_group.map(String::as_str));
        if let Some(agent) = decision
            .agent
            .as_ref()
            .and_then(|name| inner.agents.get_mut(name))
        {
            agent.sessions = agent.sessions.saturating_add(1);
        }
        let routed = Routed {
            session_id: session_id(),
            agent_user_name: decision.agent,
            skill_group: decision.skill_group,
            dispatch: decision.dispatch,
        };
        inner.record(Session {
            visitor_user_name: request.visitor,
            business_flag: request.business_flag,
            routed: routed.clone(),
        });
        routed
    }

    /// Changes (or, given a `skill_group`, creates) an agent and returns it.
    pub(super) fn update_agent(&self, name: &str, update: AgentUpdate) -> Result<Agent, ApiError> {
        if name.trim().is_empty() {
            return Err(ApiError::invalid_request(
                "the agent name must not be blank",
            ));
        }
        if update
            .skill_group
            .as_deref()
            .is_some_and(|group| group.trim().is_empty())
        {
            return Err(ApiError::invalid_param(
                "skill_group",
                "skill_group must not be blank",
            ));
        }
        let mut inner = self.lock();
        let agent = match inner.agents.get_mut(name) {
            Some(agent) => agent,
            None => {
                let group = update.skill_group.as_deref().ok_or_else(|| {
                    ApiError::invalid_param(
                        "skill_group",
                        format!("agent {name:?} is new: give it a skill_group"),
                    )
                })?;
                let agent = Agent::new(name, group, DEFAULT_MAX_SESSIONS);
                inner.agents.entry(name.to_owned()).or_insert(agent)
            }
        };
        update.apply(agent);
        Ok(agent.clone())
    }

    /// Every agent, by name.
    pub(super) fn agents(&self) -> Vec<Agent> {
        self.lock().agents.values().cloned().collect()
    }

    /// Every binding, by flag then visitor.
    pub(super) fn bindings(&self) -> Vec<Binding> {
        self.lock()
            .bindings
            .iter()
            .map(|((flag, visitor), agent)| Binding {
                business_flag: flag.clone(),
                visit_user_name: visitor.clone(),
                agent_user_name: agent.clone(),
            })
            .collect()
    }

    /// Replaces the routing rules; a flag must be one non-blank value and a group non-blank.
    pub(super) fn set_rules(
        &self,
        rules: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ApiError> {
        for (flag, group) in &rules {
            if flag.trim().is_empty() || flag.contains([',', '，']) {
                return Err(ApiError::invalid_param(
                    flag,
                    "a routingRuleFlag must be one non-blank value",
                ));
            }
            if group.trim().is_empty() {
                return Err(ApiError::invalid_param(
                    flag,
                    "the skill group must not be blank",
                ));
            }
        }
        self.lock().rules.clone_from(&rules);
        Ok(rules)
    }

    /// The routing rules.
    pub(super) fn rules(&self) -> BTreeMap<String, String> {
        self.lock().rules.clone()
    }

    /// The most recent sessions, oldest first, as JSON.
    pub(super) fn sessions(&self) -> serde_json::Value {
        serde_json::json!(self.lock().recent)
    }

    /// Counters for the stats route.
    pub(super) fn stats(&self) -> DeskStats {
        let inner = self.lock();
        DeskStats {
            bindings: inner.bindings.len(),
            sessions: inner.routed,
        }
    }

    /// Back to the seed agents, with no bindings, rules or sessions.
    pub(super) fn reset(&self) {
        *self.lock() = Inner::seeded();
    }

    /// A poisoned lock still holds consistent state: no update leaves it half done.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn record(&mut self, session: Session) {
        self.routed += 1;
        if self.recent.len() == RECENT_SESSIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(session);
    }
}

impl AgentUpdate {
    fn apply(self, agent: &mut Agent) {
        if let Some(status) = self.status {
            agent.status = status;
        }
        if let Some(max_sessions) = self.max_sessions {
            agent.max_sessions = max_sessions;
        }
        if let Some(skill_group) = self.skill_group {
            agent.skill_group = skill_group;
        }
        if let Some(sessions) = self.sessions {
            agent.sessions = sessions;
        }
    }
}

/// A session id shaped like Easemob's, a UUID: `8-4-4-4-12` lower-case hex digits.
fn session_id() -> String {
    let n = rand::random::<u128>();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        n >> 96,
        (n >> 80) & 0xffff,
        (n >> 64) & 0xffff,
        (n >> 48) & 0xffff,
        n & 0xffff_ffff_ffff
    )
}
