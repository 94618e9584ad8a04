//! Events end to end, in process: signed webhooks into the real `relay`
//! connector, the durable log, rules invoking connectors, outbound
//! subscriptions to a loopback receiver (signatures checked with the
//! Standard Webhooks scheme as documented), `on-event`, retries, the
//! dead-letter queue, replay, and a restart in the middle.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Reply, TestHost};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchboard::events::schedule::RetrySchedule;
use switchboard_sandbox::{FaultConfig, Received, Subscriber};

const HOOK_SECRET: &str = "relay-hook-secret";

async fn host_with(
    retries: &str,
    configure: impl FnOnce(&mut switchboard::app::HostConfig),
) -> TestHost {
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::open_with(data, |config| {
        config.events.retries = RetrySchedule::parse(retries).unwrap();
        configure(config);
    });
    host.app.load_connectors().await.unwrap();
    host.install("test-plugins", "relay").await;
    assert_eq!(
        host.put_setting("relay", "secrets", "hook_secret", HOOK_SECRET)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    host.app.start_dispatching().await.unwrap();
    host
}

async fn subscriber() -> Subscriber {
    Subscriber::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(body);
    let tag: Vec<String> = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={}", tag.concat())
}

fn webhook(hook: &str, body: &Value, signature: Option<String>, peer: [u8; 4]) -> Request<Body> {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut builder =
        Request::post(format!("/v1/hooks/relay/{hook}")).header("content-type", "application/json");
    if let Some(signature) = signature {
        builder = builder.header("x-signature", signature);
    }
    let mut request = builder.body(Body::from(bytes)).unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from((peer, 40000))));
    request
}

fn signed(hook: &str, body: &Value) -> Request<Body> {
    webhook(
        hook,
        body,
        Some(sign(&serde_json::to_vec(body).unwrap())),
        [127, 0, 0, 1],
    )
}

fn call_event(id: &str, kind: &str, subject: &str, note: &str) -> Value {
    json!({"id": id, "kind": kind, "subject": subject, "data": {"caller": "+79001234567", "note": note}})
}

/// Verifies a Standard Webhooks signature as the scheme documents it:
/// base64 of HMAC-SHA256, keyed by the secret's base64-decoded bytes, over `id.timestamp.body`.
fn verify_standard_webhook(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    let signed = format!(
        "{}.{}.",
        received.id.as_deref().unwrap(),
        received.timestamp.as_deref().unwrap()
    );
    mac.update(signed.as_bytes());
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .signature
        .as_deref()
        .unwrap()
        .split(' ')
        .any(|s| s == expected)
}

async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_subscription(host: &TestHost, spec: Value) -> (String, String) {
    let reply = host.post_json("/v1/subscriptions", &spec.to_string()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    (
        reply.json["id"].as_str().unwrap().to_owned(),
        reply.json["secret"].as_str().unwrap().to_owned(),
    )
}

async fn inject(host: &TestHost, event: Value) -> u64 {
    let reply = host.post_json("/v1/events", &event.to_string()).await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    reply.json["sequence"].as_u64().unwrap()
}

async fn items(host: &TestHost, uri: &str) -> Vec<Value> {
    let reply: Reply = host.get(uri).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.json["items"].as_array().unwrap().clone()
}

fn successes(subscriber: &Subscriber) -> Vec<Received> {
    // A request failed by fault injection never reaches the receiver's log.
    subscriber.received()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_fire_rules_and_reach_a_signed_mapped_subscriber() {
    let host = host_with("50ms,100ms", |_| {}).await;
    let receiver = subscriber().await;
    let (subscription, secret) = create_subscription(
        &host,
        json!({
            "name": "crm moments",
            "url": format!("{}/v1/receive/crm", receiver.url()),
            "kinds": ["call.*"],
            "params": [
                {"name": "phone", "from": "data.caller"},
                {"name": "moment", "from": "kind"},
                {"name": "call", "from": "subject"},
                {"name": "source", "value": "switchboard"}
            ]
        }),
    )
    .await;
    let rule = host
        .post_json(
            "/v1/rules",
            &json!({
                "name": "refund calls to a ticket",
                "match": {"kinds": ["call.*"], "keyword": {"field": "data.note", "any": ["refund"]}},
                "action": {"invoke": {"connector": "relay", "operation": "record",
                    "input": {"phone": "{{data.caller}}", "title": "Refund asked on {{subject}}"}}}
            })
            .to_string(),
        )
        .await;
    assert_eq!(rule.status, StatusCode::CREATED, "{}", rule.text);

    let body = json!({"events": [
        call_event("c1-answered", "call.answered", "call-1", "customer wants a REFUND"),
        call_event("c1-completed", "call.completed", "call-1", "bye"),
    ]});
    let forged = host
        .send(webhook(
            "signed",
            &body,
            Some("sha256=00".into()),
            [127, 0, 0, 1],
        ))
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (StatusCode::UNAUTHORIZED, "signature_invalid")
    );
    let unsigned = host
        .send(webhook("signed", &body, None, [127, 0, 0, 1]))
        .await;
    assert_eq!(
        (unsigned.status, unsigned.code()),
        (StatusCode::UNAUTHORIZED, "signature_missing")
    );
    let audit = host.get("/v1/audit?connector=relay&limit=1000").await;
    let refusals = audit.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "webhook.refused")
        .count();
    assert_eq!(refusals, 2, "{}", audit.text);
    assert!(
        items(&host, "/v1/events").await.is_empty(),
        "refused webhooks store nothing"
    );

    let accepted = host.send(signed("signed", &body)).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert_eq!(accepted.json, json!({"ok": true, "received": 2}));
    assert_eq!(accepted.headers["x-events-stored"], "2");
    let again = host.send(signed("signed", &body)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.headers["x-events-stored"], "0",
        "a resent event is recognised by its id"
    );
    let logged = items(&host, "/v1/events?source=relay").await;
    assert_eq!(logged.len(), 2);
    let nameless = json!({"events": [call_event("", "call.answered", "call-2", "")]});
    let refused = host.send(signed("signed", &nameless)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::BAD_GATEWAY, "invalid_output"),
        "an event needs the provider's id"
    );

    let delivered = eventually("two deliveries", Duration::from_secs(10), async || {
        let got = receiver.received();
        (got.len() >= 2).then_some(got)
    })
    .await;
    assert_eq!(delivered.len(), 2);
    let first_sequence = logged[0]["sequence"].as_u64().unwrap();
    for (received, (moment, sequence)) in delivered.iter().zip([
        ("call.answered", first_sequence),
        ("call.completed", first_sequence + 1),
    ]) {
        assert!(
            verify_standard_webhook(&secret, received),
            "signature of {received:?}"
        );
        assert_eq!(
            received.id.as_deref(),
            Some(format!("evt_{sequence}").as_str())
        );
        assert_eq!(received.method, "POST");
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(
            body,
            json!({"phone": "+79001234567", "moment": moment, "call": "call-1", "source": "switchboard"})
        );
    }
    let mut tampered = delivered[0].clone();
    tampered.body.push(b' ');
    assert!(!verify_standard_webhook(&secret, &tampered));

    let records = eventually("the rule's call", Duration::from_secs(10), async || {
        let reply = host.invoke("relay", "records", "{}").await;
        let items = reply.json["items"].as_array().cloned().unwrap_or_default();
        (!items.is_empty()).then_some(items)
    })
    .await;
    assert_eq!(
        records,
        [json!({"phone": "+79001234567", "title": "Refund asked on call-1"})]
    );
    // The subscriber has both bodies before the dispatcher records its answers.
    let delivered_uri = format!("/v1/deliveries?target={subscription}&state=delivered");
    let to_subscriber = eventually(
        "both deliveries recorded",
        Duration::from_secs(10),
        async || {
            let listed = items(&host, &delivered_uri).await;
            (listed.len() >= 2).then_some(listed)
        },
    )
    .await;
    assert_eq!(to_subscriber.len(), 2);
    let detail = host
        .get(&format!("/v1/deliveries/{}", to_subscriber[0]["id"]))
        .await;
    let attempt = &detail.json["attempts_made"][0];
    assert_eq!(
        (attempt["ok"].as_bool(), attempt["status"].as_u64()),
        (Some(true), Some(200)),
        "{}",
        detail.text
    );
    let event = host.get(&format!("/v1/events/{first_sequence}")).await;
    assert_eq!(
        event.json["deliveries"].as_array().unwrap().len(),
        2,
        "subscription and rule: {}",
        event.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_and_body_limit_hold_before_the_connector_runs() {
    let host = host_with("50ms", |_| {}).await;
    let body = json!({"events": [call_event("r1", "call.answered", "call-9", "")]});
    let bytes = serde_json::to_vec(&body).unwrap();
    let outsider = host
        .send(webhook(
            "restricted",
            &body,
            Some(sign(&bytes)),
            [127, 0, 0, 1],
        ))
        .await;
    assert_eq!(
        (outsider.status, outsider.code()),
        (StatusCode::FORBIDDEN, "ip_not_allowed")
    );
    let insider = host
        .send(webhook(
            "restricted",
            &body,
            Some(sign(&bytes)),
            [10, 255, 3, 4],
        ))
        .await;
    assert_eq!(insider.status, StatusCode::OK, "{}", insider.text);
    let big = host.send(signed("small", &body)).await;
    assert_eq!(
        (big.status, big.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let unknown = host.send(signed("nope", &body)).await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "hook_not_found")
    );

    let put = host
        .put_json(
            "/v1/connectors/relay/hooks/restricted",
            r#"{"allow_ips": ["127.0.0.0/8"], "tenant": "acme"}"#,
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    let body = json!({"events": [call_event("r2", "call.answered", "call-9", "")]});
    let mut request = signed("restricted", &body);
    request
        .headers_mut()
        .insert("x-tenant", "other".parse().unwrap());
    assert_eq!(host.send(request).await.status, StatusCode::OK);
    let stored = items(&host, "/v1/events?tenant=acme").await;
    assert_eq!(stored.len(), 1, "the hook's tenant, not the header's");
    assert_eq!(stored[0]["id"], "r2");
    let listed = host.get("/v1/connectors/relay/hooks").await;
    let restricted = listed.json["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hook"] == "restricted")
        .unwrap()
        .clone();
    assert_eq!(restricted["source"], "operator");
    let bad = host
        .put_json(
            "/v1/connectors/relay/hooks/restricted",
            r#"{"allow_ips": ["10.0.0.0/99"]}"#,
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    assert_eq!(
        host.send(
            Request::delete("/v1/connectors/relay/hooks/restricted")
                .body(Body::empty())
                .unwrap()
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let body = json!({"events": [call_event("r3", "call.answered", "call-9", "")]});
    assert_eq!(
        host.send(signed("restricted", &body)).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_fails_for_a_while_gets_its_events_later_in_order() {
    let host = host_with("20ms,40ms,80ms,160ms,200ms,200ms,200ms,200ms", |config| {
        config.events.failing_after = 3;
    })
    .await;
    let receiver = subscriber().await;
    receiver.faults().set(FaultConfig {
        fail_next: 6,
        ..FaultConfig::default()
    });
    let (_, secret) = create_subscription(
        &host,
        json!({"name": "orders", "url": format!("{}/v1/receive/orders", receiver.url()), "kinds": ["ticket.*"]}),
    )
    .await;
    let mut sequences = Vec::new();
    for step in 0..5 {
        sequences.push(
            inject(
                &host,
                json!({"kind": "ticket.updated", "subject": "ticket-7", "data": {"step": step}}),
            )
            .await,
        );
    }
    let other = inject(
        &host,
        json!({"kind": "ticket.updated", "subject": "ticket-8", "data": {"step": 0}}),
    )
    .await;
    let got = eventually("all six deliveries", Duration::from_secs(20), async || {
        let got = successes(&receiver);
        (got.len() >= 6).then_some(got)
    })
    .await;
    let order: Vec<u64> = got
        .iter()
        .filter_map(|r| r.id.as_deref()?.strip_prefix("evt_")?.parse().ok())
        .filter(|s| *s != other)
        .collect();
    assert_eq!(order, sequences, "one subject is delivered in event order");
    assert!(got.iter().all(|r| verify_standard_webhook(&secret, r)));
    assert_eq!(
        receiver.requests(),
        12,
        "six failed attempts, then six deliveries"
    );
    let failing = items(&host, "/v1/events?kind=switchboard.subscription_failing").await;
    assert_eq!(failing.len(), 1, "the failure is announced once per streak");
    assert!(items(&host, "/v1/dlq").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_recovers_ends_in_the_dlq_and_is_replayed_from_there() {
    let host = host_with("10ms,20ms", |_| {}).await;
    let receiver = subscriber().await;
    receiver.faults().set(FaultConfig {
        failure_rate: 1.0,
        ..FaultConfig::default()
    });
    let (subscription, _) = create_subscription(
        &host,
        json!({"name": "down", "url": format!("{}/v1/receive/down", receiver.url()), "method": "PUT", "kinds": ["*"]}),
    )
    .await;
    let first = inject(
        &host,
        json!({"id": "press-1", "kind": "agent.button_pressed", "data": {"button": "callback"}}),
    )
    .await;
    let repeat = host
        .post_json(
            "/v1/events",
            &json!({"id": "press-1", "kind": "agent.button_pressed", "data": {}}).to_string(),
        )
        .await;
    assert_eq!(
        (repeat.status, repeat.json["duplicate"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let second = inject(
        &host,
        json!({"kind": "agent.button_pressed", "data": {"button": "hold"}}),
    )
    .await;
    let dead = eventually("two dead letters", Duration::from_secs(10), async || {
        let dead = items(&host, "/v1/dlq").await;
        (dead.len() == 2).then_some(dead)
    })
    .await;
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("retries exhausted after 3 attempts"),
        "{dead:?}"
    );
    assert_eq!(receiver.requests(), 6, "three attempts each, no more");
    // The notice follows the attempt that completed the streak, which is
    // stored (and visible in the DLQ) first.
    let notice = eventually(
        "five failures in a row announced",
        Duration::from_secs(10),
        async || {
            let notice = items(&host, "/v1/events?kind=switchboard.subscription_failing").await;
            (!notice.is_empty()).then_some(notice)
        },
    )
    .await;
    assert_eq!(notice.len(), 1, "five failures in a row are announced once");
    let to_self = items(
        &host,
        &format!("/v1/deliveries?event={}", notice[0]["sequence"]),
    )
    .await;
    assert!(
        to_self.is_empty(),
        "a subscription does not get its own failure notice: {to_self:?}"
    );
    let detail = host.get(&format!("/v1/deliveries/{}", dead[0]["id"])).await;
    let attempts = detail.json["attempts_made"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a["status"] == 503 && a["ok"] == false),
        "{}",
        detail.text
    );

    receiver.faults().clear();
    let retried = host
        .post_json(&format!("/v1/dlq/{}/retry", dead[0]["id"]), "")
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    let discarded = host
        .send(
            Request::delete(format!("/v1/dlq/{}", dead[1]["id"]))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(discarded.status, StatusCode::OK, "{}", discarded.text);
    let not_dead = host
        .post_json(&format!("/v1/dlq/{}/retry", dead[1]["id"]), "")
        .await;
    assert_eq!(
        (not_dead.status, not_dead.code()),
        (StatusCode::CONFLICT, "delivery_not_dead")
    );
    eventually("the retried letter", Duration::from_secs(10), async || {
        (receiver.received().len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        receiver.received()[0].id.as_deref(),
        Some(format!("evt_{first}").as_str())
    );
    assert_eq!(receiver.received()[0].method, "PUT");
    // The subscriber has the letter before the attempt is recorded.
    let revived = eventually(
        "the fourth attempt recorded",
        Duration::from_secs(10),
        async || {
            let revived = host.get(&format!("/v1/deliveries/{}", dead[0]["id"])).await;
            (revived.json["state"] == "delivered").then_some(revived)
        },
    )
    .await;
    let history = revived.json["attempts_made"].as_array().unwrap();
    assert_eq!(
        history.len(),
        4,
        "the earlier attempts are kept: {}",
        revived.text
    );
    assert_eq!(
        (history[3]["number"].as_u64(), history[3]["ok"].as_bool()),
        (Some(4), Some(true))
    );

    let one = host
        .post_json(
            &format!("/v1/subscriptions/{subscription}/replay"),
            &json!({"event": second}).to_string(),
        )
        .await;
    assert_eq!(one.status, StatusCode::ACCEPTED, "{}", one.text);
    let range = host
        .post_json(
            &format!("/v1/subscriptions/{subscription}/replay"),
            &json!({"from_ms": 0, "to_ms": u64::MAX}).to_string(),
        )
        .await;
    assert_eq!(
        range.json["deliveries"].as_array().unwrap().len(),
        2,
        "{}",
        range.text
    );
    eventually("three replays", Duration::from_secs(10), async || {
        (receiver.received().len() == 4).then_some(())
    })
    .await;
    let bad = host
        .post_json(
            &format!("/v1/subscriptions/{subscription}/replay"),
            r#"{"event": 1, "from_ms": 0}"#,
        )
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_replay")
    );
    assert!(items(&host, "/v1/dlq").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_failing_too_long_is_disabled_and_announced() {
    let host = host_with("10ms,10ms,10ms,10ms,10ms,10ms", |config| {
        config.events.failing_after = 2;
        config.events.disable_after = Duration::from_millis(1);
    })
    .await;
    let receiver = subscriber().await;
    receiver.faults().set(FaultConfig {
        failure_rate: 1.0,
        ..FaultConfig::default()
    });
    let (subscription, _) = create_subscription(
        &host,
        json!({"name": "gone", "url": format!("{}/v1/receive/gone", receiver.url()), "kinds": ["lead.*"]}),
    )
    .await;
    inject(
        &host,
        json!({"kind": "lead.created", "subject": "l1", "data": {}}),
    )
    .await;
    inject(
        &host,
        json!({"kind": "lead.created", "subject": "l1", "data": {}}),
    )
    .await;
    let dead = eventually("both dead", Duration::from_secs(10), async || {
        let dead = items(&host, "/v1/dlq").await;
        (dead.len() == 2).then_some(dead)
    })
    .await;
    assert!(
        dead.iter().all(|d| d["reason"]
            .as_str()
            .unwrap()
            .starts_with("subscription_disabled")),
        "{dead:?}"
    );
    let shown = host.get(&format!("/v1/subscriptions/{subscription}")).await;
    assert_eq!(shown.json["enabled"], false, "{}", shown.text);
    assert!(
        shown.json.get("secret").is_none(),
        "the secret is shown only at creation"
    );
    assert_eq!(
        items(&host, "/v1/events?kind=switchboard.subscription_disabled")
            .await
            .len(),
        1
    );
    assert!(
        receiver.requests() < 6,
        "a disabled subscription is not called again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectors_get_subscribed_events_through_on_event_with_retries_in_order() {
    let host = host_with("20ms,40ms,80ms", |_| {}).await;
    // Dispatching stops and starts again in the same process.
    host.app.stop_dispatching().await;
    host.app.start_dispatching().await.unwrap();
    let created = inject(&host, json!({"kind": "order.created", "subject": "order-1", "data": {"fail": true, "fail_times": 2}})).await;
    inject(
        &host,
        json!({"kind": "order.paid", "subject": "order-1", "data": {"amount": 10}}),
    )
    .await;
    inject(
        &host,
        json!({"kind": "call.answered", "subject": "order-1", "data": {}}),
    )
    .await;
    let seen = eventually("both order events", Duration::from_secs(10), async || {
        let reply = host.invoke("relay", "seen", "{}").await;
        let items = reply.json["items"].as_array().cloned().unwrap_or_default();
        (items.len() >= 2).then_some(items)
    })
    .await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["order.created", "order.paid"]);
    let deliveries = items(&host, &format!("/v1/deliveries?event={created}")).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (
            deliveries[0]["attempts"].as_u64(),
            deliveries[0]["state"].as_str()
        ),
        (Some(3), Some("delivered"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_is_checked_and_pending_deliveries_survive_a_restart() {
    let host = host_with("50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms", |_| {}).await;
    let bad_rule = host.post_json("/v1/rules", r#"{"name": "x", "match": {"kinds": []}, "action": {"notify": {"subscription": "none"}}}"#).await;
    assert_eq!(
        (bad_rule.status, bad_rule.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule")
    );
    let dangling = host.post_json("/v1/rules", r#"{"name": "x", "match": {"kinds": ["*"]}, "action": {"notify": {"subscription": "none"}}}"#).await;
    assert_eq!(
        (dangling.status, dangling.code()),
        (StatusCode::NOT_FOUND, "subscription_not_found")
    );
    let params: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("p{i}"), "value": i}))
        .collect();
    let too_many = host
        .post_json(
            "/v1/subscriptions",
            &json!({"name": "x", "url": "http://127.0.0.1:9/x", "kinds": ["*"], "params": params})
                .to_string(),
        )
        .await;
    assert_eq!(
        (too_many.status, too_many.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_subscription")
    );
    for bad in [
        r#"{"kind": "no spaces"}"#,
        r#"{"kind": "switchboard.subscription_failing"}"#,
    ] {
        let bad_event = host.post_json("/v1/events", bad).await;
        assert_eq!(
            (bad_event.status, bad_event.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            "{bad}"
        );
    }

    let receiver = subscriber().await;
    receiver.faults().set(FaultConfig {
        failure_rate: 1.0,
        ..FaultConfig::default()
    });
    let (subscription, _) = create_subscription(
        &host,
        json!({"name": "later", "url": format!("{}/v1/receive/later", receiver.url()), "kinds": ["*"], "tenant": "default"}),
    )
    .await;
    let notify = host
        .post_json("/v1/rules", &json!({"name": "vip", "match": {"kinds": ["*"], "conditions": [{"field": "data.vip", "op": "eq", "value": true}]}, "action": {"notify": {"subscription": subscription}}}).to_string())
        .await;
    assert_eq!(notify.status, StatusCode::CREATED);
    let other_tenant = host
        .send(
            Request::post("/v1/events")
                .header("content-type", "application/json")
                .header("x-tenant", "acme")
                .body(Body::from(
                    json!({"kind": "lead.created", "data": {"vip": true}}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(other_tenant.status, StatusCode::ACCEPTED);
    let sequence = inject(
        &host,
        json!({"kind": "lead.created", "data": {"vip": true}}),
    )
    .await;
    eventually("a failed attempt", Duration::from_secs(10), async || {
        (receiver.requests() >= 1).then_some(())
    })
    .await;

    host.app.stop_dispatching().await;
    let host = host
        .restart_with(|config| {
            config.events.retries =
                RetrySchedule::parse("50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms").unwrap()
        })
        .await;
    assert_eq!(items(&host, "/v1/rules").await.len(), 1);
    assert_eq!(items(&host, "/v1/subscriptions").await.len(), 1);
    receiver.faults().clear();
    host.app.start_dispatching().await.unwrap();
    eventually(
        "the delivery after the restart",
        Duration::from_secs(10),
        async || (!receiver.received().is_empty()).then_some(()),
    )
    .await;
    let received = receiver.received();
    assert_eq!(
        received.len(),
        1,
        "the rule's notify and the subscription make one delivery, none for another tenant"
    );
    assert_eq!(
        received[0].id.as_deref(),
        Some(format!("evt_{sequence}").as_str())
    );
    host.app.stop_dispatching().await;
}
