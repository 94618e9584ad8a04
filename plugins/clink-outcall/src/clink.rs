//! Clink's `/interface/*` API: building the signed-in query, reading `{"res": N}`, and
//! what each `res` means to a caller.
//!
//! Clink answers HTTP 200 whatever happened; the outcome is the `res` code. This module
//! turns every non-zero `res` into its own connector error. The `pwd` parameter (the MD5
//! of the agent's password) is in the URL, so no error here quotes a URL.

use md5::{Digest, Md5};
use serde_json::Value;
use switchboard_sdk::{Deserialize, Error, config, http};

use crate::settings::Settings;

/// An outbound call to ask Clink for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcall<'a> {
    pub(crate) cno: &'a str,
    pub(crate) customer_number: &'a str,
    pub(crate) user_field: Option<&'a str>,
    pub(crate) clid_left_number: Option<&'a str>,
    pub(crate) sync: bool,
}

/// A client for one enterprise, signed in with the agents' password.
pub(crate) struct Clink<'a> {
    settings: &'a Settings,
    /// Lower-case hex MD5 of the agents' login password.
    pwd: String,
}

/// Clink's answer to any `/interface/*` request.
#[derive(Deserialize)]
struct Reply {
    res: i64,
    #[serde(default, rename = "uniqueId")]
    unique_id: Option<Value>,
    #[serde(default)]
    state: Option<String>,
}

impl<'a> Clink<'a> {
    /// A client for `settings`; fails with `secret_missing` without the `password` secret.
    pub(crate) fn new(settings: &'a Settings) -> Result<Self, Error> {
        let password = config::require_secret("password")?;
        Ok(Self {
            settings,
            pwd: hex::encode(Md5::digest(password.as_bytes())),
        })
    }

    /// The agent's state as Clink's toolbar reports it: `idle`, `wrapup`, `busy`,
    /// `offline`, or whatever else Clink says.
    pub(crate) fn agent_state(&self, cno: &str) -> Result<String, Error> {
        let reply = self.get("AgentStatus", cno, &[])?;
        reply.state.ok_or_else(|| {
            Error::new(
                "upstream_invalid_response",
                "AgentStatus answered res 0 without the agent's state",
            )
        })
    }

    /// Places the call; returns Clink's `uniqueId`, which only a `sync` call gets.
    pub(crate) fn preview_outcall(&self, call: &Outcall<'_>) -> Result<Option<String>, Error> {
        let sync = if call.sync { "1" } else { "0" };
        let params = [
            ("customerNumber", Some(call.customer_number)),
            ("userField", call.user_field),
            ("clidLeftNumber", call.clid_left_number),
            ("sync", Some(sync)),
        ];
        let reply = self.get("PreviewOutcall", call.cno, &params)?;
        Ok(reply.unique_id.and_then(|id| match id {
            Value::String(text) => Some(text).filter(|text| !text.is_empty()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }))
    }

    /// `GET /interface/<action>` for agent `cno` with `params`; a reply whose `res` is not
    /// 0 is the error that `res` maps to.
    fn get(
        &self,
        action: &str,
        cno: &str,
        params: &[(&str, Option<&str>)],
    ) -> Result<Reply, Error> {
        let credentials = [
            ("enterpriseId", Some(self.settings.enterprise_id.as_str())),
            ("cno", Some(cno)),
            ("pwd", Some(self.pwd.as_str())),
        ];
        let query = credentials
            .iter()
            .chain(params)
            .filter_map(|(name, value)| Some(format!("{name}={}", encode((*value)?))))
            .collect::<Vec<_>>()
            .join("&");
        let url = format!("{}/interface/{action}?{query}", self.settings.base_url);
        let response = http::get(url).send()?;
        if !response.is_success() {
            return Err(Error::upstream_status(response.status, &response.body));
        }
        let reply: Reply = response.json()?;
        match reply.res {
            0 => Ok(reply),
            res => Err(res_error(action, res)),
        }
    }
}

/// The connector error for Clink's `res` code `res` (never 0) from `action`.
pub(crate) fn res_error(action: &str, res: i64) -> Error {
    let (code, meaning) = match res {
        1 => (
            "agent_call_failed",
            "calling the agent failed: the agent did not pick up",
        ),
        2 => (
            "invalid_parameters",
            "Clink found a parameter missing or malformed",
        ),
        3 => (
            "authentication_failed",
            "Clink did not accept the enterprise id, agent number or password",
        ),
        4 => ("account_disabled", "the Clink account is disabled"),
        5 => (
            "insufficient_balance",
            "the Clink account's balance is used up",
        ),
        6 => (
            "service_not_enabled",
            "the outbound-call service is not enabled for the enterprise",
        ),
        7 => (
            "invalid_customer_number",
            "Clink cannot dial the customer's number",
        ),
        8 => (
            "agent_busy",
            "the agent is not available: busy, in a call or offline",
        ),
        _ => ("upstream_error", "an undocumented res code"),
    };
    let message = format!("Clink {action} answered res {res}: {meaning}");
    if res == 1 {
        Error::retryable(code, message)
    } else {
        Error::new(code, message)
    }
}

/// `value` percent-encoded for a query string: everything but unreserved characters, as
/// for a path segment. The values a path segment refuses (empty, `.`, `..`) need no encoding.
fn encode(value: &str) -> String {
    http::path_segment(value).unwrap_or_else(|_| value.to_owned())
}
