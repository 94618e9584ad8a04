//! The ticket system driven over HTTP, as the ticketing connector and an agent would.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::notify::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::ticket::AGENT_ID;
use crate::TICKETS_API_KEY;
use crate::test_support::{client, get_json, post_json, put_json, read_json, start};

const KEY: Option<&str> = Some(TICKETS_API_KEY);

async fn create(base: &str, ticket: Value) -> anyhow::Result<(u16, Value)> {
    let body = json!({ "ticket": ticket }).to_string();
    post_json(&format!("{base}/api/v2/tickets"), KEY, &body).await
}

async fn update(base: &str, id: &Value, ticket: Value) -> anyhow::Result<(u16, Value)> {
    let response = client()?
        .put(format!("{base}/api/v2/tickets/{id}"))
        .bearer_auth(TICKETS_API_KEY)
        .header("content-type", "application/json")
        .body(json!({ "ticket": ticket }).to_string())
        .send()
        .await?;
    read_json(response).await
}

fn refund(external_id: &str) -> Value {
    json!({
        "subject": "Refund for order 42",
        "comment": {"body": "The parcel arrived broken."},
        "requester": {"name": "Li Lei", "phone": "+86 138 0000 0000", "im_id": "wx_lilei"},
        "priority": "high",
        "type": "problem",
        "tags": ["IM", "refund"],
        "custom_fields": [{"id": 360_000_001_001_u64, "value": "wechat"}],
        "external_id": external_id,
    })
}

/// The ticket of a successful create, with its id.
async fn created(base: &str, ticket: Value) -> anyhow::Result<(Value, Value)> {
    let (status, body) = create(base, ticket).await?;
    anyhow::ensure!(status == 201, "create answered {status}: {body}");
    Ok((body["ticket"]["id"].clone(), body["ticket"].clone()))
}

/// The webhooks the receiver got, once there are `count` of them (or after five seconds).
async fn webhooks(receiver: &crate::Subscriber, count: usize) -> Vec<crate::Received> {
    for _ in 0..100 {
        let received = receiver.received();
        if received.len() >= count {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.received()
}

#[tokio::test]
async fn a_created_ticket_is_new_and_reads_back_with_its_description_as_first_comment()
-> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let (id, ticket) = created(&base, refund("im:conv-1")).await?;
    assert!(id.as_u64().is_some(), "{ticket}");
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["subject"], "Refund for order 42");
    assert_eq!(ticket["description"], "The parcel arrived broken.");
    assert_eq!(ticket["priority"], "high");
    assert_eq!(ticket["type"], "problem");
    assert_eq!(ticket["tags"], json!(["im", "refund"]));
    assert_eq!(ticket["external_id"], "im:conv-1");
    assert_eq!(ticket["requester"]["im_id"], "wx_lilei");
    assert_eq!(ticket["requester"]["id"], ticket["requester_id"]);
    assert_eq!(ticket["custom_fields"][0]["value"], "wechat");
    assert!(
        ticket["created_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );

    let (status, read) = get_json(&format!("{base}/api/v2/tickets/{id}"), KEY).await?;
    assert_eq!((status, &read["ticket"]), (200, &ticket));
    let (status, comments) = get_json(&format!("{base}/api/v2/tickets/{id}/comments"), KEY).await?;
    assert_eq!(status, 200);
    assert_eq!(comments["count"], 1);
    assert_eq!(
        comments["comments"][0]["body"],
        "The parcel arrived broken."
    );
    assert_eq!(comments["comments"][0]["public"], true);
    assert_eq!(comments["comments"][0]["author_id"], ticket["requester_id"]);

    let (_, again) = created(&base, refund("im:conv-2")).await?;
    assert_eq!(
        again["requester_id"], ticket["requester_id"],
        "same person, same user"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn without_the_token_every_api_route_answers_401() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let body = json!({ "ticket": refund("x") }).to_string();
    for key in [None, Some("sk_wrong")] {
        for (status, answer) in [
            post_json(&format!("{base}/api/v2/tickets"), key, &body).await?,
            get_json(&format!("{base}/api/v2/tickets"), key).await?,
            get_json(&format!("{base}/api/v2/tickets/1"), key).await?,
            get_json(&format!("{base}/api/v2/ticket_fields"), key).await?,
        ] {
            assert_eq!(status, 401, "{answer}");
            assert_eq!(answer, json!({"error": "Couldn't authenticate you"}));
        }
    }
    assert_eq!(
        get_json(&format!("{base}/__sandbox/tickets"), None)
            .await?
            .1["count"],
        0
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_unknown_ticket_is_record_not_found() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let not_found = json!({"error": "RecordNotFound", "description": "Not found"});
    for path in [
        "/api/v2/tickets/999",
        "/api/v2/tickets/abc",
        "/api/v2/tickets/999/comments",
    ] {
        assert_eq!(
            get_json(&format!("{base}{path}"), KEY).await?,
            (404, not_found.clone()),
            "{path}"
        );
    }
    let (status, body) = update(&base, &json!(999), json!({"status": "open"})).await?;
    assert_eq!((status, body), (404, not_found.clone()));
    let control = format!("{base}/__sandbox/tickets/999/status");
    assert_eq!(
        put_json(&control, r#"{"status":"open"}"#).await?,
        (404, not_found)
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn an_invalid_ticket_is_422_record_invalid_naming_every_field() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let (status, body) = create(
        &base,
        json!({"comment": {"body": ""}, "requester": {"name": "A"}, "priority": "asap",
               "custom_fields": [{"id": 1, "value": "x"}]}),
    )
    .await?;
    assert_eq!(status, 422);
    assert_eq!(body["error"], "RecordInvalid");
    assert_eq!(body["description"], "Record validation errors");
    let fields: Vec<&String> = body["details"]
        .as_object()
        .map(|d| d.keys().collect())
        .unwrap_or_default();
    assert_eq!(fields, ["custom_fields", "description", "priority"]);
    assert_eq!(
        body["details"]["description"][0]["description"],
        "Description: cannot be blank"
    );

    let (status, body) = post_json(&format!("{base}/api/v2/tickets"), KEY, "{not json").await?;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("InvalidRequest"))
    );
    assert_eq!(
        get_json(&format!("{base}/__sandbox/tickets"), None)
            .await?
            .1["count"],
        0
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn tickets_are_found_by_external_id_which_need_not_be_unique() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let (first, _) = created(&base, refund("im:conv 7/a")).await?;
    let (second, _) = created(&base, refund("im:conv 7/a")).await?;
    created(&base, refund("im:other")).await?;
    let search = format!("{base}/api/v2/tickets?external_id=im%3Aconv%207%2Fa");
    let (status, found) = get_json(&search, KEY).await?;
    assert_eq!((status, &found["count"]), (200, &json!(2)));
    assert_eq!(found["tickets"][0]["id"], first);
    assert_eq!(found["tickets"][1]["id"], second);
    let (_, none) = get_json(&format!("{base}/api/v2/tickets?external_id=nope"), KEY).await?;
    assert_eq!(none["tickets"], json!([]));
    assert_eq!(
        get_json(&format!("{base}/api/v2/tickets"), KEY).await?.1["count"],
        3
    );
    assert_eq!(
        get_json(&format!("{base}/__sandbox/tickets"), None)
            .await?
            .1["count"],
        3
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn updates_change_status_priority_and_tags_and_add_comments() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let (id, ticket) = created(&base, refund("im:conv-3")).await?;
    let (status, body) = update(
        &base,
        &id,
        json!({"status": "pending", "priority": "urgent", "tags": ["Escalated"],
               "comment": {"body": "Checking with the warehouse", "public": false}}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ticket"]["status"], "pending");
    assert_eq!(body["ticket"]["priority"], "urgent");
    assert_eq!(body["ticket"]["tags"], json!(["escalated"]));

    let requester = &ticket["requester_id"];
    let (status, _) = update(
        &base,
        &id,
        json!({"comment": {"body": "Any news?", "public": false, "author_id": requester}}),
    )
    .await?;
    assert_eq!(status, 200);
    let (_, comments) = get_json(&format!("{base}/api/v2/tickets/{id}/comments"), KEY).await?;
    let seen: Vec<(Value, Value)> = comments["comments"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|c| (c["author_id"].clone(), c["public"].clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        seen,
        [
            (requester.clone(), json!(true)),
            (json!(AGENT_ID), json!(false)),
            (requester.clone(), json!(true)),
        ],
        "a requester's comment is always public"
    );
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn a_closed_ticket_a_return_to_new_and_a_stranger_author_are_refused() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let (id, _) = created(&base, refund("im:conv-4")).await?;
    let (status, body) = update(
        &base,
        &id,
        json!({"comment": {"body": "x", "author_id": 5}}),
    )
    .await?;
    assert_eq!(
        (status, body["details"]["comment"].is_array()),
        (422, true),
        "{body}"
    );
    assert_eq!(update(&base, &id, json!({"status": "open"})).await?.0, 200);
    let (status, body) = update(&base, &id, json!({"status": "new"})).await?;
    assert_eq!(
        (status, body["details"]["status"].is_array()),
        (422, true),
        "{body}"
    );
    assert_eq!(
        update(&base, &id, json!({"status": "closed"})).await?.0,
        200
    );
    let (status, body) = update(&base, &id, json!({"comment": {"body": "reopen?"}})).await?;
    assert_eq!(status, 422);
    assert_eq!(
        body["details"]["status"][0]["description"],
        "Status: closed prevents ticket update"
    );
    let control = format!("{base}/__sandbox/tickets/{id}/status");
    assert_eq!(put_json(&control, r#"{"status":"open"}"#).await?.0, 422);
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn each_status_change_sends_one_signed_webhook_in_order() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let receiver = crate::Subscriber::start(([127, 0, 0, 1], 0).into()).await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let target =
        json!({"url": format!("{}/v1/receive/tickets", receiver.url()), "secret": "zd_secret"});
    assert_eq!(
        put_json(&format!("{base}/__sandbox/webhook"), &target.to_string())
            .await?
            .0,
        200
    );
    let (id, _) = created(&base, refund("im:conv-5")).await?;
    assert_eq!(update(&base, &id, json!({"status": "open"})).await?.0, 200);
    assert_eq!(
        update(
            &base,
            &id,
            json!({"status": "open", "comment": {"body": "hi"}})
        )
        .await?
        .0,
        200
    );
    let control = format!("{base}/__sandbox/tickets/{id}/status");
    assert_eq!(put_json(&control, r#"{"status":"solved"}"#).await?.0, 200);
    assert_eq!(put_json(&control, r#"{"status":"later"}"#).await?.0, 422);

    let received = webhooks(&receiver, 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        receiver.received().len(),
        2,
        "only real changes are sent: {received:?}"
    );
    let mut changes = Vec::new();
    for webhook in &received {
        let timestamp = webhook
            .headers
            .get(TIMESTAMP_HEADER)
            .cloned()
            .unwrap_or_default();
        let signature = webhook
            .headers
            .get(SIGNATURE_HEADER)
            .cloned()
            .unwrap_or_default();
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"zd_secret")?;
        mac.update(timestamp.as_bytes());
        mac.update(&webhook.body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(signature, expected);
        assert!(timestamp.ends_with('Z'), "{timestamp}");
        let event: Value = serde_json::from_slice(&webhook.body)?;
        assert_eq!(event["type"], "ticket.status_changed");
        assert_eq!(event["detail"]["id"], id);
        assert_eq!(event["detail"]["external_id"], "im:conv-5");
        assert_eq!(event["detail"]["requester"]["name"], "Li Lei");
        assert!(
            event["id"].as_str().is_some_and(|id| id.len() == 36),
            "{event}"
        );
        changes.push((
            event["detail"]["previous_status"].clone(),
            event["detail"]["status"].clone(),
        ));
    }
    assert_eq!(
        changes,
        [
            (json!("new"), json!("open")),
            (json!("open"), json!("solved"))
        ]
    );
    let (_, sent) = get_json(&format!("{base}/__sandbox/webhook/sent"), None).await?;
    assert_eq!(sent.as_array().map(Vec::len), Some(2));
    receiver.shutdown().await;
    sandbox.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn the_account_lists_its_custom_ticket_fields() -> anyhow::Result<()> {
    let sandbox = start().await?;
    let base = sandbox.url(crate::Provider::Tickets);
    let (status, body) = get_json(&format!("{base}/api/v2/ticket_fields"), KEY).await?;
    assert_eq!(status, 200);
    assert_eq!(
        body["ticket_fields"][0],
        json!({"id": 360_000_001_001_u64, "type": "text",
        "key": "channel", "title": "Channel", "active": true})
    );
    assert_eq!(body["ticket_fields"][4]["type"], "integer");
    sandbox.shutdown().await;
    Ok(())
}
