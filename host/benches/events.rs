//! Durable event ingest and delivery lag, against a baseline in the same run.
//! Run with `scripts/bench` (it builds the connectors first).
//!
//! 1. Appending events that must be on disk before each is acknowledged,
//!    from 32 concurrent writers: one flush per event (the baseline) against
//!    the group commit every event goes through.
//! 2. Signed webhooks through the in-process API: the `relay` connector
//!    verifies each HMAC and returns one event, which is durable before the
//!    200; a subscription delivers every event to a loopback receiver. First
//!    32 providers as fast as they can (the most the host takes in, and how
//!    fast delivery drains it), then an open-loop steady rate
//!    (`BENCH_EVENTS_RATES`, default 1000 and 3000/s) with the delivery lag: from the
//!    event being stored to the receiver having it.
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
use switchboard::app::App;
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
    let store = Arc::new(
        SledStore::open(
            dir.path(),
            Arc::new(switchboard::sealing::Sealer::ephemeral()),
        )
        .unwrap(),
    );
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

fn rates() -> Vec<u64> {
    std::env::var("BENCH_EVENTS_RATES")
        .ok()
        .map(|v| v.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 3000])
}

fn webhook(id: String, subject: String, n: u64) -> Request<Body> {
    let body = serde_json::to_vec(&json!({"events": [{
        "id": id,
        "kind": "call.answered",
        "subject": subject,
        "data": {"caller": "+79001234567", "n": n}
    }]}))
    .unwrap();
    Request::post("/v1/hooks/relay/signed")
        .header("x-signature", signature(&body))
        .body(Body::from(body))
        .unwrap()
}

/// Waits until the receiver has `expected` distinct events (at most a
/// minute); returns the lag of each, in milliseconds, and how long it took.
async fn drained(receiver: &Subscriber, expected: u64, prefix: &str) -> (Vec<u64>, Duration) {
    let started = Instant::now();
    loop {
        let mut first_seen: HashMap<String, u64> = HashMap::new();
        for received in receiver.received() {
            let body: Value = serde_json::from_slice(&received.body).unwrap();
            let id = body["id"].as_str().unwrap();
            if id.starts_with(prefix) {
                let lag = received
                    .at_ms
                    .saturating_sub(body["time_ms"].as_u64().unwrap());
                first_seen.entry(id.to_owned()).or_insert(lag);
            }
        }
        if first_seen.len() as u64 >= expected || started.elapsed() > Duration::from_secs(60) {
            return (first_seen.into_values().collect(), started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lag_line(lags: &[u64], expected: u64) -> String {
    let lag = stats(lags.iter().map(|ms| Duration::from_millis(*ms)).collect());
    format!(
        "delivered {} of {}, lag p50 {:.0} ms, p99 {:.0} ms (ms clock)",
        lags.len(),
        expected,
        lag.p50 / 1000.0,
        lag.p99 / 1000.0
    )
}

async fn webhooks_and_lag() {
    let duration = Duration::from_secs(seconds());
    let data = tempfile::tempdir().unwrap();
    let app = App::open(common::host_config(data.path())).unwrap();
    app.load_connectors().await.unwrap();
    let relay = read_package(&dist().join("test-plugins/relay")).unwrap();
    install(&app.state.registry, relay).await;
    let router = app.router();
    let put = Request::put("/v1/connectors/relay/secrets/hook_secret")
        .header("content-type", "application/json")
        .header("authorization", common::AUTHORIZATION)
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
        .header("authorization", common::AUTHORIZATION)
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
                let request = webhook(format!("max-{writer}-{n}"), format!("call-{writer}"), n);
                async move { router.oneshot(request).await.unwrap().status().is_success() }
            }
        })
        .await
    };
    let ingest_rate = load.ok as f64 / load.elapsed.as_secs_f64();
    let (lags, drain) = drained(&receiver, load.ok, "max-").await;
    let delivery_rate = lags.len() as f64 / (load.elapsed + drain).as_secs_f64();
    let acks = stats(load.latencies.clone());
    println!("signed webhooks through the API, one event each, one subscription:");
    println!(
        "  {WRITERS} providers flat out: {ingest_rate:>7.0} events/s in, ack p50 {:.1} µs, p99 {:.1} µs, failed {}",
        acks.p50, acks.p99, load.failed
    );
    println!(
        "    delivered at {delivery_rate:.0} events/s ({:.1} s to drain after the last ack); {}",
        drain.as_secs_f64(),
        lag_line(&lags, load.ok)
    );

    for rate in rates() {
        let every = Duration::from_secs_f64(1.0 / rate as f64);
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let started = Instant::now();
        let mut sent = Vec::new();
        let mut n = 0;
        while started.elapsed() < duration {
            ticker.tick().await;
            n += 1;
            let request = webhook(format!("steady{rate}-{n}"), format!("call-{}", n % 64), n);
            let router = router.clone();
            sent.push(tokio::spawn(async move {
                let sent = Instant::now();
                let ok = router.oneshot(request).await.unwrap().status().is_success();
                (ok, sent.elapsed())
            }));
        }
        let elapsed = started.elapsed();
        let (mut ok, mut latencies) = (0, Vec::new());
        for task in sent {
            let (succeeded, latency) = task.await.unwrap();
            ok += u64::from(succeeded);
            latencies.push(latency);
        }
        let acks = stats(latencies);
        let (lags, _) = drained(&receiver, ok, &format!("steady{rate}-")).await;
        println!(
            "  open loop at {rate}/s: {:.0} events/s in, ack p50 {:.1} µs, p99 {:.1} µs, {} failed",
            ok as f64 / elapsed.as_secs_f64(),
            acks.p50,
            acks.p99,
            n - ok
        );
        println!("    {}", lag_line(&lags, ok));
    }
    app.stop_dispatching().await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    ingest_rates().await;
    webhooks_and_lag().await;
}
