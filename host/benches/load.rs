//! Load at a fixed rate through real HTTP, against the sandbox logistics
//! provider injecting 2 % failures (503) and 50 ms latency. Run with
//! `scripts/load`, which builds the connectors first.
//!
//! 1. The seed's bar: 100 calls/s for 60 s must end with at most 0.1 %
//!    failed calls and a p99 of at most 300 ms.
//! 2. A ramp: the rate doubles every step (10 s each) until a step fails
//!    that bar or falls behind its rate, then two halvings narrow the gap;
//!    the highest step that held is the rate this host sustains.
//!
//! Calls are sent open-loop — on a fixed schedule, not when the previous
//! call returns — so a slow host shows up as latency and failures rather
//! than as a quietly lower rate.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{serve_logistics, stats};
use switchboard_sandbox::{FaultConfig, Sandbox, SandboxConfig};

/// At most this share of calls may fail.
const MAX_FAILED: f64 = 0.001;
/// The p99 every step must stay under.
const MAX_P99: Duration = Duration::from_millis(300);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one step of load did.
struct Step {
    rate: u64,
    seconds: u64,
    sent: u64,
    failed: u64,
    /// Failed calls by HTTP status (0: no answer).
    failures: BTreeMap<u16, u64>,
    p50_ms: f64,
    p99_ms: f64,
    achieved: f64,
}

impl Step {
    fn failed_share(&self) -> f64 {
        self.failed as f64 / self.sent.max(1) as f64
    }

    /// Whether it met the bar and kept up with its rate.
    fn held(&self) -> bool {
        self.failed_share() <= MAX_FAILED
            && self.p99_ms <= MAX_P99.as_secs_f64() * 1000.0
            && self.achieved >= self.rate as f64 * 0.95
    }

    fn row(&self) {
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(status, count)| format!("{count}× {status}"))
            .collect();
        println!(
            "| {} | {} | {} | {:.0} | {} | {:.3} % | {:.1} | {:.1} | {} | {} |",
            self.rate,
            self.seconds,
            self.sent,
            self.achieved,
            self.failed,
            self.failed_share() * 100.0,
            self.p50_ms,
            self.p99_ms,
            if self.held() { "yes" } else { "no" },
            if failures.is_empty() {
                "-".to_owned()
            } else {
                failures.join(", ")
            }
        );
    }
}

/// Sends `rate` calls per second for `seconds`, each on its own task.
async fn step(url: &str, rate: u64, seconds: u64) -> Step {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let failures = Arc::new(Mutex::new(BTreeMap::<u16, u64>::new()));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut calls = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until((started + interval * i as u32).into()).await;
        let (client, failures) = (client.clone(), failures.clone());
        // Never ending in 0000, which the sandbox answers as an unknown parcel.
        let number = i * 10 + 1;
        let body = format!(r#"{{"carrier":"sf-express","tracking_number":"SF{number:010}"}}"#);
        let url = url.to_owned();
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", common::AUTHORIZATION)
                .body(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            let status = match response {
                Ok(r) if r.status().is_success() => r.bytes().await.map_or(0, |_| 200),
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            if status != 200 {
                *failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(status)
                    .or_default() += 1;
            }
            sent.elapsed()
        }));
    }
    let sending = started.elapsed();
    let mut latencies = Vec::with_capacity(calls.len());
    for call in calls {
        latencies.push(call.await.unwrap());
    }
    let s = stats(latencies);
    let failures = failures.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Step {
        rate,
        seconds,
        sent: total,
        failed: failures.values().sum(),
        failures,
        p50_ms: s.p50 / 1000.0,
        p99_ms: s.p99 / 1000.0,
        achieved: total as f64 / sending.as_secs_f64(),
    }
}

fn header() {
    println!(
        "| rate /s | seconds | calls | achieved /s | failed | failed % | p50 ms | p99 ms | held | failures by status |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
        sandbox.logistics_faults().set(FaultConfig {
            latency_ms: 50,
            failure_rate: 0.02,
            ..FaultConfig::default()
        });
        let url = serve_logistics(&sandbox).await;
        step(&url, 50, 2).await;

        let seconds = env_u64("BENCH_LOAD_SECONDS", 60);
        println!("\n### The seed's bar: 100 calls/s for {seconds} s, upstream 2 % failures and 50 ms latency\n");
        header();
        let bar = step(&url, 100, seconds).await;
        bar.row();
        println!(
            "\nbar (≤ 0.1 % failed, p99 ≤ 300 ms): {}",
            if bar.held() { "passed" } else { "FAILED" }
        );

        let ramp_seconds = env_u64("BENCH_RAMP_SECONDS", 10);
        println!("\n### Ramp: the rate doubles every {ramp_seconds} s until a step does not hold, then two halvings\n");
        header();
        let mut sustained = None;
        let mut rate = 200;
        let failed_at = loop {
            let result = step(&url, rate, ramp_seconds).await;
            result.row();
            if !result.held() {
                break rate;
            }
            sustained = Some(rate);
            rate *= 2;
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        // Two halvings between the last rate held and the first that was not.
        let mut failed_at = failed_at;
        for _ in 0..2 {
            let low = sustained.unwrap_or(0);
            let rate = low + (failed_at - low) / 2;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let result = step(&url, rate, ramp_seconds).await;
            result.row();
            if result.held() {
                sustained = Some(rate);
            } else {
                failed_at = rate;
            }
        }
        println!(
            "\nhighest rate held (≤ 0.1 % failed, p99 ≤ 300 ms, ≥ 95 % of the rate sent): {} calls/s",
            sustained.map_or_else(|| "below 200".to_owned(), |r| r.to_string())
        );
        println!(
            "sandbox upstream requests (retries included): {}",
            sandbox.logistics_requests()
        );
    });
}
