//! Messages customers send: the IM server's push to the configured webhook in WeChat's JSON
//! mode, signed as WeChat signs its server pushes.
//!
//! The push is `POST <url>?signature=<s>&timestamp=<unix seconds>&nonce=<digits>` with the
//! body `{"ToUserName","FromUserName","CreateTime","MsgType":"text","Content","MsgId"}`,
//! where `s` is the lower-case hex SHA-1 of the token, the timestamp and the nonce sorted as
//! strings and concatenated; the token is the webhook `secret`. The signature covers no
//! part of the body, exactly as in WeChat's plain-text mode. Without a secret the query
//! carries no `signature`.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha1::{Digest, Sha1};

use super::im::is_openid;
use crate::error::ApiError;
use crate::webhook::{self, Delivery, WebhookConfig, WebhookTarget};

/// The official account's id, the `ToUserName` of every push.
pub(super) const ACCOUNT_ID: &str = "gh_sandbox";

/// `POST /__sandbox/im/inbound`: a customer's message to push.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Inbound {
    from: String,
    text: String,
    /// WeChat's 64-bit message id; a random one when absent. Give the same id twice to play
    /// a retried push.
    #[serde(default)]
    msg_id: Option<u64>,
}

/// What became of a push.
#[derive(Debug, Serialize)]
pub(super) struct Pushed {
    msg_id: u64,
    create_time: u64,
    delivery: Delivery,
}

/// WeChat's signature: hex SHA-1 of `token`, `timestamp` and `nonce` sorted and concatenated.
pub(super) fn signature(token: &str, timestamp: &str, nonce: &str) -> String {
    let mut parts = [token, timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// Pushes `inbound` to the webhook target and reports how the receiver answered.
pub(super) async fn push(target: &WebhookTarget, inbound: Inbound) -> Result<Pushed, ApiError> {
    if !is_openid(&inbound.from) {
        return Err(ApiError::invalid_param(
            "from",
            "from must be an openid: o followed by 10 to 40 letters, digits, '_' or '-'",
        ));
    }
    if inbound.text.trim().is_empty() {
        return Err(ApiError::invalid_param("text", "text must not be blank"));
    }
    let WebhookConfig {
        url: Some(url),
        secret,
    } = target.config()
    else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webhook_not_configured",
            "no webhook URL is set: PUT /__sandbox/webhook {\"url\": …, \"secret\": <token>} first",
        ));
    };
    let msg_id = inbound.msg_id.unwrap_or_else(new_msg_id);
    let create_time = super::now();
    let body = json!({
        "ToUserName": ACCOUNT_ID,
        "FromUserName": inbound.from,
        "CreateTime": create_time,
        "MsgType": "text",
        "Content": inbound.text,
        "MsgId": msg_id,
    })
    .to_string();
    let signed_url = signed_url(&url, secret.as_deref(), create_time);
    let request = webhook::client()
        .post(&signed_url)
        .header("content-type", "application/json")
        .body(body);
    let delivery = target.send(&signed_url, request).await;
    Ok(Pushed {
        msg_id,
        create_time,
        delivery,
    })
}

/// `url` with WeChat's `signature`, `timestamp` and `nonce` query parameters.
fn signed_url(url: &str, token: Option<&str>, timestamp: u64) -> String {
    let timestamp = timestamp.to_string();
    let nonce = (rand::random::<u32>() % 900_000_000 + 100_000_000).to_string();
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut signed = format!("{url}{separator}timestamp={timestamp}&nonce={nonce}");
    if let Some(token) = token {
        signed.push_str("&signature=");
        signed.push_str(&signature(token, &timestamp, &nonce));
    }
    signed
}

/// A random id below 2^53, so every JSON reader keeps it exact.
fn new_msg_id() -> u64 {
    rand::random::<u64>() % 8_000_000_000_000_000 + 1_000_000_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_sha1_of_the_sorted_parts() {
        let expected = hex::encode(Sha1::digest(b"1409304348nonce123token"));
        assert_eq!(signature("token", "1409304348", "nonce123"), expected);
        assert_eq!(signature("nonce123", "1409304348", "token"), expected);
    }

    #[test]
    fn the_signed_url_keeps_an_existing_query() {
        let signed = signed_url("http://h/hook?tenant=a", Some("t"), 7);
        assert!(
            signed.starts_with("http://h/hook?tenant=a&timestamp=7&nonce="),
            "{signed}"
        );
        assert!(signed.contains("&signature="), "{signed}");
        assert!(!signed_url("http://h/hook", None, 7).contains("signature"));
    }
}
