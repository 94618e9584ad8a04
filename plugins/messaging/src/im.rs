//! Sending to IM customers through the gateway's WeChat-style customer-service API:
//! `POST /v1/im/messages` `{"touser","msgtype",…}`, answered `{"errcode","errmsg","msgid"}`
//! with HTTP 200 even for failures. What was sent joins the conversation as the agent's.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard_sdk::{Context, Deserialize, Error, JsonSchema, Serialize, config, http, log};

use crate::conversation::{self, Entry, Party};
use crate::{answered, base_url, now_s};

/// A text for an IM customer.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendText {
    /// The customer's openid.
    to: String,
    /// The text; at most 2048 bytes of UTF-8.
    text: String,
}

/// An approved template message for an IM customer.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendTemplate {
    /// The customer's openid.
    to: String,
    /// The template, such as `ticket_status` or `payment_reminder`.
    template_id: String,
    /// The template's fields and their values, such as `{"ticket_id": "T-1", "status": "solved"}`.
    data: BTreeMap<String, String>,
}

/// What kind of media a message carries.
#[derive(Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MediaKind {
    Image,
    File,
}

impl MediaKind {
    fn msgtype(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::File => "file",
        }
    }
}

/// An image or a file for an IM customer, by URL.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendMedia {
    /// The customer's openid.
    to: String,
    /// Where the gateway fetches the media: an `http://` or `https://` URL.
    media_url: String,
    /// `image` or `file`.
    kind: MediaKind,
}

/// A message the gateway accepted.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Sent {
    /// The gateway's id of the message.
    message_id: String,
}

pub(crate) fn send_text(_ctx: &Context, input: SendText) -> Result<Sent, Error> {
    recipient(&input.to)?;
    if input.text.trim().is_empty() {
        return Err(Error::new("content_empty", "`text` must not be blank"));
    }
    let body = json!({"touser": input.to, "msgtype": "text", "text": {"content": input.text}});
    send(&input.to, &body, input.text.clone())
}

pub(crate) fn send_template(_ctx: &Context, input: SendTemplate) -> Result<Sent, Error> {
    recipient(&input.to)?;
    let data: BTreeMap<&str, Value> = input
        .data
        .iter()
        .map(|(field, value)| (field.as_str(), json!({ "value": value })))
        .collect();
    let body = json!({
        "touser": input.to,
        "msgtype": "template",
        "template": {"template_id": input.template_id, "data": data},
    });
    let fields: Vec<String> = input
        .data
        .iter()
        .map(|(field, value)| format!("{field}={value}"))
        .collect();
    let shown = format!("[template {}] {}", input.template_id, fields.join(", "));
    send(&input.to, &body, shown)
}

pub(crate) fn send_media(_ctx: &Context, input: SendMedia) -> Result<Sent, Error> {
    recipient(&input.to)?;
    if !is_http_url(&input.media_url) {
        return Err(Error::new(
            "media_invalid",
            "`media_url` must be an http:// or https:// URL with a host",
        ));
    }
    let msgtype = input.kind.msgtype();
    let body =
        json!({"touser": input.to, "msgtype": msgtype, msgtype: {"media_url": input.media_url}});
    send(&input.to, &body, format!("[{msgtype}] {}", input.media_url))
}

fn recipient(to: &str) -> Result<(), Error> {
    if to.trim().is_empty() {
        return Err(Error::new(
            "recipient_invalid",
            "`to` must be an openid, not blank",
        ));
    }
    Ok(())
}

/// Whether `url` is `http://` or `https://` followed by a host.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

/// Sends `body` and adds `shown` to the conversation with `to` as the agent's message.
fn send(to: &str, body: &Value, shown: String) -> Result<Sent, Error> {
    let response = http::post(format!("{}/v1/im/messages", base_url()?))
        .bearer(&config::require_secret("api_key")?)
        .json(body)?
        .send()?;
    let message_id = read_reply(&response)?;
    let entry = Entry {
        from: Party::Agent,
        text: shown,
        time: now_s(),
        message_id: Some(message_id.clone()),
    };
    // The message is out: failing now would make the caller send it again.
    if let Err(error) = conversation::append(to, entry) {
        log::warn(format!(
            "message {message_id} was sent but not added to the conversation: {error}"
        ));
    }
    Ok(Sent { message_id })
}

/// The gateway's answer.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(default)]
    msgid: Option<Value>,
}

/// The message id of an accepted message, or the gateway's refusal as an error.
fn read_reply(response: &http::Response) -> Result<String, Error> {
    let reply: Reply = answered(response)?;
    if reply.errcode != 0 {
        return Err(wechat_error(reply.errcode, &reply.errmsg));
    }
    match reply.msgid {
        Some(Value::String(id)) if !id.is_empty() => Ok(id),
        Some(Value::Number(id)) => Ok(id.to_string()),
        _ => Err(Error::new(
            "upstream_invalid_response",
            "the gateway accepted the message but returned no msgid",
        )),
    }
}

/// The connector error for a WeChat `errcode`.
fn wechat_error(errcode: i64, errmsg: &str) -> Error {
    let message = format!("the gateway refused the message: {errcode} {errmsg}");
    match errcode {
        40003 => Error::new("recipient_invalid", message),
        44002 => Error::new("content_empty", message),
        45002 => Error::new("content_too_long", message),
        40007 => Error::new("media_invalid", message),
        40037 => Error::new("template_unknown", message),
        47003 => Error::new("template_data_invalid", message),
        40008 | 47001 => Error::new("request_invalid", message),
        40001 | 41001 | 42001 => Error::new("authentication_failed", message),
        -1 => Error::retryable("upstream_unavailable", message),
        _ => Error::new("upstream_error", message),
    }
}
