//! Durable event ingest and delivery lag, against a baseline in the same run.
//! Run with `scripts/bench` (it builds the connectors first).
//!
//! 1. Appending events that must be on disk before each is acknowledged,
//!    from 32 concurrent writers: one flush per event (the baseline) against
//!    the group commit every event goes through.
//! 2. Signed webhooks through the in-process API from 32 concurrent
//!    providers: the `relay` connector verifies each HMAC and returns one
//!    event, which is durable before the 200. A subscription delivers every
//!    event to a loopback receiver; the delivery lag is from the event being
//!    stored to the receiver having it.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::{dist, install, run_load, stats};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use switchboard::app::{App, HostConfig};
use switchboard::events::EventIngest;
use switchboard::registry::plugins_dir::read_package;
use switchboard::store::{EventLog, SledStore, StoredEvent};
use switchboard_sandbox::Subscriber;
use tower::ServiceExt;

const WRITERS: usize = 32;
const SECRET: &str = "bench-secret";

fn seconds() -> u64 {
    std::env::var("BENCH_EVENTS_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

fn event(writer: usize, n: u64) -> StoredEvent {
    StoredEvent {
        id: format!("w{writer}-{n}"),
        connector: "bench".into(),
        tenant: "default".into(),
        kind: "call.answered".into(),
        subject: Some(format!("call-{writer}")),
        time_ms: 0,
        data: r#"{"caller":"+79001234567","line":"sales"}"#.into(),
    }
}

async fn ingest_rates() {
    let duration = Duration::from_secs(seconds());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let per_event = {
        let store = store.clone();
        run_load(WRITERS, duration, move |writer| {
            let store = store.clone();
            move |n| {
                let store = store.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        store.append_events(&[event(writer, n)]).is_ok()
                            && store.flush_events().is_ok()
                    })
                    .await
                    .unwrap()
                }
            }
        })
        .await
    };
    let ingest = Arc::new(EventIngest::new(store.clone()).unwrap());
    let grouped = run_load(WRITERS, duration, move |writer| {
        let ingest = ingest.clone();
        move |n| {
            let ingest = ingest.clone();
            async move {
                ingest
                    .ingest(vec![event(writer + WRITERS, n)])
                    .await
                    .is_ok()
            }
        }
    })
    .await;
    let rate = |load: &common::Load| load.ok as f64 / load.elapsed.as_secs_f64();
    println!(
        "durable ingest, {WRITERS} writers, flushed before each ack ({} s each):",
        seconds()
    );
    for (name, load) in [
        ("one flush per event (baseline)", &per_event),
        ("group commit", &grouped),
    ] {
        let s = stats(load.latencies.clone());
        println!(
            "  {name:<32} {:>9.0} events/s  ack p50 {:>8.1} µs  p99 {:>8.1} µs  failed {}",
            rate(load),
            s.p50,
            s.p99,
            load.failed
        );
    }
    println!(
        "  group commit / baseline: {:.1}x the events/s",
        rate(&grouped) / rate(&per_event)
    );
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn webhooks_and_lag() {
    let duration = Duration::from_secs(seconds());
    let data = tempfile::tempdir().unwrap();
    let app = App::open(HostConfig::new(data.path().to_owned())).unwrap();
    app.load_connectors().await.unwrap();
    let relay = read_package(&dist().join("test-plugins/relay")).unwrap();
    install(&app.state.registry, relay).await;
    let router = app.router();
    let put = Request::put("/v1/connectors/relay/secrets/hook_secret")
        .header("content-type", "application/json")
        .body(Body::from(json!({"value": SECRET}).to_string()))
        .unwrap();
    assert!(
        router
            .clone()
            .oneshot(put)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let receiver = Subscriber::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let subscribe = Request::post("/v1/subscriptions")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"name": "bench", "url": format!("{}/v1/receive/bench", receiver.url()), "kinds": ["call.*"]})
                .to_string(),
        ))
        .unwrap();
    assert!(
        router
            .clone()
            .oneshot(subscribe)
            .await
            .unwrap()
            .status()
            .is_success()
    );
    app.start_dispatching().await.unwrap();

    let load = {
        let router = router.clone();
        run_load(WRITERS, duration, move |writer| {
            let router = router.clone();
            move |n| {
                let router = router.clone();
                async move {
                    let body = serde_json::to_vec(&json!({"events": [{
                        "id": format!("hook-{writer}-{n}"),
                        "kind": "call.answered",
                        "subject": format!("call-{writer}"),
                        "data": {"caller": "+79001234567", "n": n}
                    }]}))
                    .unwrap();
                    let request = Request::post("/v1/hooks/relay/signed")
                        .header("x-signature", signature(&body))
                        .body(Body::from(body))
                        .unwrap();
                    router.oneshot(request).await.unwrap().status().is_success()
                }
            }
        })
        .await
    };
    let settle = Instant::now();
    while (receiver.received().len() as u64) < load.ok && settle.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    for received in receiver.received() {
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        let lag = received
            .at_ms
            .saturating_sub(body["time_ms"].as_u64().unwrap());
        first_seen
            .entry(body["id"].as_str().unwrap().to_owned())
            .or_insert(lag);
    }
    let lags = stats(
        first_seen
            .values()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
    );
    let acks = stats(load.latencies.clone());
    println!(
        "signed webhooks through the API, {WRITERS} providers, one event each, with one subscription:"
    );
    println!(
        "  ingest {:>9.0} events/s  ack p50 {:>8.1} µs  p99 {:>8.1} µs  failed {}",
        load.ok as f64 / load.elapsed.as_secs_f64(),
        acks.p50,
        acks.p99,
        load.failed
    );
    println!(
        "  delivered {} of {} (after {:.1} s more)  lag p50 {:.0} ms  p99 {:.0} ms (ms clock)",
        first_seen.len(),
        load.ok,
        settle.elapsed().as_secs_f64(),
        lags.p50 / 1000.0,
        lags.p99 / 1000.0
    );
    app.stop_dispatching().await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    ingest_rates().await;
    webhooks_and_lag().await;
}
