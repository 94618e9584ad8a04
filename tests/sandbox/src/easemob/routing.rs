//! Who gets a new session, as Easemob's business-binding dispatch describes it: the bound agent
//! when idle (`online`) with room below their maximum (`binding`); otherwise an overflow to a
//! skill group (`overflow`); without a binding, normal routing in the group (`routing`).
//! Within a group the available agent with the fewest sessions wins, ties going to the
//! alphabetically first name; with nobody available the session queues (no agent).
//!
//! This module owns agents' states and the decision; it changes nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An agent's presence, as Easemob's agent states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum AgentStatus {
    /// Idle (空闲): takes sessions while below their maximum.
    Online,
    /// Busy (忙碌).
    Busy,
    /// Away (离开).
    Away,
    /// Hidden (隐身).
    Hidden,
    /// Not logged in.
    Offline,
}

/// One agent, as the control routes show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Agent {
    /// The agent's account, their e-mail address (`agentUserName`).
    pub(super) agent: String,
    pub(super) status: AgentStatus,
    /// How many sessions the agent takes at once.
    pub(super) max_sessions: u32,
    pub(super) skill_group: String,
    /// Sessions the agent has now.
    pub(super) sessions: u32,
}

impl Agent {
    /// An idle agent with no sessions.
    pub(super) fn new(agent: &str, skill_group: &str, max_sessions: u32) -> Self {
        Self {
            agent: agent.to_owned(),
            status: AgentStatus::Online,
            max_sessions,
            skill_group: skill_group.to_owned(),
            sessions: 0,
        }
    }

    /// Whether a session may go to the agent now.
    fn is_available(&self) -> bool {
        self.status == AgentStatus::Online && self.sessions < self.max_sessions
    }
}

/// How a session found (or did not find) its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Dispatch {
    /// To the agent bound to the visitor for the session's `businessFlag`.
    Binding,
    /// The bound agent could not take it: to the skill group instead.
    Overflow,
    /// No flag or no binding: normal routing.
    Routing,
}

/// Where a session goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decision {
    /// The agent it is assigned to; `None` means it queues.
    pub(super) agent: Option<String>,
    /// The skill group it was routed in; `None` only when no group was asked for and nobody
    /// was available anywhere.
    pub(super) skill_group: Option<String>,
    pub(super) dispatch: Dispatch,
}

/// Where a session goes among `agents`, given the agent bound to its visitor (if any) and the
/// group it asked for (the routing rule's group or its `skillGroup`, if any).
pub(super) fn decide(
    agents: &BTreeMap<String, Agent>,
    bound: Option<&Agent>,
    asked_group: Option<&str>,
) -> Decision {
    match bound {
        Some(bound) if bound.is_available() => Decision {
            agent: Some(bound.agent.clone()),
            skill_group: Some(bound.skill_group.clone()),
            dispatch: Dispatch::Binding,
        },
        Some(bound) => {
            let group = asked_group.unwrap_or(&bound.skill_group);
            Decision {
                agent: least_loaded(agents, Some(group)).map(|agent| agent.agent.clone()),
                skill_group: Some(group.to_owned()),
                dispatch: Dispatch::Overflow,
            }
        }
        None => {
            let agent = least_loaded(agents, asked_group);
            Decision {
                skill_group: asked_group
                    .map(str::to_owned)
                    .or_else(|| agent.map(|agent| agent.skill_group.clone())),
                agent: agent.map(|agent| agent.agent.clone()),
                dispatch: Dispatch::Routing,
            }
        }
    }
}

/// The available agent in `group` (any group if `None`) with the fewest sessions.
fn least_loaded<'a>(agents: &'a BTreeMap<String, Agent>, group: Option<&str>) -> Option<&'a Agent> {
    agents
        .values()
        .filter(|agent| agent.is_available())
        .filter(|agent| group.is_none_or(|group| agent.skill_group == group))
        .min_by_key(|agent| agent.sessions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team() -> BTreeMap<String, Agent> {
        [
            Agent::new("alice", "sales", 3),
            Agent::new("bob", "sales", 3),
            Agent::new("carol", "support", 3),
        ]
        .into_iter()
        .map(|agent| (agent.agent.clone(), agent))
        .collect()
    }

    fn with(
        mut agents: BTreeMap<String, Agent>,
        name: &str,
        change: impl Fn(&mut Agent),
    ) -> BTreeMap<String, Agent> {
        if let Some(agent) = agents.get_mut(name) {
            change(agent);
        }
        agents
    }

    fn decision(agent: Option<&str>, group: Option<&str>, dispatch: Dispatch) -> Decision {
        Decision {
            agent: agent.map(str::to_owned),
            skill_group: group.map(str::to_owned),
            dispatch,
        }
    }

    #[test]
    fn an_idle_bound_agent_with_room_gets_the_session_whatever_group_was_asked() {
        let agents = with(team(), "bob", |bob| bob.sessions = 2);
        assert_eq!(
            decide(&agents, agents.get("bob"), Some("support")),
            decision(Some("bob"), Some("sales"), Dispatch::Binding)
        );
    }

    #[test]
    fn a_busy_away_hidden_offline_or_full_bound_agent_overflows_to_their_group() {
        let changes: [fn(&mut Agent); 5] = [
            |a| a.status = AgentStatus::Busy,
            |a| a.status = AgentStatus::Away,
            |a| a.status = AgentStatus::Hidden,
            |a| a.status = AgentStatus::Offline,
            |a| a.sessions = a.max_sessions,
        ];
        for change in changes {
            let agents = with(team(), "alice", change);
            assert_eq!(
                decide(&agents, agents.get("alice"), None),
                decision(Some("bob"), Some("sales"), Dispatch::Overflow)
            );
        }
    }

    #[test]
    fn overflow_goes_to_the_asked_group_and_queues_when_nobody_there_is_free() {
        let agents = with(team(), "alice", |a| a.status = AgentStatus::Busy);
        assert_eq!(
            decide(&agents, agents.get("alice"), Some("support")),
            decision(Some("carol"), Some("support"), Dispatch::Overflow)
        );
        let agents = with(agents, "bob", |b| b.status = AgentStatus::Offline);
        assert_eq!(
            decide(&agents, agents.get("alice"), None),
            decision(None, Some("sales"), Dispatch::Overflow)
        );
    }

    #[test]
    fn normal_routing_picks_the_least_loaded_available_agent_and_ties_go_by_name() {
        let agents = team();
        assert_eq!(
            decide(&agents, None, Some("sales")),
            decision(Some("alice"), Some("sales"), Dispatch::Routing)
        );
        let agents = with(agents, "alice", |a| a.sessions = 1);
        assert_eq!(
            decide(&agents, None, Some("sales")),
            decision(Some("bob"), Some("sales"), Dispatch::Routing)
        );
        assert_eq!(
            decide(&agents, None, None),
            decision(Some("bob"), Some("sales"), Dispatch::Routing)
        );
        assert_eq!(
            decide(&agents, None, Some("nobody-here")),
            decision(None, Some("nobody-here"), Dispatch::Routing)
        );
        let everyone_away = team()
            .into_values()
            .map(|mut agent| {
                agent.status = AgentStatus::Away;
                (agent.agent.clone(), agent)
            })
            .collect();
        assert_eq!(
            decide(&everyone_away, None, None),
            decision(None, None, Dispatch::Routing)
        );
    }
}
