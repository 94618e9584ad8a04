//! The operator's configuration, read once per call into typed values.

use std::time::Duration;

use switchboard_sdk::{Error, config};

/// What the manifest's config keys say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Clink's base URL without a trailing `/`, e.g. `http://127.0.0.1:18084`.
    pub(crate) base_url: String,
    /// The enterprise id (企业编号) every request carries.
    pub(crate) enterprise_id: String,
    /// How long a click for an agent blocks the next one; zero turns the debounce off.
    pub(crate) debounce: Duration,
    /// How long an agent counts as in a call when no call-end push comes; zero turns the
    /// guard off.
    pub(crate) call_guard: Duration,
    /// Whether to ask Clink for the agent's state before calling.
    pub(crate) check_agent_state: bool,
}

impl Settings {
    /// Reads every key; a value that does not parse is `config_invalid`.
    pub(crate) fn load() -> Result<Self, Error> {
        Ok(Self {
            base_url: config::require("base_url")?
                .trim_end_matches('/')
                .to_owned(),
            enterprise_id: config::require("enterprise_id")?,
            debounce: millis("debounce_ms")?,
            call_guard: millis("call_guard_ms")?,
            check_agent_state: flag("check_agent_state")?,
        })
    }
}

fn millis(key: &str) -> Result<Duration, Error> {
    let value = config::require(key)?;
    value
        .trim()
        .parse()
        .map(Duration::from_millis)
        .map_err(|_| invalid(key, &value, "a whole number of milliseconds"))
}

fn flag(key: &str) -> Result<bool, Error> {
    let value = config::require(key)?;
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, &value, "`true` or `false`")),
    }
}

fn invalid(key: &str, value: &str, expected: &str) -> Error {
    Error::new(
        "config_invalid",
        format!("configuration key `{key}` is {value:?}, expected {expected}"),
    )
}
