//! What the connector remembers about an agent between calls, in kv: the click debounce
//! (`click:<cno>`) and the in-call mark (`call:<cno>`).
//!
//! Both expire on their own, so a lost call-end push costs at most the guard time.

use std::time::Duration;

use switchboard_sdk::{Deserialize, Error, Serialize, kv};

/// An agent's call that has not ended yet, as far as the connector knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallMark {
    /// Clink's id of the call, known for `sync` calls only.
    pub(crate) unique_id: Option<String>,
    /// Who was called.
    pub(crate) customer_number: String,
}

/// Claims a click for agent `cno`: false when another click came within `window`. A
/// zero window claims every click.
pub(crate) fn claim_click(cno: &str, window: Duration) -> Result<bool, Error> {
    if window.is_zero() {
        return Ok(true);
    }
    kv::set_if_absent(&format!("click:{cno}"), b"1", Some(window))
}

/// The agent's call that has not ended, if any.
pub(crate) fn current_call(cno: &str) -> Result<Option<CallMark>, Error> {
    kv::get_json(&call_key(cno))
}

/// Marks agent `cno` as in `call` for at most `guard`; a zero guard marks nothing.
pub(crate) fn mark_call(cno: &str, call: &CallMark, guard: Duration) -> Result<(), Error> {
    if guard.is_zero() {
        return Ok(());
    }
    kv::set_json(&call_key(cno), call, Some(guard))
}

/// Clears agent `cno`'s in-call mark when it is for `unique_id` (or for a call whose id
/// the connector never learned); a push for an older call leaves a newer call's mark.
/// Returns whether a mark was cleared.
pub(crate) fn end_call(cno: &str, unique_id: &str) -> Result<bool, Error> {
    match current_call(cno)? {
        Some(mark) if mark.unique_id.as_deref().is_none_or(|id| id == unique_id) => {
            kv::delete(&call_key(cno))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Clears agent `cno`'s in-call mark whatever call it is for; returns whether there was one.
pub(crate) fn release(cno: &str) -> Result<bool, Error> {
    let marked = current_call(cno)?.is_some();
    kv::delete(&call_key(cno))?;
    Ok(marked)
}

fn call_key(cno: &str) -> String {
    format!("call:{cno}")
}
