//! The connector lifecycle through the API with real components: versions
//! side by side, upgrade and rollback under steady traffic, canaries by
//! weight and routing key, draining, the automatic rollback, and restarts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestHost};
use serde_json::{Value, json};
use switchboard::store::EventLog;

/// A host serving echo 0.1.0 with 0.2.0 staged beside it.
async fn host_with_two_versions() -> TestHost {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    host.stage("test-versions", "echo-0.2.0").await;
    host
}

fn call_request(agent: &str, channel: Option<&str>, input: &str) -> Request<Body> {
    let mut request = Request::post("/v1/connectors/echo/operations/version")
        .header("content-type", "application/json")
        .header("x-agent", agent);
    if let Some(channel) = channel {
        request = request.header("x-channel", channel);
    }
    request.body(Body::from(input.to_owned())).unwrap()
}

async fn call(host: &TestHost, agent: &str, channel: Option<&str>) -> Reply {
    host.send(call_request(agent, channel, "{}")).await
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn post(host: &TestHost, uri: &str) -> Reply {
    let reply = host.post_json(uri, "").await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text);
    reply
}

async fn canary(host: &TestHost, body: Value) -> Reply {
    let reply = host
        .put_json("/v1/connectors/echo/canary", &body.to_string())
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
}

async fn versions(host: &TestHost) -> Value {
    host.get("/v1/connectors/echo/versions").await.json
}

/// One call made by the traffic tasks.
#[derive(Debug)]
struct Outcome {
    phase: Option<usize>,
    agent: String,
    channel: Option<&'static str>,
    status: StatusCode,
    served_by: Option<String>,
    ran: Option<String>,
    route: Option<String>,
}

/// Calls echo every 4 ms as 100 agents (every tenth call over `sms`) until
/// `stop`. A call is attributed to a phase only when no change was under way
/// at any point while it ran.
async fn traffic(
    host: Arc<TestHost>,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    task: usize,
) -> Vec<Outcome> {
    let mut ticker = tokio::time::interval(Duration::from_millis(4));
    let mut outcomes = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::Acquire) {
            break;
        }
        ticker.tick().await;
        let agent = format!("agent-{task}-{}", i % 100);
        let channel = (i % 10 == 0).then_some("sms");
        let before = phase.load(Ordering::Acquire);
        let reply = call(&host, &agent, channel).await;
        let after = phase.load(Ordering::Acquire);
        outcomes.push(Outcome {
            phase: (before == after && before.is_multiple_of(2)).then_some(before / 2),
            agent,
            channel,
            status: reply.status,
            served_by: header(&reply, "x-connector-version"),
            ran: reply.json["version"].as_str().map(str::to_owned),
            route: header(&reply, "x-connector-route"),
        });
    }
    outcomes
}

/// What each phase of the steady-traffic test expects.
enum Expect {
    All(&'static str),
    WeightedCanary,
    ListedAgentsOnOld,
}

#[tokio::test]
async fn calls_never_fail_through_upgrades_canaries_promotions_and_rollbacks() {
    let host = Arc::new(host_with_two_versions().await);
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..4)
        .map(|task| tokio::spawn(traffic(host.clone(), phase.clone(), stop.clone(), task)))
        .collect();

    let mut expectations = vec![Expect::All("0.1.0")];
    let change = |n: usize| phase.store(n, Ordering::Release);
    let settle = || tokio::time::sleep(Duration::from_millis(400));
    settle().await;
    for round in 0..2 {
        change(4 * round + 1);
        post(&host, "/v1/connectors/echo/versions/0.2.0/activate").await;
        change(4 * round + 2);
        expectations.push(Expect::All("0.2.0"));
        settle().await;
        change(4 * round + 3);
        post(&host, "/v1/connectors/echo/rollback").await;
        change(4 * round + 4);
        expectations.push(Expect::All("0.1.0"));
        settle().await;
    }
    change(9);
    canary(
        &host,
        json!({ "version": "0.2.0", "weight_percent": 30, "channels": ["sms"] }),
    )
    .await;
    change(10);
    expectations.push(Expect::WeightedCanary);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    change(11);
    post(&host, "/v1/connectors/echo/canary/promote").await;
    change(12);
    expectations.push(Expect::All("0.2.0"));
    settle().await;
    change(13);
    canary(
        &host,
        json!({ "version": "0.1.0", "weight_percent": 0, "agents": ["agent-0-1", "agent-1-1"] }),
    )
    .await;
    change(14);
    expectations.push(Expect::ListedAgentsOnOld);
    settle().await;
    change(15);
    post(&host, "/v1/connectors/echo/canary/abort").await;
    change(16);
    expectations.push(Expect::All("0.2.0"));
    settle().await;
    change(17);
    post(&host, "/v1/connectors/echo/rollback").await;
    change(18);
    expectations.push(Expect::All("0.1.0"));
    settle().await;
    stop.store(true, Ordering::Release);

    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status != StatusCode::OK)
        .collect();
    assert!(
        failed.is_empty(),
        "{} calls failed: {failed:?}",
        failed.len()
    );
    for outcome in &outcomes {
        assert!(outcome.served_by.is_some(), "untagged: {outcome:?}");
        assert_eq!(
            outcome.served_by, outcome.ran,
            "the tag names the version that ran"
        );
    }
    for (index, expect) in expectations.iter().enumerate() {
        let in_phase: Vec<&Outcome> = outcomes.iter().filter(|o| o.phase == Some(index)).collect();
        assert!(
            in_phase.len() >= 50,
            "phase {index}: {} calls",
            in_phase.len()
        );
        check_phase(index, expect, &in_phase);
    }
    eprintln!("{} calls, none failed", outcomes.len());
}

fn version_of(outcome: &Outcome) -> &str {
    outcome.served_by.as_deref().unwrap_or_default()
}

fn check_phase(index: usize, expect: &Expect, calls: &[&Outcome]) {
    match expect {
        Expect::All(version) => {
            for call in calls {
                assert_eq!(version_of(call), *version, "phase {index}: {call:?}");
                assert_eq!(call.route, None, "no canary runs in phase {index}");
            }
        }
        Expect::WeightedCanary => {
            let mut by_agent: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for call in calls {
                if call.channel == Some("sms") {
                    assert_eq!(version_of(call), "0.2.0", "sms is listed: {call:?}");
                    assert_eq!(call.route.as_deref(), Some("canary"));
                } else {
                    by_agent
                        .entry(&call.agent)
                        .or_default()
                        .insert(version_of(call));
                }
            }
            let unsticky: Vec<&&str> = by_agent
                .iter()
                .filter(|(_, versions)| versions.len() > 1)
                .map(|(agent, _)| agent)
                .collect();
            assert!(
                unsticky.is_empty(),
                "{} agents saw both versions, such as {:?}",
                unsticky.len(),
                &unsticky[..unsticky.len().min(5)]
            );
            let on_candidate = by_agent
                .values()
                .filter(|versions| versions.contains("0.2.0"))
                .count();
            let share = on_candidate as f64 / by_agent.len() as f64;
            assert!(
                by_agent.len() >= 200 && (0.2..=0.4).contains(&share),
                "{on_candidate} of {} agents on the candidate at a 30 % weight",
                by_agent.len()
            );
        }
        Expect::ListedAgentsOnOld => {
            for call in calls {
                let listed = call.agent == "agent-0-1" || call.agent == "agent-1-1";
                let expected = if listed { "0.1.0" } else { "0.2.0" };
                assert_eq!(version_of(call), expected, "phase {index}: {call:?}");
            }
            assert!(calls.iter().any(|c| c.agent == "agent-0-1"));
        }
    }
}

#[tokio::test]
async fn versions_are_listed_with_state_hash_and_counts_and_misuse_gets_clear_codes() {
    let host = host_with_two_versions().await;
    for _ in 0..3 {
        assert_eq!(call(&host, "a", None).await.status, StatusCode::OK);
    }
    let view = versions(&host).await;
    assert_eq!(view["active"], "0.1.0");
    assert_eq!(view["previous"], Value::Null);
    let listed = view["versions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0]["version"].as_str(), listed[0]["state"].as_str()),
        (Some("0.1.0"), Some("active"))
    );
    assert_eq!(
        (listed[1]["version"].as_str(), listed[1]["state"].as_str()),
        (Some("0.2.0"), Some("inactive"))
    );
    assert_eq!(listed[0]["calls"], 3);
    assert_eq!(listed[0]["failures"], 0);
    assert_eq!(listed[0]["package_hash"].as_str().unwrap().len(), 64);
    assert_ne!(listed[0]["package_hash"], listed[1]["package_hash"]);
    assert!(listed[1]["installed_at_ms"].as_u64().unwrap() > 0);

    let refused = [
        (
            host.send(
                Request::delete("/v1/connectors/echo/versions/0.1.0")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await,
            StatusCode::CONFLICT,
            "version_in_use",
        ),
        (
            host.post_json("/v1/connectors/echo/versions/9.9.9/activate", "")
                .await,
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            host.post_json("/v1/connectors/echo/versions/latest/activate", "")
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_version",
        ),
        (
            host.post_json("/v1/connectors/echo/rollback", "").await,
            StatusCode::CONFLICT,
            "no_previous_version",
        ),
        (
            host.post_json("/v1/connectors/echo/canary/promote", "")
                .await,
            StatusCode::CONFLICT,
            "no_canary",
        ),
        (
            host.put_json("/v1/connectors/echo/canary", r#"{"version": "0.1.0"}"#)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_canary",
        ),
        (
            host.put_json(
                "/v1/connectors/echo/canary",
                r#"{"version": "0.2.0", "weight_percent": 101}"#,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_canary",
        ),
        (
            host.put_json(
                "/v1/connectors/echo/canary",
                r#"{"version": "0.2.0", "weight": 10}"#,
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            host.post_json("/v1/connectors/nope/rollback", "").await,
            StatusCode::NOT_FOUND,
            "connector_not_found",
        ),
    ];
    for (reply, status, code) in refused {
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{}",
            reply.text
        );
    }
    let removed = host
        .send(
            Request::delete("/v1/connectors/echo/versions/0.2.0")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    assert_eq!(
        versions(&host).await["versions"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_call_started_on_a_replaced_version_finishes_on_it_while_the_version_drains() {
    let host = Arc::new(host_with_two_versions().await);
    let slow = {
        let host = host.clone();
        tokio::spawn(async move {
            host.send(call_request("a", None, r#"{"wait_ms": 1000}"#))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(&host, "/v1/connectors/echo/versions/0.2.0/activate").await;
    let view = versions(&host).await;
    assert_eq!(view["versions"][0]["state"], "draining", "{view}");
    assert_eq!(view["versions"][0]["in_flight"], 1);
    assert_eq!(view["versions"][0]["loaded"], true);
    let fresh = call(&host, "a", None).await;
    assert_eq!(
        header(&fresh, "x-connector-version").as_deref(),
        Some("0.2.0")
    );

    let slow = slow.await.unwrap();
    assert_eq!(slow.status, StatusCode::OK, "{}", slow.text);
    assert_eq!(slow.json["version"], "0.1.0");
    assert_eq!(
        header(&slow, "x-connector-version").as_deref(),
        Some("0.1.0")
    );
    let view = versions(&host).await;
    assert_eq!(view["versions"][0]["state"], "inactive");
    assert_eq!(view["versions"][0]["in_flight"], 0);
    assert_eq!(
        view["versions"][0]["loaded"], false,
        "unloaded once its last call ended"
    );
    assert_eq!(view["versions"][1]["loaded"], true);
}

#[tokio::test]
async fn a_call_still_running_at_the_drain_deadline_is_cut_off_with_a_retryable_code() {
    let data = tempfile::tempdir().unwrap();
    let host = TestHost::open_with(data, |config| {
        config.lifecycle.drain_deadline = Duration::from_millis(200);
    });
    host.app.load_connectors().await.unwrap();
    host.install("test-plugins", "echo").await;
    host.stage("test-versions", "echo-0.2.0").await;
    let host = Arc::new(host);
    let slow = {
        let host = host.clone();
        tokio::spawn(async move {
            host.send(call_request("a", None, r#"{"wait_ms": 4000}"#))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    post(&host, "/v1/connectors/echo/versions/0.2.0/activate").await;
    let slow = slow.await.unwrap();
    assert_eq!(
        (slow.status, slow.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "version_unloaded"),
        "{}",
        slow.text
    );
    assert_eq!(slow.json["error"]["retryable"], true);
    let view = versions(&host).await;
    assert_eq!(view["versions"][0]["state"], "inactive");
    assert_eq!(
        view["versions"][0]["failures"], 0,
        "a cut-off is not the version's failure"
    );
}

#[tokio::test]
async fn a_broken_candidate_is_rolled_back_automatically_with_the_reason_recorded() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    host.stage("test-versions", "echo-0.3.0").await;
    canary(&host, json!({ "version": "0.3.0", "weight_percent": 50 })).await;

    // The candidate's own circuit breaker opens after 10 crashes; its
    // refusals count against it too, so the canary is judged after 20.
    let (mut trapped, mut refused) = (0, 0);
    for i in 0..1_000 {
        let reply = call(&host, &format!("agent-{i}"), None).await;
        match reply.status {
            StatusCode::OK => assert_eq!(reply.json["version"], "0.1.0"),
            _ => match reply.code() {
                "connector_trapped" => trapped += 1,
                "circuit_open" => refused += 1,
                other => panic!("unexpected {other}: {}", reply.text),
            },
        }
        if trapped + refused == 20 {
            break;
        }
    }
    assert_eq!(
        (trapped, refused),
        (10, 10),
        "the candidate never reached the window's minimum"
    );
    for i in 0..50 {
        let reply = call(&host, &format!("after-{i}"), None).await;
        assert_eq!(
            (reply.status, reply.json["version"].as_str()),
            (StatusCode::OK, Some("0.1.0")),
            "the tripped candidate takes no more calls"
        );
    }
    let mut view = versions(&host).await;
    for _ in 0..100 {
        if view["canary"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        view = versions(&host).await;
    }
    assert_eq!(view["canary"], Value::Null, "{view}");
    assert_eq!(view["active"], "0.1.0");
    let abort = &view["last_abort"];
    assert_eq!(abort["version"], "0.3.0");
    assert_eq!(abort["automatic"], true);
    let reason = abort["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the candidate 100.0 % failed (20 of 20 calls)"),
        "{reason}"
    );
    assert_eq!(view["versions"][1]["failures"], 20);

    let audit = host
        .get("/v1/audit?connector=echo&kind=admin&limit=1000")
        .await
        .json;
    let record = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "canary.aborted")
        .unwrap_or_else(|| panic!("no abort in {audit}"));
    assert_eq!(record["actor"], "auto-rollback");
    assert_eq!(record["version"], "0.3.0");
    assert_eq!(record["detail"], reason);

    let events = host.app.store.read_events(0, 100).unwrap();
    let event = events
        .iter()
        .map(|(_, e)| e)
        .find(|e| e.kind == "switchboard.canary_aborted")
        .expect("an event announces the rollback");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(
        (data["version"].as_str(), data["automatic"].as_bool()),
        (Some("0.3.0"), Some(true))
    );
}

/// The version each of 100 agents is served.
async fn versions_by_agent(host: &TestHost) -> Vec<String> {
    let mut seen = Vec::new();
    for i in 0..100 {
        let reply = call(host, &format!("agent-{i}"), None).await;
        seen.push(header(&reply, "x-connector-version").unwrap());
    }
    seen
}

#[tokio::test]
async fn a_restart_mid_canary_resumes_it_with_the_same_cohort_and_keeps_the_deployment() {
    let host = host_with_two_versions().await;
    canary(
        &host,
        json!({ "version": "0.2.0", "weight_percent": 40, "channels": ["sms"] }),
    )
    .await;
    let before = versions_by_agent(&host).await;
    assert!(before.iter().any(|v| v == "0.2.0") && before.iter().any(|v| v == "0.1.0"));

    let host = host.restart().await;
    let view = versions(&host).await;
    assert_eq!(view["active"], "0.1.0");
    assert_eq!(view["canary"]["version"], "0.2.0");
    assert_eq!(view["canary"]["weight_percent"], 40.0);
    assert_eq!(view["canary"]["channels"], json!(["sms"]));
    assert_eq!(versions_by_agent(&host).await, before, "same cohort");
    let sms = call(&host, "agent-x", Some("sms")).await;
    assert_eq!(
        header(&sms, "x-connector-version").as_deref(),
        Some("0.2.0")
    );

    post(&host, "/v1/connectors/echo/canary/promote").await;
    let host = host.restart().await;
    let view = versions(&host).await;
    assert_eq!(
        (view["active"].as_str(), view["previous"].as_str()),
        (Some("0.2.0"), Some("0.1.0"))
    );
    assert_eq!(view["canary"], Value::Null);
    post(&host, "/v1/connectors/echo/rollback").await;
    let back = call(&host, "a", None).await;
    assert_eq!(
        header(&back, "x-connector-version").as_deref(),
        Some("0.1.0")
    );
}

#[tokio::test]
async fn a_canary_whose_version_no_longer_loads_after_a_restart_is_aborted_and_the_active_serves() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    let (manifest, wasm) = common::package("test-versions", "echo-0.2.0");
    let slow = format!("{manifest}\n[limits]\ndeadline_ms = 30000\n");
    let staged = host
        .send(common::multipart_upload(
            "/v1/connectors?activate=false",
            &slow,
            &wasm,
            None,
        ))
        .await;
    assert_eq!(staged.status, StatusCode::CREATED, "{}", staged.text);
    canary(&host, json!({ "version": "0.2.0", "weight_percent": 100 })).await;

    let host = host
        .restart_with(|config| config.ceilings.deadline = Duration::from_secs(10))
        .await;
    let view = versions(&host).await;
    assert_eq!(view["canary"], Value::Null, "{view}");
    assert_eq!(view["last_abort"]["version"], "0.2.0");
    assert!(
        view["last_abort"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("could not be loaded at start"),
        "{view}"
    );
    let reply = call(&host, "a", None).await;
    assert_eq!(
        header(&reply, "x-connector-version").as_deref(),
        Some("0.1.0")
    );
    let audit = host
        .get("/v1/audit?connector=echo&kind=admin&limit=1000")
        .await
        .json;
    assert!(
        audit["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "canary.aborted" && r["actor"] == "startup"),
        "{audit}"
    );
}

#[tokio::test]
async fn the_call_context_may_come_in_the_body_and_routes_the_canary() {
    let host = host_with_two_versions().await;
    canary(
        &host,
        json!({ "version": "0.2.0", "weight_percent": 0, "agents": ["7001"] }),
    )
    .await;
    let envelope = |agent: &str| {
        json!({
            "connector": "echo",
            "operation": "version",
            "input": {},
            "context": { "agent": agent, "channel": "ivr", "tenant": "acme" }
        })
        .to_string()
    };
    let listed = host.post_json("/v1/invoke", &envelope("7001")).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.json["version"], "0.2.0");
    assert_eq!(
        header(&listed, "x-connector-route").as_deref(),
        Some("canary")
    );
    let other = host.post_json("/v1/invoke", &envelope("7002")).await;
    assert_eq!(other.json["version"], "0.1.0");
    assert_eq!(
        header(&other, "x-connector-route").as_deref(),
        Some("active")
    );

    let bad = host
        .post_json(
            "/v1/invoke",
            r#"{"connector": "echo", "operation": "version", "input": {}, "context": {"agent": ""}}"#,
        )
        .await;
    assert_eq!(bad.code(), "invalid_context");
    let unknown = host
        .post_json("/v1/invoke", r#"{"connector": "echo", "input": {}}"#)
        .await;
    assert_eq!(unknown.code(), "invalid_json");
}
