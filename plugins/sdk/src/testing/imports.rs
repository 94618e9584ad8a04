//! The host imports as a [`TestHost`](super::TestHost) answers them: the
//! state of the host running the current call on this thread.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{EmittedEvent, State, StoredValue};
use crate::log::Level;
use crate::{Error, http};

/// Largest key, as on the real host.
const MAX_KEY_BYTES: usize = 512;
/// Largest value, as on the real host.
const MAX_VALUE_BYTES: usize = 1 << 20;
/// Largest event payload, as on the real host.
const MAX_EVENT_DATA_BYTES: usize = 256 << 10;

thread_local! {
    static ACTIVE: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// Makes `state` answer this thread's imports until the guard drops.
pub(super) fn activate(state: Rc<RefCell<State>>) -> ActiveGuard {
    let previous = ACTIVE.with(|active| active.replace(Some(state)));
    ActiveGuard { previous }
}

/// Restores the host that was active before, if any.
pub(super) struct ActiveGuard {
    previous: Option<Rc<RefCell<State>>>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ACTIVE.with(|active| active.replace(previous));
    }
}

/// The host running the current call; connector code called directly, not
/// through a `TestHost`, gets `host_unavailable`.
fn active() -> Result<Rc<RefCell<State>>, Error> {
    ACTIVE.with(|active| active.borrow().clone()).ok_or_else(|| {
        Error::new(
            "host_unavailable",
            "connector code ran outside a host: call it through switchboard_sdk::testing::TestHost",
        )
    })
}

pub(crate) fn http_send(request: http::Request) -> Result<http::Response, Error> {
    let state = active()?;
    let granted = state
        .borrow()
        .grants
        .as_ref()
        .is_none_or(|grants| grants.allows_url(&request.url));
    if !granted {
        return Err(Error::new(
            "host_not_allowed",
            format!(
                "`{}` is not in this connector's allowed_hosts",
                super::manifest::authority(&request.url).unwrap_or("(no host)")
            ),
        ));
    }
    let recorded = {
        let mut state = state.borrow_mut();
        let State {
            upstream, secrets, ..
        } = &mut *state;
        upstream.take(&request, secrets)
    };
    let response = match recorded {
        Some(response) => response,
        None => {
            let live = state.borrow().upstream.live_agent();
            match live {
                Some(agent) => super::upstream::send(&agent, &request)?,
                None => {
                    return Err(Error::new(
                        "http_failed",
                        format!(
                            "no recorded response for {} {}; add one with TestHost::respond or go live",
                            request.method, request.url
                        ),
                    ));
                }
            }
        }
    };
    state
        .borrow_mut()
        .exchanges
        .push(super::Exchange::new(request, response.clone()));
    Ok(response)
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\0') {
        return Err(Error::new(
            "kv_key_invalid",
            format!("keys are 1-{MAX_KEY_BYTES} bytes without NUL"),
        ));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::new(
            "kv_value_too_large",
            format!(
                "values are at most {MAX_VALUE_BYTES} bytes; this one has {}",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn stored(value: &[u8], ttl_ms: Option<u64>) -> StoredValue {
    StoredValue {
        value: value.to_vec(),
        expires: ttl_ms.map(|ms| Instant::now() + Duration::from_millis(ms)),
    }
}

pub(crate) fn kv_get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    check_key(key)?;
    let state = active()?;
    let state = state.borrow();
    Ok(state
        .kv
        .get(key)
        .filter(|stored| stored.is_live())
        .map(|stored| stored.value.clone()))
}

pub(crate) fn kv_set(key: &str, value: &[u8], ttl_ms: Option<u64>) -> Result<(), Error> {
    check_key(key)?;
    check_value(value)?;
    active()?
        .borrow_mut()
        .kv
        .insert(key.to_owned(), stored(value, ttl_ms));
    Ok(())
}

pub(crate) fn kv_set_if_absent(
    key: &str,
    value: &[u8],
    ttl_ms: Option<u64>,
) -> Result<bool, Error> {
    check_key(key)?;
    check_value(value)?;
    let state = active()?;
    let mut state = state.borrow_mut();
    if state.kv.get(key).is_some_and(StoredValue::is_live) {
        return Ok(false);
    }
    state.kv.insert(key.to_owned(), stored(value, ttl_ms));
    Ok(true)
}

pub(crate) fn kv_delete(key: &str) -> Result<(), Error> {
    check_key(key)?;
    active()?.borrow_mut().kv.remove(key);
    Ok(())
}

pub(crate) fn config_get(key: &str) -> Option<String> {
    let state = active().ok()?;
    let state = state.borrow();
    let declared = state
        .grants
        .as_ref()
        .is_none_or(|grants| grants.config.iter().any(|k| k == key));
    declared.then(|| state.config.get(key).cloned()).flatten()
}

pub(crate) fn config_secret(name: &str) -> Option<String> {
    let state = active().ok()?;
    let state = state.borrow();
    let declared = state
        .grants
        .as_ref()
        .is_none_or(|grants| grants.secrets.iter().any(|k| k == name));
    declared.then(|| state.secrets.get(name).cloned()).flatten()
}

pub(crate) fn log(level: Level, message: &str) {
    if let Ok(state) = active() {
        state.borrow_mut().logs.push((level, message.to_owned()));
    }
}

pub(crate) fn events_emit(kind: &str, subject: Option<&str>, data: &str) -> Result<String, Error> {
    let well_formed = !kind.is_empty()
        && kind.len() <= 128
        && kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !well_formed {
        return Err(Error::new(
            "event_invalid",
            format!("`{kind}` is not an event kind: 1-128 ASCII letters, digits, `.`, `_`, `-`"),
        ));
    }
    if kind.starts_with("switchboard.") {
        return Err(Error::new(
            "event_invalid",
            "kinds starting with `switchboard.` are the host's own",
        ));
    }
    if data.len() > MAX_EVENT_DATA_BYTES {
        return Err(Error::new(
            "event_invalid",
            format!("data of `{kind}` is larger than {MAX_EVENT_DATA_BYTES} bytes"),
        ));
    }
    let data: Value = serde_json::from_str(data).map_err(|e| {
        Error::new(
            "event_invalid",
            format!("data of `{kind}` is not JSON: {e}"),
        )
    })?;
    let state = active()?;
    let mut state = state.borrow_mut();
    let id = format!("evt-{}", state.events.len() + 1);
    state.events.push(EmittedEvent {
        id: id.clone(),
        kind: kind.to_owned(),
        subject: subject.map(str::to_owned),
        data,
    });
    Ok(id)
}
