//! Contact-center scenarios end to end, through the public API only: the real
//! binary with the bundled connectors, every sandbox provider playing its
//! side (calls, customers, tickets, payments), and a webhook receiver playing
//! the agent desktop and the operators' alerting.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Host, dist, eventually};
use serde_json::{Value, json};
use switchboard_sandbox::{
    AI_API_KEY, CLINK_AGENT_PASSWORD, CRM_API_KEY, EASEMOB_CLIENT_ID, EASEMOB_SECRET_ID,
    FaultConfig, MESSAGING_API_KEY, PAYMENT_API_KEY, Provider, Sandbox, SandboxConfig, Subscriber,
    TICKETS_API_KEY,
};

/// Secrets the scenarios give connectors for the webhooks providers send.
const PAYMENT_WEBHOOK_SECRET: &str = "whsec_payment_scenarios";
const TICKETS_WEBHOOK_SECRET: &str = "tickets-webhook-secret";
const IM_TOKEN: &str = "im-token-scenarios";
const RINGOSTAT_URL_KEY: &str = "ringostat-url-key";
const CLINK_PUSH_TOKEN: &str = "clink-push-token";

/// The customer the CRM knows.
const CALLER: &str = "+8613800138000";
/// An IM user.
const OPENID: &str = "o_customer_000001";

/// The host, the sandbox providers and a receiver, wired together as
/// `scripts/run` wires them.
struct World {
    host: Host,
    sandbox: Sandbox,
    receiver: Subscriber,
    _temp: tempfile::TempDir,
}

impl World {
    async fn start() -> World {
        let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
        let receiver = Subscriber::start(([127, 0, 0, 1], 0).into()).await.unwrap();
        let temp = tempfile::tempdir().unwrap();
        let host = Host::start_with(
            &temp.path().join("data"),
            Some(dist("plugins")),
            &["--delivery-retries", "100ms,200ms"],
        )
        .await;
        let world = World {
            host,
            sandbox,
            receiver,
            _temp: temp,
        };
        world.wire().await;
        world
    }

    async fn wire(&self) {
        for (connector, provider) in [
            ("payment-link", Provider::Payment),
            ("clink-outcall", Provider::Clink),
            ("easemob-routing", Provider::Easemob),
            ("crm", Provider::Crm),
            ("ticketing", Provider::Tickets),
            ("messaging", Provider::Messaging),
            ("ai-analysis", Provider::Ai),
        ] {
            self.host
                .set(connector, "config", "base_url", &self.sandbox.url(provider))
                .await;
        }
        for (connector, secret, value) in [
            ("payment-link", "api_key", PAYMENT_API_KEY),
            ("payment-link", "webhook_secret", PAYMENT_WEBHOOK_SECRET),
            ("clink-outcall", "password", CLINK_AGENT_PASSWORD),
            ("clink-outcall", "push_token", CLINK_PUSH_TOKEN),
            ("easemob-routing", "client_id", EASEMOB_CLIENT_ID),
            ("easemob-routing", "secret_id", EASEMOB_SECRET_ID),
            ("crm", "api_key", CRM_API_KEY),
            ("ticketing", "api_token", TICKETS_API_KEY),
            ("ticketing", "webhook_secret", TICKETS_WEBHOOK_SECRET),
            ("messaging", "api_key", MESSAGING_API_KEY),
            ("messaging", "im_token", IM_TOKEN),
            ("ai-analysis", "api_key", AI_API_KEY),
            ("ringostat", "url_key", RINGOSTAT_URL_KEY),
        ] {
            self.host.set(connector, "secrets", secret, value).await;
        }
        let hook =
            |connector: &str, hook: &str| format!("{}/v1/hooks/{connector}/{hook}", self.host.url);
        for (provider, url, secret) in [
            (
                Provider::Payment,
                hook("payment-link", "events"),
                Some(PAYMENT_WEBHOOK_SECRET),
            ),
            (
                Provider::Tickets,
                hook("ticketing", "status"),
                Some(TICKETS_WEBHOOK_SECRET),
            ),
            (Provider::Messaging, hook("messaging", "im"), Some(IM_TOKEN)),
            (
                Provider::Ringostat,
                hook("ringostat", "call"),
                Some(RINGOSTAT_URL_KEY),
            ),
            (
                Provider::Clink,
                format!(
                    "{}?token={CLINK_PUSH_TOKEN}",
                    hook("clink-outcall", "call-end")
                ),
                None,
            ),
        ] {
            let (status, body) = self
                .sandbox_call(
                    reqwest::Method::PUT,
                    provider,
                    "/__sandbox/webhook",
                    Some(json!({ "url": url, "secret": secret })),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// A request to a sandbox provider's control route.
    async fn sandbox_call(
        &self,
        method: reqwest::Method,
        provider: Provider,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = client().request(method, format!("{}{path}", self.sandbox.url(provider)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, reply) = self
            .host
            .call(reqwest::Method::POST, path, Some(body))
            .await;
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {reply}"
        );
        reply
    }

    async fn rule(&self, spec: Value) {
        self.post("/v1/rules", spec).await;
    }

    /// A subscription delivering `kinds` to the receiver under `/v1/receive/<name>`.
    async fn subscribe(&self, name: &str, kinds: &[&str]) {
        let url = format!("{}/v1/receive/{name}", self.receiver.url());
        self.post(
            "/v1/subscriptions",
            json!({"name": name, "url": url, "kinds": kinds}),
        )
        .await;
    }

    /// Bodies the receiver got under `/v1/receive/<name>`, as JSON.
    fn received(&self, name: &str) -> Vec<Value> {
        let path = format!("/v1/receive/{name}");
        self.receiver
            .received()
            .into_iter()
            .filter(|received| received.uri.starts_with(&path))
            .filter_map(|received| serde_json::from_slice(&received.body).ok())
            .collect()
    }

    async fn invoke(&self, connector: &str, operation: &str, input: Value) -> (u16, Value) {
        self.host.invoke(connector, operation, input).await
    }

    /// Stored events of `kind`.
    async fn events(&self, kind: &str) -> Vec<Value> {
        self.events_where(&format!("kind={kind}")).await
    }

    /// Stored events that match the `/v1/events` query.
    async fn events_where(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .host
            .call(reqwest::Method::GET, &format!("/v1/events?{query}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_incoming_call_reaches_the_agent_with_the_callers_360_view() {
    let world = World::start().await;
    world
        .rule(json!({
            "name": "screen pop",
            "match": {"kinds": ["call.initiated"]},
            "action": {"invoke": {"connector": "crm", "operation": "screen-pop",
                "input": {"call_id": "{{subject}}", "phone": "{{data.caller}}"}}},
        }))
        .await;
    world.subscribe("desktop", &["call.screen_pop"]).await;
    // An integration whose CRM is down, and the operators' failure notification.
    world
        .post(
            "/v1/subscriptions",
            json!({"name": "BrokenCRM", "url": "http://127.0.0.1:9/calls", "kinds": ["call.*"]}),
        )
        .await;
    world
        .subscribe("operators", &["switchboard.subscription_failing"])
        .await;
    // The operator's own integration, as Ringostat configures one: a name, a
    // URL, a moment, a method and mapped parameters.
    let crm_url = format!("{}/v1/receive/example-crm", world.receiver.url());
    world
        .post(
            "/v1/subscriptions",
            json!({"name": "ExampleCRM", "url": crm_url, "method": "GET",
                   "kinds": ["call.completed"],
                   "params": [{"name": "phone", "from": "data.caller"},
                              {"name": "talk", "from": "data.talk_s"},
                              {"name": "source", "from": "data.utm.source"}]}),
        )
        .await;

    let (status, call) = world
        .sandbox_call(
            reqwest::Method::POST,
            Provider::Ringostat,
            "/__sandbox/ringostat/calls",
            Some(json!({"caller": CALLER, "number": "+74950000000",
                        "extensions": ["1001", "1002"], "answered_by": 1,
                        "talk_s": 42, "rating": 5, "utm_source": "google"})),
        )
        .await;
    assert_eq!(status, 200, "{call}");
    let call_id = call["call_id"].as_str().unwrap().to_owned();

    let pop = eventually("the screen pop at the agent desktop", async || {
        world.received("desktop").into_iter().next()
    })
    .await;
    assert_eq!(pop["kind"], "call.screen_pop", "{pop}");
    assert_eq!(pop["subject"], call_id.as_str());
    let view = &pop["data"];
    assert_eq!(view["found"], true, "{view}");
    assert!(
        view["customer"]["name"]
            .as_str()
            .unwrap()
            .contains("Wang Fang"),
        "{view}"
    );
    assert!(
        view["customer"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("vip"))
    );
    assert!(
        !view["recent_orders"].as_array().unwrap().is_empty(),
        "{view}"
    );
    assert!(
        !view["open_tickets"].as_array().unwrap().is_empty(),
        "{view}"
    );

    // Every moment of the call is a normalized event, in order.
    let moments = eventually("the five moments", async || {
        let events = world
            .events_where(&format!("subject={call_id}&source=ringostat"))
            .await;
        (events.len() >= 6).then_some(events)
    })
    .await;
    let kinds: Vec<&str> = moments
        .iter()
        .map(|event| event["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "call.initiated",
            "call.forwarded",
            "call.forwarded",
            "call.answered",
            "call.completed",
            "call.rated",
        ],
        "{moments:?}"
    );
    let completed = eventually("the operator's integration", async || {
        world
            .receiver
            .received()
            .into_iter()
            .find(|received| received.uri.starts_with("/v1/receive/example-crm"))
    })
    .await;
    assert_eq!(completed.method, "GET");
    assert!(completed.uri.contains("talk=42"), "{}", completed.uri);
    assert!(completed.uri.contains("source=google"), "{}", completed.uri);
    let failing = eventually("the failure notification", async || {
        world.received("operators").into_iter().next()
    })
    .await;
    assert_eq!(failing["data"]["name"], "BrokenCRM", "{failing}");

    // The 360° view is hot data: a second lookup comes from the cache.
    let lookup = async || {
        common::client()
            .post(format!(
                "{}/v1/connectors/crm/operations/lookup-customer",
                world.host.url
            ))
            .json(&json!({"phone": CALLER}))
            .send()
            .await
            .unwrap()
    };
    let (first, second) = (lookup().await, lookup().await);
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    assert_eq!(second.headers()["x-cache"], "hit");
    assert_eq!(
        first.json::<Value>().await.unwrap(),
        second.json::<Value>().await.unwrap()
    );

    // A webhook without the URL key never becomes an event.
    let forged = client()
        .post(format!(
            "{}/v1/hooks/ringostat/call?key=wrong",
            world.host.url
        ))
        .json(&json!({"event": "call_initiated", "uniqueid": "forged", "caller": CALLER}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn an_im_keyword_opens_one_ticket_whose_status_goes_back_to_the_customer() {
    let world = World::start().await;
    world
        .rule(json!({
            "name": "refund requests open a ticket",
            "match": {"kinds": ["im.message_received"],
                      "keyword": {"field": "data.text", "any": ["refund", "退款"]}},
            "action": {"invoke": {"connector": "ticketing", "operation": "create-ticket",
                "input": {"subject": "IM {{subject}}: {{data.text}}",
                          "description": "{{data.text}}",
                          "requester": {"name": "{{data.from}}", "im_id": "{{data.from}}"},
                          "priority": "high", "tags": ["im", "refund"],
                          "external_id": "{{id}}",
                          "context": "{{data.context}}"}}},
        }))
        .await;
    world
        .rule(json!({
            "name": "ticket status back to the customer",
            "match": {"kinds": ["ticket.status_changed"],
                      "conditions": [{"field": "data.requester.im_id", "op": "exists"}]},
            "action": {"invoke": {"connector": "messaging", "operation": "send-text",
                "input": {"to": "{{data.requester.im_id}}",
                          "text": "Your ticket {{data.ticket_id}} is now {{data.status}}"}}},
        }))
        .await;
    world
        .subscribe("alerts", &["switchboard.delivery_dead"])
        .await;

    let say = async |text: &str, msg_id: u64| {
        let (status, body) = world
            .sandbox_call(
                reqwest::Method::POST,
                Provider::Messaging,
                "/__sandbox/im/inbound",
                Some(json!({"from": OPENID, "text": text, "msg_id": msg_id})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    };
    say("你好, my parcel ORD-1001 arrived broken", 1001).await;
    say("我要退款 (refund please)", 1002).await;
    // The IM platform resends a message it thinks was lost.
    say("我要退款 (refund please)", 1002).await;

    let tickets = async || {
        world
            .sandbox_call(
                reqwest::Method::GET,
                Provider::Tickets,
                "/__sandbox/tickets",
                None,
            )
            .await
            .1
    };
    let ticket = eventually("the ticket", async || {
        tickets().await["tickets"]
            .as_array()
            .and_then(|all| all.first().cloned())
    })
    .await;
    assert_eq!(ticket["priority"], "high", "{ticket}");
    assert_eq!(ticket["requester"]["im_id"], OPENID);
    let description = ticket["description"].as_str().unwrap();
    assert!(
        description.contains("arrived broken") && description.contains("我要退款"),
        "the conversation context is in the ticket: {description}"
    );
    let ticket_id = ticket["id"].to_string();

    // The agent's desk: what does the AI make of the customer's mood?
    let (status, analysis) = world
        .invoke(
            "ai-analysis",
            "analyze",
            json!({"text": "我要退款, terrible service"}),
        )
        .await;
    assert_eq!(status, 200, "{analysis}");
    assert_eq!(analysis["sentiment"]["label"], "negative", "{analysis}");
    assert!(
        analysis["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("refund"))
    );

    // An agent works the ticket in the ticket system; the customer hears of it.
    let set_status = async |status: &str| {
        let (code, body) = world
            .sandbox_call(
                reqwest::Method::PUT,
                Provider::Tickets,
                &format!("/__sandbox/tickets/{ticket_id}/status"),
                Some(json!({"status": status})),
            )
            .await;
        assert_eq!(code, 200, "{body}");
    };
    let messages_to_customer = async || {
        world
            .sandbox_call(
                reqwest::Method::GET,
                Provider::Messaging,
                &format!("/__sandbox/im/messages?to={OPENID}"),
                None,
            )
            .await
            .1
            .to_string()
    };
    set_status("pending").await;
    eventually("the IM about the pending ticket", async || {
        messages_to_customer()
            .await
            .contains("is now pending")
            .then_some(())
    })
    .await;

    // The agent answers in the ticket and on IM: a template and a picture by URL.
    for (connector, operation, input) in [
        (
            "ticketing",
            "add-comment",
            json!({"ticket_id": ticket_id, "body": "We are checking the parcel", "public": true}),
        ),
        (
            "messaging",
            "send-template",
            json!({"to": OPENID, "template_id": "ticket_status",
                   "data": {"ticket_id": ticket_id, "status": "being checked"}}),
        ),
        (
            "messaging",
            "send-media",
            json!({"to": OPENID, "media_url": "https://cdn.example.com/label.png", "kind": "image"}),
        ),
    ] {
        let (status, body) = world.invoke(connector, operation, input).await;
        assert_eq!(status, 200, "{connector} {operation}: {body}");
    }
    let seen = messages_to_customer().await;
    assert!(seen.contains("is now being checked"), "{seen}");
    assert!(seen.contains("https://cdn.example.com/label.png"), "{seen}");
    let (_, with_comment) = world
        .invoke("ticketing", "get-ticket", json!({"ticket_id": ticket_id}))
        .await;
    assert!(
        with_comment
            .to_string()
            .contains("We are checking the parcel"),
        "{with_comment}"
    );

    // The IM channel goes down: the sync is retried, then raises an alert.
    world.sandbox.faults(Provider::Messaging).set(FaultConfig {
        failure_rate: 1.0,
        ..FaultConfig::default()
    });
    set_status("solved").await;
    let alert = eventually("the alert", async || {
        world.received("alerts").into_iter().next()
    })
    .await;
    assert_eq!(alert["kind"], "switchboard.delivery_dead", "{alert}");
    assert_eq!(alert["data"]["event_kind"], "ticket.status_changed");
    assert_eq!(alert["data"]["attempts"], 3, "{alert}");

    // Once it is back, the operator retries the dead letter and the customer hears.
    world.sandbox.faults(Provider::Messaging).clear();
    let delivery = alert["data"]["delivery"].as_u64().unwrap();
    world
        .post(&format!("/v1/dlq/{delivery}/retry"), json!({}))
        .await;
    eventually("the IM about the solved ticket", async || {
        messages_to_customer()
            .await
            .contains("is now solved")
            .then_some(())
    })
    .await;

    assert_eq!(tickets().await["count"], 1, "nothing is created twice");
}

#[tokio::test]
async fn a_double_click_makes_one_outbound_call_and_every_res_code_has_its_error() {
    let world = World::start().await;
    world
        .host
        .set("clink-outcall", "config", "debounce_ms", "400")
        .await;
    let call = |cno: &str| json!({"cno": cno, "customer_number": "13800138000", "sync": true});
    let calls_made = async || {
        world
            .sandbox_call(
                reqwest::Method::GET,
                Provider::Clink,
                "/__sandbox/clink/calls",
                None,
            )
            .await
            .1
            .as_array()
            .map_or(0, Vec::len)
    };

    let (first, second) = tokio::join!(
        world.invoke("clink-outcall", "preview-outcall", call("2001")),
        world.invoke("clink-outcall", "preview-outcall", call("2001")),
    );
    let mut outcomes = [first, second];
    outcomes.sort_by_key(|(status, _)| *status);
    assert_eq!(outcomes[0].0, 200, "{:?}", outcomes);
    assert_eq!(
        error_code(&outcomes[1].1),
        "outcall_debounced",
        "{:?}",
        outcomes
    );
    assert_eq!(
        calls_made().await,
        1,
        "the second click never reached Clink"
    );
    let unique_id = outcomes[0].1["unique_id"].as_str().unwrap().to_owned();

    // After the debounce window the agent is still in the call.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, busy) = world
        .invoke("clink-outcall", "preview-outcall", call("2001"))
        .await;
    assert_eq!(error_code(&busy), "agent_in_call", "{busy}");

    // The call-end push releases the agent.
    let (status, hangup) = world
        .sandbox_call(
            reqwest::Method::POST,
            Provider::Clink,
            &format!("/__sandbox/clink/calls/{unique_id}/hangup"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{hangup}");
    let ended = eventually("call.ended", async || {
        world.events("call.ended").await.into_iter().next()
    })
    .await;
    assert_eq!(ended["subject"], unique_id.as_str());
    // Every click restarts the debounce window, the refused one included.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, again) = world
        .invoke("clink-outcall", "preview-outcall", call("2001"))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(calls_made().await, 2);

    // Each res code Clink answers surfaces as its own error.
    let enterprise = async |flags: Value| {
        world
            .sandbox_call(
                reqwest::Method::PUT,
                Provider::Clink,
                "/__sandbox/clink/enterprise",
                Some(flags),
            )
            .await
    };
    let agent = async |cno: &str, body: Value| {
        world
            .sandbox_call(
                reqwest::Method::PUT,
                Provider::Clink,
                &format!("/__sandbox/clink/agents/{cno}"),
                Some(body),
            )
            .await
    };
    agent("2002", json!({"state": "idle", "answers": false})).await;
    let (_, failed) = world
        .invoke("clink-outcall", "preview-outcall", call("2002"))
        .await;
    assert_eq!(error_code(&failed), "agent_call_failed", "{failed}");

    let (_, invalid) = world
        .invoke(
            "clink-outcall",
            "preview-outcall",
            json!({"cno": "2003", "customer_number": "12"}),
        )
        .await;
    assert_eq!(error_code(&invalid), "invalid_customer_number", "{invalid}");

    for (flags, code, cno) in [
        (json!({"disabled": true}), "account_disabled", "2004"),
        (
            json!({"balance_exhausted": true}),
            "insufficient_balance",
            "2005",
        ),
        (
            json!({"outcall_enabled": false}),
            "service_not_enabled",
            "2006",
        ),
    ] {
        enterprise(flags).await;
        let (_, refused) = world
            .invoke("clink-outcall", "preview-outcall", call(cno))
            .await;
        assert_eq!(error_code(&refused), code, "{refused}");
        enterprise(json!({"disabled": false, "balance_exhausted": false, "outcall_enabled": true}))
            .await;
    }

    agent("2007", json!({"state": "busy"})).await;
    let (_, not_available) = world
        .invoke("clink-outcall", "preview-outcall", call("2007"))
        .await;
    assert_eq!(
        error_code(&not_available),
        "agent_not_available",
        "{not_available}"
    );
    world
        .host
        .set("clink-outcall", "config", "check_agent_state", "false")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, busy) = world
        .invoke("clink-outcall", "preview-outcall", call("2007"))
        .await;
    assert_eq!(error_code(&busy), "agent_busy", "{busy}");

    world
        .host
        .set("clink-outcall", "secrets", "password", "not-the-password")
        .await;
    let (_, denied) = world
        .invoke("clink-outcall", "preview-outcall", call("2008"))
        .await;
    assert_eq!(error_code(&denied), "authentication_failed", "{denied}");
    assert!(!denied.to_string().contains("not-the-password"));

    world
        .host
        .set("clink-outcall", "secrets", "password", CLINK_AGENT_PASSWORD)
        .await;
    world
        .host
        .set("clink-outcall", "config", "enterprise_id", "not-a-number")
        .await;
    let (_, bad) = world
        .invoke("clink-outcall", "preview-outcall", call("2009"))
        .await;
    assert_eq!(error_code(&bad), "invalid_parameters", "{bad}");
}

#[tokio::test]
async fn a_payment_link_goes_out_by_sms_and_paying_it_updates_the_ticket() {
    let world = World::start().await;
    let (status, ticket) = world
        .invoke(
            "ticketing",
            "create-ticket",
            json!({"subject": "Order ORD-1001 unpaid", "description": "Customer wants to pay by link",
                   "requester": {"name": "Wang Fang", "phone": CALLER}}),
        )
        .await;
    assert_eq!(status, 200, "{ticket}");
    let ticket_id = ticket["ticket_id"].as_str().unwrap().to_owned();
    world
        .rule(json!({
            "name": "text the payment link",
            "match": {"kinds": ["payment.link_created"],
                      "conditions": [{"field": "data.customer_phone", "op": "exists"}]},
            "action": {"invoke": {"connector": "messaging", "operation": "send-sms",
                "input": {"phone": "{{data.customer_phone}}",
                          "text": "Pay for order {{data.order_id}}: {{data.url}}"}}},
        }))
        .await;
    world
        .rule(json!({
            "name": "a paid order solves its ticket",
            "match": {"kinds": ["payment.paid"], "conditions": [{"field": "data.reference", "op": "exists"}]},
            "action": {"invoke": {"connector": "ticketing", "operation": "update-ticket",
                "input": {"ticket_id": "{{data.reference}}", "status": "solved",
                          "comment": "Order {{data.order_id}} was paid ({{data.amount}} {{data.currency}})"}}},
        }))
        .await;

    let (status, link) = world
        .invoke(
            "payment-link",
            "create-link",
            json!({"order_id": "ORD-1001", "amount": 19900, "currency": "CNY",
                   "reference": ticket_id, "customer_phone": CALLER}),
        )
        .await;
    assert_eq!(status, 200, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    let sms = eventually("the SMS with the link", async || {
        let (_, sent) = world
            .sandbox_call(
                reqwest::Method::GET,
                Provider::Messaging,
                &format!(
                    "/__sandbox/sms/messages?phone={}",
                    CALLER.trim_start_matches('+')
                ),
                None,
            )
            .await;
        sent.to_string().contains(&url).then_some(sent)
    })
    .await;
    assert!(sms.to_string().contains("ORD-1001"), "{sms}");

    // The customer pays on the provider's page.
    let link_id = link["link_id"].as_str().unwrap();
    let (status, paid) = world
        .sandbox_call(
            reqwest::Method::POST,
            Provider::Payment,
            &format!("/__sandbox/payment_links/{link_id}/pay"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{paid}");
    let solved = eventually("the solved ticket", async || {
        let (_, ticket) = world
            .invoke("ticketing", "get-ticket", json!({"ticket_id": ticket_id}))
            .await;
        (ticket["status"] == "solved").then_some(ticket)
    })
    .await;
    assert!(
        solved
            .to_string()
            .contains("Order ORD-1001 was paid (19900 CNY)"),
        "{solved}"
    );
    let paid_events = world.events("payment.paid").await;
    assert_eq!(paid_events.len(), 1, "{paid_events:?}");
    assert_eq!(paid_events[0]["subject"], "ORD-1001");
}

#[tokio::test]
async fn an_easemob_binding_routes_to_its_agent_overflows_when_busy_and_refreshes_once() {
    let world = World::start().await;
    let token_requests = async || {
        world
            .sandbox_call(
                reqwest::Method::GET,
                Provider::Easemob,
                "/__sandbox/easemob/stats",
                None,
            )
            .await
            .1["token_requests"]
            .as_u64()
            .unwrap()
    };
    let binding =
        json!({"business_flag": "lead-42", "visitor": "visitor_1", "agent": "alice@example.com"});
    let (status, bound) = world
        .invoke("easemob-routing", "create-binding", binding.clone())
        .await;
    assert_eq!(status, 200, "{bound}");
    let (_, duplicate) = world
        .invoke("easemob-routing", "create-binding", binding)
        .await;
    assert_eq!(error_code(&duplicate), "binding_failed", "{duplicate}");

    let route = json!({"visitor": "visitor_1", "business_flag": "lead-42"});
    let (status, routed) = world
        .invoke("easemob-routing", "route-session", route.clone())
        .await;
    assert_eq!(status, 200, "{routed}");
    assert_eq!(routed["agent"], "alice@example.com", "{routed}");
    assert_eq!(routed["dispatch"], "binding");

    world
        .sandbox_call(
            reqwest::Method::PUT,
            Provider::Easemob,
            "/__sandbox/easemob/agents/alice@example.com",
            Some(json!({"status": "busy"})),
        )
        .await;
    let (_, overflow) = world
        .invoke("easemob-routing", "route-session", route.clone())
        .await;
    assert_eq!(overflow["dispatch"], "overflow", "{overflow}");
    assert_eq!(overflow["skill_group"], "sales");
    assert_ne!(overflow["agent"], "alice@example.com");
    assert_eq!(
        token_requests().await,
        1,
        "one token served every call so far"
    );

    // The provider expires the token early; concurrent calls refresh it once.
    world
        .sandbox_call(
            reqwest::Method::POST,
            Provider::Easemob,
            "/__sandbox/easemob/tokens/expire",
            None,
        )
        .await;
    let calls = (0..6).map(|i| {
        world.invoke(
            "easemob-routing",
            "route-session",
            json!({"visitor": format!("visitor_{i}"), "skill_group": "support"}),
        )
    });
    for (status, body) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        token_requests().await,
        2,
        "one refresh for six concurrent calls"
    );

    let (status, deleted) = world
        .invoke(
            "easemob-routing",
            "delete-binding",
            json!({"business_flag": "lead-42", "visitor": "visitor_1"}),
        )
        .await;
    assert_eq!(status, 200, "{deleted}");
}
