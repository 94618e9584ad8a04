//! Alerts: 1 % of failures from the sandbox's failure injection fires one
//! alert, recovery resolves it once, and both reach a subscription.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestHost, sandbox};
use serde_json::{Value, json};
use switchboard::alerts::{AlertPolicy, Rule};
use switchboard::capabilities::now_ms;
use switchboard_sandbox::{FaultConfig, Provider, Subscriber};

const PARCEL: &str = r#"{"carrier":"yto","tracking_number":"YT1234567890"}"#;

async fn calls(host: &TestHost, n: usize) {
    for _ in 0..n {
        let reply = host.invoke("logistics-tracking", "track", PARCEL).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
}

#[tokio::test]
async fn one_percent_failures_fire_one_alert_and_recovery_resolves_it_once() {
    let sandbox = sandbox().await;
    let host = TestHost::open_with(tempfile::tempdir().unwrap(), |config| {
        config.alerts = AlertPolicy {
            window: Duration::from_secs(60),
            min_calls: 100,
            ..AlertPolicy::default()
        };
    });
    host.app.load_connectors().await.unwrap();
    host.install_bundled(&sandbox).await;
    let receiver = Subscriber::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let subscription = json!({
        "name": "on-call",
        "url": format!("{}/v1/receive/on-call", receiver.url()),
        "kinds": ["switchboard.alert_fired", "switchboard.alert_resolved"],
    });
    let created = host
        .post_json("/v1/subscriptions", &subscription.to_string())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    host.app.start_dispatching().await.unwrap();
    let state = &host.app.state;
    let alerts = &state.alerts;

    calls(&host, 99).await;
    assert_eq!(alerts.evaluate(state, now_ms()).await.0, []);

    sandbox.faults(Provider::Logistics).set(FaultConfig {
        fail_next: 3,
        ..FaultConfig::default()
    });
    let failed = host.invoke("logistics-tracking", "track", PARCEL).await;
    assert_eq!(
        failed.code(),
        "upstream_unavailable",
        "three attempts, all failed"
    );
    let (fired, _) = alerts.evaluate(state, now_ms()).await;
    assert_eq!(fired.len(), 1, "1 of 100 calls is 1 %: {fired:?}");
    assert_eq!(
        (fired[0].rule, fired[0].connector.as_str(), fired[0].calls),
        (Rule::FailureRate, "logistics-tracking", 100)
    );
    assert!((fired[0].value - 1.0).abs() < 1e-9);
    assert_eq!(
        alerts.evaluate(state, now_ms()).await,
        (Vec::new(), Vec::new()),
        "an alert fires once"
    );
    let listed = host.get("/v1/alerts").await;
    assert_eq!(
        listed.json["firing"][0]["rule"], "failure_rate",
        "{}",
        listed.text
    );
    assert_eq!(listed.json["policy"]["failure_percent"], 1.0);

    sandbox.faults(Provider::Logistics).clear();
    calls(&host, 100).await;
    let (fired, resolved) = alerts.evaluate(state, now_ms()).await;
    assert_eq!(
        (fired.len(), resolved.len()),
        (0, 1),
        "1 of 200 is under 1 %"
    );
    assert!(resolved[0].resolved_at_ms.is_some());
    assert_eq!(
        alerts.evaluate(state, now_ms()).await,
        (Vec::new(), Vec::new()),
        "an alert resolves once"
    );
    let listed = host.get("/v1/alerts").await;
    assert_eq!(listed.json["firing"], json!([]));
    assert_eq!(listed.json["resolved"][0]["rule"], "failure_rate");

    let started = Instant::now();
    let kinds = loop {
        let kinds: Vec<String> = receiver
            .received()
            .iter()
            .map(|delivery| {
                let body: Value = serde_json::from_slice(&delivery.body).unwrap();
                body["kind"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        if kinds.len() >= 2 || started.elapsed() > Duration::from_secs(10) {
            break kinds;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        kinds,
        ["switchboard.alert_fired", "switchboard.alert_resolved"]
    );
}
