//! The messaging gateway driven over HTTP, as a connector and a customer would.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::test_support::{get_json, post_json, put_json, start};
use crate::{MESSAGING_API_KEY, Sandbox, Subscriber};

const KEY: Option<&str> = Some(MESSAGING_API_KEY);
const USER: &str = "oCustomer_0001";

async fn send_im(sandbox: &Sandbox, body: Value) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}/v1/im/messages", sandbox.url(crate::Provider::Messaging));
    post_json(&url, KEY, &body.to_string()).await
}

async fn send_sms(sandbox: &Sandbox, body: Value) -> anyhow::Result<(u16, Value)> {
    let url = format!(
        "{}/v1/sms/messages",
        sandbox.url(crate::Provider::Messaging)
    );
    post_json(&url, KEY, &body.to_string()).await
}

async fn control_get(sandbox: &Sandbox, path: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", sandbox.url(crate::Provider::Messaging));
    let (status, body) = get_json(&url, None).await?;
    anyhow::ensure!(status == 200, "GET {path}: {status} {body}");
    Ok(body)
}

#[tokio::test]
async fn text_template_and_media_messages_reach_the_customer() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let sends = [
        json!({"touser": USER, "msgtype": "text", "text": {"content": "您好, how can I help?"}}),
        json!({"touser": USER, "msgtype": "image", "image": {"media_url": "https://cdn.example.com/a.png"}}),
        json!({"touser": USER, "msgtype": "file", "file": {"media_url": "http://cdn.example.com/manual.pdf"}}),
        json!({"touser": USER, "msgtype": "template", "template": {"template_id": "payment_reminder",
            "data": {"order_id": {"value": "A-1"}, "amount": {"value": "12.50 CNY"}, "url": {"value": "https://pay.example.com/x"}}}}),
    ];
    let mut ids = Vec::new();
    for body in sends {
        let (status, reply) = send_im(&sandbox, body).await?;
        assert_eq!(
            (status, reply["errcode"].as_i64(), reply["errmsg"].as_str()),
            (200, Some(0), Some("ok")),
            "{reply}"
        );
        ids.push(reply["msgid"].as_str().unwrap_or_default().to_owned());
    }
    send_im(
        &sandbox,
        json!({"touser": "oSomebody_else", "msgtype": "text", "text": {"content": "hi"}}),
    )
    .await?;

    let seen = control_get(&sandbox, &format!("/__sandbox/im/messages?to={USER}")).await?;
    let messages = seen["messages"].as_array().cloned().unwrap_or_default();
    let shown: Vec<(&str, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["msgid"].as_str().unwrap_or(""),
                m["msgtype"].as_str().unwrap_or(""),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (ids[0].as_str(), "text", "您好, how can I help?"),
            (ids[1].as_str(), "image", "https://cdn.example.com/a.png"),
            (ids[2].as_str(), "file", "http://cdn.example.com/manual.pdf"),
            (
                ids[3].as_str(),
                "template",
                "Please pay 12.50 CNY for order A-1: https://pay.example.com/x"
            ),
        ]
    );
    assert_eq!(messages[3]["template_id"], "payment_reminder");
    assert_eq!(messages[1]["media_url"], "https://cdn.example.com/a.png");
    assert!(
        messages
            .iter()
            .all(|m| m["touser"] == USER && m["time"].as_u64().is_some())
    );
    let everyone = control_get(&sandbox, "/__sandbox/im/messages").await?;
    assert_eq!(everyone["messages"].as_array().map(Vec::len), Some(5));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn im_failures_answer_http_200_with_wechat_errcodes() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let template = |data: Value| json!({"touser": USER, "msgtype": "template", "template": {"template_id": "ticket_status", "data": data}});
    for (body, errcode) in [
        (
            json!({"touser": "o123", "msgtype": "text", "text": {"content": "hi"}}),
            40003,
        ),
        (json!({"touser": USER, "msgtype": "voice"}), 40008),
        (
            json!({"touser": USER, "msgtype": "text", "text": {"content": ""}}),
            44002,
        ),
        (
            json!({"touser": USER, "msgtype": "text", "text": {"content": "a".repeat(2049)}}),
            45002,
        ),
        (
            json!({"touser": USER, "msgtype": "image", "image": {"media_url": "file:///etc/passwd"}}),
            40007,
        ),
        (
            json!({"touser": USER, "msgtype": "file", "file": {}}),
            40007,
        ),
        (
            json!({"touser": USER, "msgtype": "template", "template": {"template_id": "welcome"}}),
            40037,
        ),
        (template(json!({"ticket_id": {"value": "T-1"}})), 47003),
        (json!("not an object"), 47001),
    ] {
        let (status, reply) = send_im(&sandbox, body.clone()).await?;
        assert_eq!(
            (status, reply["errcode"].as_i64()),
            (200, Some(errcode)),
            "{body} → {reply}"
        );
        assert!(
            reply["errmsg"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
        assert!(reply.get("msgid").is_none(), "{reply}");
    }
    let (status, reply) = send_im(
        &sandbox,
        template(json!({"ticket_id": {"value": "T-1"}, "status": {"value": "solved"}})),
    )
    .await?;
    assert_eq!(
        (status, reply["errcode"].as_i64()),
        (200, Some(0)),
        "{reply}"
    );
    assert_eq!(
        control_get(&sandbox, "/__sandbox/im/messages").await?["messages"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_an_http_401_on_both_channels() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Messaging);
    for path in ["/v1/im/messages", "/v1/sms/messages"] {
        for key in [None, Some("sk_wrong"), Some(crate::PAYMENT_API_KEY)] {
            let (status, body) = post_json(&format!("{base}{path}"), key, "{}").await?;
            assert_eq!(
                (status, body["error"]["type"].as_str()),
                (401, Some("unauthorized")),
                "{path} {key:?}"
            );
        }
    }
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sms_are_counted_in_segments_and_shown_on_the_phone_with_their_signature()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    for (body, segments) in [
        (json!({"phone": "13800138000", "text": "a".repeat(160)}), 1),
        (
            json!({"phone": "+8613800138000", "text": "a".repeat(161)}),
            2,
        ),
        (
            json!({"phone": "8613800138000", "text": "字".repeat(71)}),
            2,
        ),
        (
            json!({"phone": "13800138000", "template_id": "ticket_status", "params": {"ticket_id": "T-9", "status": "solved"}, "sign_name": "Acme"}),
            1,
        ),
    ] {
        let (status, reply) = send_sms(&sandbox, body.clone()).await?;
        assert_eq!(
            (status, reply["code"].as_str(), reply["message"].as_str()),
            (200, Some("OK"), Some("OK")),
            "{reply}"
        );
        assert_eq!(reply["segments"], segments, "{body}");
        assert!(
            reply["message_id"]
                .as_str()
                .is_some_and(|id| id.ends_with("^0")),
            "{reply}"
        );
    }
    let phone = control_get(&sandbox, "/__sandbox/sms/messages?phone=%2B8613800138000").await?;
    let texts: Vec<&str> = phone["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(texts.len(), 4);
    assert_eq!(texts[3], "【Acme】Your ticket T-9 is now solved.");
    assert_eq!(phone["messages"][3]["template_id"], "ticket_status");
    assert_eq!(phone["messages"][3]["phone"], "13800138000");
    let other = control_get(&sandbox, "/__sandbox/sms/messages?phone=13900139000").await?;
    assert_eq!(other["messages"], json!([]));
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn sms_failures_answer_http_200_with_aliyun_codes() -> anyhow::Result<()> {
    let sandbox = start().await?;
    for (body, code) in [
        (
            json!({"phone": "12345678901", "text": "hi"}),
            "isv.MOBILE_NUMBER_ILLEGAL",
        ),
        (
            json!({"phone": "13800138000", "template_id": "ticket_status", "params": {"status": "open"}}),
            "isv.TEMPLATE_MISSING_PARAMETERS",
        ),
        (
            json!({"phone": "13800138000", "template_id": "nope"}),
            "isv.SMS_TEMPLATE_ILLEGAL",
        ),
        (json!({"phone": "13800138000"}), "isv.INVALID_PARAMETERS"),
        (
            json!({"phone": "13800138000", "text": "hi", "sign_name": ""}),
            "isv.SMS_SIGNATURE_ILLEGAL",
        ),
    ] {
        let (status, reply) = send_sms(&sandbox, body.clone()).await?;
        assert_eq!(
            (status, reply["code"].as_str()),
            (200, Some(code)),
            "{body} → {reply}"
        );
        assert!(reply.get("message_id").is_none(), "{reply}");
    }
    let account = format!(
        "{}/__sandbox/sms/account",
        sandbox.url(crate::Provider::Messaging)
    );
    assert_eq!(
        put_json(&account, r#"{"balance_exhausted": true}"#).await?,
        (200, json!({"balance_exhausted": true}))
    );
    let (_, reply) = send_sms(&sandbox, json!({"phone": "13800138000", "text": "hi"})).await?;
    assert_eq!(reply["code"], "isv.AMOUNT_NOT_ENOUGH");
    put_json(&account, r#"{"balance_exhausted": false}"#).await?;
    assert_eq!(
        control_get(&sandbox, "/__sandbox/sms/account").await?,
        json!({"balance_exhausted": false})
    );
    for _ in 0..5 {
        let (_, reply) = send_sms(&sandbox, json!({"phone": "13800138000", "text": "hi"})).await?;
        assert_eq!(reply["code"], "OK", "{reply}");
    }
    let (_, reply) = send_sms(&sandbox, json!({"phone": "+8613800138000", "text": "hi"})).await?;
    assert_eq!(reply["code"], "isv.BUSINESS_LIMIT_CONTROL", "{reply}");
    assert_eq!(
        control_get(&sandbox, "/__sandbox/sms/messages").await?["messages"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    sandbox.shutdown().await;
    Ok(())
}

/// The query parameters of a path-and-query.
fn query_of(uri: &str) -> HashMap<String, String> {
    uri.split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

#[tokio::test]
async fn a_customer_message_is_pushed_with_a_wechat_signature_the_receiver_can_verify()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let receiver = Subscriber::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let base = sandbox.url(crate::Provider::Messaging);
    let hook = format!("{}/v1/receive/im", receiver.url());
    put_json(
        &format!("{base}/__sandbox/webhook"),
        &json!({"url": hook, "secret": "wx-token"}).to_string(),
    )
    .await?;

    let inbound =
        json!({"from": USER, "text": "我的订单到哪了?", "msg_id": 6_123_456_789_012_345_u64});
    let (status, pushed) = post_json(
        &format!("{base}/__sandbox/im/inbound"),
        None,
        &inbound.to_string(),
    )
    .await?;
    assert_eq!(status, 200, "{pushed}");
    assert_eq!(pushed["msg_id"], 6_123_456_789_012_345_u64);
    assert_eq!(pushed["delivery"]["status"], 200, "{pushed}");

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    let query = query_of(&request.uri);
    let (timestamp, nonce) = (query["timestamp"].as_str(), query["nonce"].as_str());
    let mut parts = ["wx-token", timestamp, nonce];
    parts.sort_unstable();
    assert_eq!(
        query["signature"],
        hex::encode(Sha1::digest(parts.concat()))
    );
    let body: Value = serde_json::from_slice(&request.body)?;
    assert_eq!(
        body,
        json!({"ToUserName": "gh_sandbox", "FromUserName": USER, "CreateTime": pushed["create_time"],
            "MsgType": "text", "Content": "我的订单到哪了?", "MsgId": 6_123_456_789_012_345_u64})
    );
    assert_eq!(timestamp, pushed["create_time"].to_string());
    let sent = control_get(&sandbox, "/__sandbox/webhook/sent").await?;
    assert_eq!(sent.as_array().map(Vec::len), Some(1));
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_inbound_message_needs_a_webhook_an_openid_and_text() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let url = format!(
        "{}/__sandbox/im/inbound",
        sandbox.url(crate::Provider::Messaging)
    );
    let (status, reply) =
        post_json(&url, None, &json!({"from": USER, "text": "hi"}).to_string()).await?;
    assert_eq!(
        (status, reply["error"]["type"].as_str()),
        (409, Some("webhook_not_configured"))
    );
    for (body, param) in [
        (json!({"from": "bob", "text": "hi"}), "from"),
        (json!({"from": USER, "text": " "}), "text"),
    ] {
        let (status, reply) = post_json(&url, None, &body.to_string()).await?;
        assert_eq!(
            (status, reply["error"]["param"].as_str()),
            (400, Some(param)),
            "{reply}"
        );
    }
    sandbox.shutdown().await;
    Ok(())
}
