//! Each IM conversation's recent messages, kept in kv under `conversation:<openid>`: the last
//! `context_size` messages, oldest first, from the customer and from agents.
//!
//! A customer's message is added once per `message_id`, so a push the gateway repeats does
//! not show twice. Two messages of one conversation written at the same instant may race:
//! the kv store has no compare-and-swap, and the later write wins.

use switchboard_sdk::{Deserialize, Error, JsonSchema, Serialize, config, kv};

/// The most messages `context_size` may keep.
const MAX_CONTEXT_SIZE: usize = 100;

/// Who wrote a message.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Party {
    Customer,
    Agent,
}

/// One message of a conversation.
#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Entry {
    /// `customer` or `agent`.
    pub(crate) from: Party,
    /// The text; for media `[image] <url>` or `[file] <url>`, for templates
    /// `[template <id>] field=value, …`.
    pub(crate) text: String,
    /// When it was sent, in Unix seconds.
    pub(crate) time: u64,
    /// The gateway's id of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) message_id: Option<String>,
}

/// A conversation's recent messages.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Conversation {
    /// The customer's openid.
    pub(crate) openid: String,
    /// At most `context_size` messages, oldest first.
    pub(crate) messages: Vec<Entry>,
}

/// The conversation with `openid`; empty when nothing was exchanged yet.
pub(crate) fn read(openid: &str) -> Result<Conversation, Error> {
    let size = context_size()?;
    let mut messages = stored(openid)?;
    keep_last(&mut messages, size);
    Ok(Conversation {
        openid: openid.to_owned(),
        messages,
    })
}

/// Adds `entry` to the conversation with `openid`, unless a message of the same party with
/// the same id is already there, and returns the messages kept.
pub(crate) fn append(openid: &str, entry: Entry) -> Result<Vec<Entry>, Error> {
    let size = context_size()?;
    let mut messages = stored(openid)?;
    let repeated = entry.message_id.is_some()
        && messages
            .iter()
            .any(|kept| kept.from == entry.from && kept.message_id == entry.message_id);
    if !repeated {
        messages.push(entry);
    }
    keep_last(&mut messages, size);
    if !repeated {
        kv::set_json(&key(openid), &messages, None)?;
    }
    Ok(messages)
}

fn stored(openid: &str) -> Result<Vec<Entry>, Error> {
    Ok(kv::get_json(&key(openid))?.unwrap_or_default())
}

fn keep_last(messages: &mut Vec<Entry>, size: usize) {
    let excess = messages.len().saturating_sub(size);
    messages.drain(..excess);
}

fn key(openid: &str) -> String {
    format!("conversation:{openid}")
}

/// How many messages a conversation keeps: the config key `context_size`, 1 to 100.
fn context_size() -> Result<usize, Error> {
    let raw = config::require("context_size")?;
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|size| (1..=MAX_CONTEXT_SIZE).contains(size))
        .ok_or_else(|| {
            Error::new(
                "config_invalid",
                format!("`context_size` must be a whole number from 1 to {MAX_CONTEXT_SIZE}, not `{raw}`"),
            )
        })
}
