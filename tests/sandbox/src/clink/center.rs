//! The call center behind Clink's API: the enterprise's account, its agents and the calls
//! placed, and which `res` a request earns.
//!
//! This module owns the rules (who may call, in which order the checks run, what a call
//! does to its agent); query parsing lives in `request`, HTTP in the parent.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::Res;
use super::request::{Credentials, OutcallRequest, is_dialable};
use crate::CLINK_ENTERPRISE_ID;
use crate::error::ApiError;

/// The agents (座席, `cno`) the enterprise has.
pub(crate) const AGENTS: std::ops::RangeInclusive<u32> = 2000..=2009;

/// What an agent is doing, as Clink's toolbar reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AgentState {
    /// Logged in and free.
    Idle,
    /// Finishing the notes of a call (整理); may take the next one.
    Wrapup,
    /// In a call.
    Busy,
    /// Not logged in.
    Offline,
}

impl AgentState {
    /// Whether Clink rings the agent for an outbound call: only idle or wrapping up.
    fn takes_calls(self) -> bool {
        matches!(self, AgentState::Idle | AgentState::Wrapup)
    }
}

/// One agent: its state, and whether it picks up when Clink rings it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Agent {
    pub(crate) cno: String,
    pub(crate) state: AgentState,
    pub(crate) answers: bool,
}

/// A change to an agent; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentPatch {
    #[serde(default)]
    state: Option<AgentState>,
    #[serde(default)]
    answers: Option<bool>,
}

/// The enterprise's account: what drives `res` 4, 5 and 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Account {
    /// The account is disabled (账号被停用, res 4).
    pub(crate) disabled: bool,
    /// The balance is used up (资费不足, res 5).
    pub(crate) balance_exhausted: bool,
    /// The outbound-call service is enabled; when not, res 6 (业务尚未开通).
    pub(crate) outcall_enabled: bool,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            disabled: false,
            balance_exhausted: false,
            outcall_enabled: true,
        }
    }
}

/// A change to the account; absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountPatch {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    balance_exhausted: Option<bool>,
    #[serde(default)]
    outcall_enabled: Option<bool>,
}

/// Whether a call is still going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CallState {
    InProgress,
    Ended,
}

/// How a call ended: the customer answered, or never did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EndStatus {
    #[default]
    Answered,
    NoAnswer,
}

/// Who hung up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HangupSide {
    #[default]
    Agent,
    Customer,
}

/// How a test ends a call: `{"status": …, "hangupSide": …}`, both optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Hangup {
    #[serde(default)]
    status: EndStatus,
    #[serde(default)]
    hangup_side: HangupSide,
}

/// A call Clink accepted, as the control routes show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Call {
    pub(crate) unique_id: String,
    pub(crate) cno: String,
    pub(crate) customer_number: String,
    pub(crate) user_field: Option<String>,
    pub(crate) clid_left_number: Option<String>,
    /// `1` for a synchronous request, `0` for an asynchronous one, as it was sent.
    pub(crate) sync: u8,
    pub(crate) state: CallState,
    /// Unix seconds.
    pub(crate) start_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) end_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<EndStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hangup_side: Option<HangupSide>,
}

/// The enterprise [`CLINK_ENTERPRISE_ID`] with agents [`AGENTS`], all idle and answering.
#[derive(Debug)]
pub(crate) struct Center {
    account: Account,
    agents: BTreeMap<String, Agent>,
    calls: Vec<Call>,
    /// Lower-case hex MD5 of the agents' login password, what `pwd` must be.
    pwd: String,
}

impl Center {
    /// A fresh center whose agents log in with `password`.
    pub(crate) fn new(password: &str) -> Self {
        let agents = AGENTS
            .map(|cno| {
                let cno = cno.to_string();
                let agent = Agent {
                    cno: cno.clone(),
                    state: AgentState::Idle,
                    answers: true,
                };
                (cno, agent)
            })
            .collect();
        Self {
            account: Account::default(),
            agents,
            calls: Vec::new(),
            pwd: hex::encode(Md5::digest(password.as_bytes())),
        }
    }

    /// The agent's state, for `AgentStatus`: res 3 for wrong credentials, 4 for a
    /// disabled account.
    pub(crate) fn agent_status(&self, credentials: &Credentials) -> Result<AgentState, Res> {
        let agent = self.authenticate(credentials)?;
        if self.account.disabled {
            return Err(Res::AccountDisabled);
        }
        Ok(agent.state)
    }

    /// Places a `PreviewOutcall`: the checks run in the order of Clink's res codes (3, 4,
    /// 5, 6, 7, 8, then 1 when the agent does not pick up); an accepted call makes its
    /// agent busy until it ends.
    pub(crate) fn place_call(&mut self, request: OutcallRequest, now: u64) -> Result<Call, Res> {
        let agent = self.authenticate(&request.credentials)?;
        let refusal = [
            (self.account.disabled, Res::AccountDisabled),
            (self.account.balance_exhausted, Res::InsufficientBalance),
            (!self.account.outcall_enabled, Res::ServiceNotEnabled),
            (!is_dialable(&request.customer_number), Res::InvalidNumber),
            (!agent.state.takes_calls(), Res::AgentUnavailable),
            (!agent.answers, Res::AgentCallFailed),
        ]
        .into_iter()
        .find_map(|(refused, res)| refused.then_some(res));
        if let Some(res) = refusal {
            return Err(res);
        }
        let cno = request.credentials.cno;
        if let Some(agent) = self.agents.get_mut(&cno) {
            agent.state = AgentState::Busy;
        }
        let call = Call {
            unique_id: format!("127.0.0.1-{now}.{}", self.calls.len() + 1),
            cno,
            customer_number: request.customer_number,
            user_field: request.user_field,
            clid_left_number: request.clid_left_number,
            sync: u8::from(request.sync),
            state: CallState::InProgress,
            start_time: now,
            end_time: None,
            status: None,
            hangup_side: None,
        };
        self.calls.push(call.clone());
        Ok(call)
    }

    /// Ends the call `unique_id`; a busy agent goes to wrapup. 404 for an unknown call,
    /// 409 `call_ended` for one that already ended.
    pub(crate) fn hang_up(
        &mut self,
        unique_id: &str,
        hangup: Hangup,
        now: u64,
    ) -> Result<Call, ApiError> {
        let call = self
            .calls
            .iter_mut()
            .find(|call| call.unique_id == unique_id)
            .ok_or_else(|| ApiError::not_found(format!("no call has uniqueId {unique_id:?}")))?;
        if call.state == CallState::Ended {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "call_ended",
                format!("call {unique_id:?} has already ended"),
            ));
        }
        call.state = CallState::Ended;
        call.end_time = Some(now);
        call.status = Some(hangup.status);
        call.hangup_side = Some(hangup.hangup_side);
        let ended = call.clone();
        if let Some(agent) = self.agents.get_mut(&ended.cno)
            && agent.state == AgentState::Busy
        {
            agent.state = AgentState::Wrapup;
        }
        Ok(ended)
    }

    /// The account settings.
    pub(crate) fn account(&self) -> Account {
        self.account
    }

    /// Applies `patch` to the account and returns the result.
    pub(crate) fn patch_account(&mut self, patch: AccountPatch) -> Account {
        let account = &mut self.account;
        account.disabled = patch.disabled.unwrap_or(account.disabled);
        account.balance_exhausted = patch.balance_exhausted.unwrap_or(account.balance_exhausted);
        account.outcall_enabled = patch.outcall_enabled.unwrap_or(account.outcall_enabled);
        *account
    }

    /// Every agent, by `cno`.
    pub(crate) fn agents(&self) -> Vec<Agent> {
        self.agents.values().cloned().collect()
    }

    /// The agent `cno`, or 404.
    pub(crate) fn agent(&self, cno: &str) -> Result<Agent, ApiError> {
        self.agents
            .get(cno)
            .cloned()
            .ok_or_else(|| unknown_agent(cno))
    }

    /// Applies `patch` to the agent `cno` and returns it, or 404.
    pub(crate) fn patch_agent(&mut self, cno: &str, patch: AgentPatch) -> Result<Agent, ApiError> {
        let agent = self.agents.get_mut(cno).ok_or_else(|| unknown_agent(cno))?;
        agent.state = patch.state.unwrap_or(agent.state);
        agent.answers = patch.answers.unwrap_or(agent.answers);
        Ok(agent.clone())
    }

    /// Every accepted call, oldest first.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.clone()
    }

    /// The agent the credentials name, if the enterprise, agent and password all match
    /// (res 3 otherwise). `pwd` is compared as hex, in either case.
    fn authenticate(&self, credentials: &Credentials) -> Result<&Agent, Res> {
        let agent = self
            .agents
            .get(&credentials.cno)
            .filter(|_| credentials.enterprise_id == CLINK_ENTERPRISE_ID)
            .ok_or(Res::AuthenticationFailed)?;
        if credentials.pwd.eq_ignore_ascii_case(&self.pwd) {
            Ok(agent)
        } else {
            Err(Res::AuthenticationFailed)
        }
    }
}

fn unknown_agent(cno: &str) -> ApiError {
    ApiError::not_found(format!(
        "no agent has cno {cno:?}; the sandbox has {}–{}",
        AGENTS.start(),
        AGENTS.end()
    ))
}
