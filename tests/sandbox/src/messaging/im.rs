//! IM customer-service messages in the style of WeChat's `message/custom/send`: the request
//! and its checks, the `errcode` answers, and the outbox the customer's phone shows.
//!
//! Failures keep HTTP 200 and carry WeChat's `errcode`/`errmsg`, as WeChat does; only a
//! missing or wrong API key is an HTTP 401 (the sandbox's shared error shape).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use serde_json::{Map, Value};

use super::templates;

/// The longest text message, in bytes of UTF-8, as WeChat counts.
pub(super) const MAX_TEXT_BYTES: usize = 2048;

/// WeChat's answer when a request fails: an `errcode` and its `errmsg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct WeChatError {
    pub(super) errcode: i32,
    pub(super) errmsg: String,
}

impl WeChatError {
    fn new(errcode: i32, errmsg: impl Into<String>) -> Self {
        Self {
            errcode,
            errmsg: errmsg.into(),
        }
    }
}

/// Whether `id` looks like an openid of this account: `o` followed by 10 to 40 letters,
/// digits, `_` or `-`. Any other recipient is unknown to the account.
pub(super) fn is_openid(id: &str) -> bool {
    id.strip_prefix('o').is_some_and(|rest| {
        (10..=40).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    })
}

/// A message that passed every check, as the customer will see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Outgoing {
    pub(super) touser: String,
    pub(super) msgtype: &'static str,
    /// The text shown: the text itself, the media URL, or the rendered template.
    pub(super) content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) media_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) data: Option<BTreeMap<String, String>>,
}

/// Checks a send request body, answering the first fault with its WeChat `errcode`.
pub(super) fn parse(body: &[u8]) -> Result<Outgoing, WeChatError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(WeChatError::new(
            47001,
            "data format error: the body must be a JSON object",
        ));
    };
    let touser = fields
        .get("touser")
        .and_then(Value::as_str)
        .filter(|id| is_openid(id))
        .ok_or_else(|| {
            WeChatError::new(
                40003,
                "invalid openid: touser is not a user of this account",
            )
        })?
        .to_owned();
    let msgtype = fields.get("msgtype").and_then(Value::as_str).unwrap_or("");
    let (msgtype, mut message) = match msgtype {
        "text" => ("text", text(&fields)?),
        "image" => ("image", media(&fields, "image")?),
        "file" => ("file", media(&fields, "file")?),
        "template" => ("template", template(&fields)?),
        other => {
            return Err(WeChatError::new(
                40008,
                format!(
                    "invalid message type {other:?}: msgtype must be text, image, file or template"
                ),
            ));
        }
    };
    message.touser = touser;
    message.msgtype = msgtype;
    Ok(message)
}

/// The field `name` of the object under `section` (`text.content`, `image.media_url`, …).
fn nested<'a>(fields: &'a Map<String, Value>, section: &str, name: &str) -> Option<&'a Value> {
    fields.get(section)?.get(name)
}

fn outgoing(content: String) -> Outgoing {
    Outgoing {
        touser: String::new(),
        msgtype: "",
        content,
        media_url: None,
        template_id: None,
        data: None,
    }
}

fn text(fields: &Map<String, Value>) -> Result<Outgoing, WeChatError> {
    let content = nested(fields, "text", "content")
        .and_then(Value::as_str)
        .filter(|content| !content.trim().is_empty())
        .ok_or_else(|| {
            WeChatError::new(44002, "empty content: text.content is missing or blank")
        })?;
    if content.len() > MAX_TEXT_BYTES {
        return Err(WeChatError::new(
            45002,
            format!(
                "content size out of limit: {} bytes, at most {MAX_TEXT_BYTES}",
                content.len()
            ),
        ));
    }
    Ok(outgoing(content.to_owned()))
}

fn media(fields: &Map<String, Value>, kind: &str) -> Result<Outgoing, WeChatError> {
    let url = nested(fields, kind, "media_url")
        .and_then(Value::as_str)
        .filter(|url| is_http_url(url))
        .ok_or_else(|| {
            WeChatError::new(
                40007,
                format!("invalid media: {kind}.media_url must be an http:// or https:// URL"),
            )
        })?;
    Ok(Outgoing {
        media_url: Some(url.to_owned()),
        ..outgoing(url.to_owned())
    })
}

/// Whether `url` is `http://` or `https://` followed by a host.
pub(super) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.contains(char::is_whitespace)
    })
}

fn template(fields: &Map<String, Value>) -> Result<Outgoing, WeChatError> {
    let id = nested(fields, "template", "template_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    let template = templates::find(id).ok_or_else(|| {
        WeChatError::new(
            40037,
            format!(
                "invalid template_id {id:?}; known: {}",
                templates::known_ids()
            ),
        )
    })?;
    let data = template_data(nested(fields, "template", "data"));
    if let Some(field) = template.missing_field(&data) {
        return Err(WeChatError::new(
            47003,
            format!("argument invalid! data.{field}.value is missing"),
        ));
    }
    Ok(Outgoing {
        template_id: Some(template.id.to_owned()),
        content: template.render(&data),
        data: Some(data),
        ..outgoing(String::new())
    })
}

/// WeChat's template data, `{"field": {"value": "…"}}`, as plain field values; entries of
/// another shape are left out, so a required one reads as missing.
fn template_data(data: Option<&Value>) -> BTreeMap<String, String> {
    data.and_then(Value::as_object)
        .map(|data| {
            data.iter()
                .filter_map(|(field, entry)| {
                    let value = entry.get("value")?.as_str()?;
                    Some((field.clone(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A message as delivered, with its id and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Delivered {
    pub(super) msgid: String,
    #[serde(flatten)]
    pub(super) message: Outgoing,
    /// Unix seconds.
    pub(super) time: u64,
}

/// Every IM message delivered, oldest first.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    sent: Mutex<Vec<Delivered>>,
}

impl Outbox {
    /// Delivers `message` at `time` and returns its new `msgid`.
    pub(super) fn deliver(&self, message: Outgoing, time: u64) -> String {
        let msgid = new_msgid();
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Delivered {
                msgid: msgid.clone(),
                message,
                time,
            });
        msgid
    }

    /// The messages delivered to `to`, or to anyone when `to` is none.
    pub(super) fn to(&self, to: Option<&str>) -> Vec<Delivered> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|delivered| to.is_none_or(|to| delivered.message.touser == to))
            .cloned()
            .collect()
    }
}

/// A WeChat-like numeric message id, written as a string.
fn new_msgid() -> String {
    (rand::random::<u64>() % 9_000_000_000_000_000 + 1_000_000_000_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errcode(body: Value) -> Option<i32> {
        parse(body.to_string().as_bytes()).err().map(|e| e.errcode)
    }

    const USER: &str = "oUser_1234567";

    #[test]
    fn openids_are_o_and_ten_to_forty_safe_characters() {
        assert!(is_openid("o1234567890"));
        assert!(is_openid(&format!("o{}", "a".repeat(40))));
        assert!(!is_openid("o123456789"));
        assert!(!is_openid(&format!("o{}", "a".repeat(41))));
        assert!(!is_openid("x1234567890"));
        assert!(!is_openid("o12345 67890"));
    }

    #[test]
    fn each_fault_has_its_wechat_errcode() {
        let text = |content: &str| json!({"touser": USER, "msgtype": "text", "text": {"content": content}});
        assert_eq!(errcode(json!([1])), Some(47001));
        assert_eq!(
            errcode(json!({"touser": "nobody", "msgtype": "text"})),
            Some(40003)
        );
        assert_eq!(
            errcode(json!({"touser": USER, "msgtype": "video"})),
            Some(40008)
        );
        assert_eq!(errcode(text("  ")), Some(44002));
        assert_eq!(errcode(text(&"字".repeat(683))), Some(45002));
        assert_eq!(errcode(text(&"字".repeat(682))), None);
        assert_eq!(
            errcode(
                json!({"touser": USER, "msgtype": "image", "image": {"media_url": "ftp://x/a.png"}})
            ),
            Some(40007)
        );
        assert_eq!(
            errcode(
                json!({"touser": USER, "msgtype": "file", "file": {"media_url": "https:///a"}})
            ),
            Some(40007)
        );
        assert_eq!(
            errcode(
                json!({"touser": USER, "msgtype": "template", "template": {"template_id": "x"}})
            ),
            Some(40037)
        );
        assert_eq!(
            errcode(json!({"touser": USER, "msgtype": "template", "template": {
                "template_id": "ticket_status", "data": {"ticket_id": {"value": "T-1"}, "status": "solved"}}})),
            Some(47003)
        );
    }

    #[test]
    fn a_template_message_shows_its_rendered_text() {
        let parsed = parse(
            json!({"touser": USER, "msgtype": "template", "template": {"template_id": "ticket_status",
                "data": {"ticket_id": {"value": "T-1"}, "status": {"value": "solved"}}}})
            .to_string()
            .as_bytes(),
        );
        assert_eq!(
            parsed.map(|message| message.content),
            Ok("Your ticket T-1 is now solved.".to_owned())
        );
    }
}
