//! The `im` hook: customers' IM messages pushed by the gateway the way WeChat pushes to a
//! server in JSON mode.
//!
//! The request carries `signature`, `timestamp` and `nonce` in its query, where `signature`
//! is the hex SHA-1 of the token (the secret `im_token`), the timestamp and the nonce sorted
//! as strings and concatenated. As in WeChat's plain-text mode the signature does not cover
//! the body, so the timestamp must be recent. A `GET` with `echostr` is WeChat's check of a
//! new server URL and is answered with the `echostr`; a `POST` is a message, answered
//! `success`. Text messages become `im.message_received`; other message types are
//! acknowledged and dropped.

use serde_json::Value;
use sha1::{Digest, Sha1};
use switchboard_sdk::{
    Deserialize, Error, Event, Serialize, WebhookOutcome, config, http, signature,
};

use crate::conversation::{self, Entry, Party};
use crate::{MESSAGE_RECEIVED, now_s};

/// How far a push's timestamp may be from now, against replays.
const TIMESTAMP_TOLERANCE_S: u64 = 300;

/// Handles one request to the `im` hook.
pub(crate) fn receive(request: &http::Request) -> Result<WebhookOutcome, Error> {
    verify(request)?;
    if request.method.eq_ignore_ascii_case("GET") {
        return echo(request);
    }
    let push: Push = serde_json::from_slice(&request.body).map_err(|e| {
        Error::new(
            "payload_invalid",
            format!("the body is not a WeChat JSON message: {e}"),
        )
    })?;
    if push.msg_type != "text" {
        return Ok(acknowledge(Vec::new()));
    }
    let event = received(push)?;
    Ok(acknowledge(vec![event]))
}

/// Checks WeChat's signature over the token, `timestamp` and `nonce`, then that the
/// timestamp is recent.
fn verify(request: &http::Request) -> Result<(), Error> {
    let token = config::require_secret("im_token")?;
    let given = request.query_param("signature").unwrap_or_default();
    let timestamp = request.query_param("timestamp").unwrap_or_default();
    let nonce = request.query_param("nonce").unwrap_or_default();
    if given.is_empty() {
        return Err(Error::new(
            "signature_missing",
            "the request carries no `signature` query parameter; the gateway must sign its pushes",
        ));
    }
    let expected = wechat_signature(&token, &timestamp, &nonce);
    if !signature::constant_time_eq(expected.as_bytes(), given.to_ascii_lowercase().as_bytes()) {
        return Err(Error::new(
            "signature_invalid",
            "the signature does not match SHA-1 of the sorted token, timestamp and nonce; check the secret `im_token`",
        ));
    }
    let age = timestamp
        .parse::<u64>()
        .map_or(u64::MAX, |sent| now_s().abs_diff(sent));
    if age > TIMESTAMP_TOLERANCE_S {
        return Err(Error::new(
            "signature_expired",
            format!("the timestamp `{timestamp}` is more than {TIMESTAMP_TOLERANCE_S} s from now"),
        ));
    }
    Ok(())
}

/// Lower-case hex SHA-1 of `token`, `timestamp` and `nonce` sorted and concatenated.
fn wechat_signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// WeChat's URL check: answer the `echostr` as sent.
fn echo(request: &http::Request) -> Result<WebhookOutcome, Error> {
    let echostr = request.query_param("echostr").ok_or_else(|| {
        Error::new(
            "payload_invalid",
            "a GET to the hook is a URL check and must carry `echostr`",
        )
    })?;
    Ok(WebhookOutcome {
        response: text_response(echostr),
        events: Vec::new(),
    })
}

/// `200 success`, the reply WeChat expects, with the events the push carried.
fn acknowledge(events: Vec<Event>) -> WebhookOutcome {
    WebhookOutcome {
        response: text_response("success".to_owned()),
        events,
    }
}

fn text_response(body: String) -> http::Response {
    http::Response::new(200)
        .header("content-type", "text/plain; charset=utf-8")
        .body(body.into_bytes())
}

/// A pushed message, in WeChat's field names.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Push {
    from_user_name: String,
    create_time: u64,
    msg_type: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    msg_id: Option<Value>,
}

/// The data of `im.message_received`.
#[derive(Serialize)]
struct Received {
    message_id: String,
    from: String,
    text: String,
    time: u64,
    channel: &'static str,
    context: Vec<Entry>,
}

/// Adds a text message to its conversation and makes it an event.
fn received(push: Push) -> Result<Event, Error> {
    let missing = |field: &str| {
        Error::new(
            "payload_invalid",
            format!("a text message must carry `{field}`"),
        )
    };
    let message_id = match push.msg_id {
        Some(Value::Number(id)) => id.to_string(),
        Some(Value::String(id)) if !id.is_empty() => id,
        _ => return Err(missing("MsgId")),
    };
    let text = push.content.ok_or_else(|| missing("Content"))?;
    if push.from_user_name.is_empty() {
        return Err(missing("FromUserName"));
    }
    let entry = Entry {
        from: Party::Customer,
        text: text.clone(),
        time: push.create_time,
        message_id: Some(message_id.clone()),
    };
    let context = conversation::append(&push.from_user_name, entry)?;
    let data = Received {
        message_id: message_id.clone(),
        from: push.from_user_name.clone(),
        text,
        time: push.create_time,
        channel: "im",
        context,
    };
    let data = serde_json::to_string(&data)
        .map_err(|e| Error::new("payload_invalid", format!("cannot encode the message: {e}")))?;
    Ok(Event {
        id: format!("im:{message_id}"),
        kind: MESSAGE_RECEIVED.to_owned(),
        subject: Some(push.from_user_name),
        time_ms: push.create_time.saturating_mul(1000),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_sorts_its_parts_as_strings() {
        let expected = hex::encode(Sha1::digest(b"1409304348abc9token"));
        assert_eq!(wechat_signature("token", "1409304348", "abc9"), expected);
        assert_eq!(wechat_signature("abc9", "token", "1409304348"), expected);
    }
}
