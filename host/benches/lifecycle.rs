//! What a hot swap costs, each figure against a baseline in the same run.
//! Run with `scripts/bench` (it builds the connectors first).
//!
//! 1. Calls/s and latency of the echo connector from 8 concurrent callers
//!    through the in-process API, without upgrades and then while the active
//!    version alternates between 0.1.0 and 0.2.0 every 100 ms.
//! 2. The time from install to the first served call: with a cold compile
//!    cache and with the package already compiled.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use common::{Load, dist, install, run_load, stats};
use switchboard::app::App;
use switchboard::registry::lifecycle::{Activation, Actor};
use switchboard::registry::plugins_dir::read_package;
use switchboard::store::InstallSource;
use tower::ServiceExt;

const CALLERS: usize = 8;
const SWAP_EVERY: Duration = Duration::from_millis(100);

fn seconds() -> u64 {
    std::env::var("BENCH_SWAP_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

async fn call(router: &Router, input: &'static str) -> bool {
    let request = Request::post("/v1/connectors/echo/operations/echo")
        .header("content-type", "application/json")
        .header("authorization", common::AUTHORIZATION)
        .body(Body::from(input))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let ok = response.status().is_success();
    http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
    ok
}

/// Calls echo from `CALLERS` tasks for `duration`.
async fn load(router: &Router, duration: Duration) -> Load {
    run_load(CALLERS, duration, |_| {
        let router = router.clone();
        move |_| {
            let router = router.clone();
            async move { call(&router, r#"{"order":"A-1001"}"#).await }
        }
    })
    .await
}

async fn hot_swap() {
    let data = tempfile::tempdir().unwrap();
    let app = App::open(common::host_config(data.path())).unwrap();
    app.load_connectors().await.unwrap();
    let registry = app.state.registry.clone();
    install(
        &registry,
        read_package(&dist().join("test-plugins/echo")).unwrap(),
    )
    .await;
    registry
        .install(
            read_package(&dist().join("test-versions/echo-0.2.0")).unwrap(),
            InstallSource::Api,
            Activation::Stage,
            Actor::Api,
        )
        .await
        .unwrap();
    let router = app.router();
    let duration = Duration::from_secs(seconds());
    load(&router, Duration::from_secs(1)).await;

    let steady = load(&router, duration).await;
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (registry, stop) = (registry.clone(), stop.clone());
        tokio::spawn(async move {
            let mut swaps = Vec::new();
            for version in ["0.2.0", "0.1.0"].into_iter().cycle() {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let started = Instant::now();
                registry
                    .activate("echo", version, Actor::Api)
                    .await
                    .unwrap();
                swaps.push(started.elapsed());
                tokio::time::sleep(SWAP_EVERY).await;
            }
            swaps
        })
    };
    let swapping = load(&router, duration).await;
    stop.store(true, Ordering::Release);
    let swaps = swapper.await.unwrap();

    println!(
        "\n### Hot swap: echo from {CALLERS} concurrent callers, in-process API, {} s per row\n",
        duration.as_secs()
    );
    println!("| row | calls | calls/s | failed | p50 µs | p99 µs |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let row = |name: &str,
               Load {
                   ok,
                   failed,
                   latencies,
                   ..
               }: Load| {
        let s = stats(latencies);
        println!(
            "| {name} | {} | {:.0} | {failed} | {:.1} | {:.1} |",
            ok + failed,
            ok as f64 / duration.as_secs_f64(),
            s.p50,
            s.p99
        );
        (ok as f64, s.p99)
    };
    let (steady_calls, steady_p99) = row("no upgrades", steady);
    let (swap_calls, swap_p99) = row(
        &format!(
            "activating 0.1.0 ⇄ 0.2.0 every {} ms",
            SWAP_EVERY.as_millis()
        ),
        swapping,
    );
    let swap_count = swaps.len();
    let swap_stats = stats(swaps);
    println!(
        "\nswaps: {swap_count}, each (load from the compile cache, persist, audit, route swap) p50 {:.1} ms, p99 {:.1} ms",
        swap_stats.p50 / 1000.0,
        swap_stats.p99 / 1000.0
    );
    println!(
        "calls/s while swapping / without: {:.2}x; p99 while swapping / without: {:.2}x",
        swap_calls / steady_calls,
        swap_p99 / steady_p99
    );
}

/// Milliseconds from the start of an install to the end of the first call it serves.
async fn install_to_first_call(app: &App, router: &Router) -> f64 {
    let package = read_package(&dist().join("test-plugins/echo")).unwrap();
    let started = Instant::now();
    install(&app.state.registry, package).await;
    assert!(call(router, "{}").await);
    started.elapsed().as_secs_f64() * 1000.0
}

async fn first_call() {
    let runs = 5;
    let (mut cold, mut cached) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let data = tempfile::tempdir().unwrap();
        let app = App::open(common::host_config(data.path())).unwrap();
        app.load_connectors().await.unwrap();
        let router = app.router();
        cold.push(install_to_first_call(&app, &router).await);
        let name = switchboard::names::ConnectorName::parse("echo").unwrap();
        app.state.registry.remove(&name, Actor::Api).await.unwrap();
        cached.push(install_to_first_call(&app, &router).await);
    }
    let summary = |mut ms: Vec<f64>| {
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[ms.len() - 1])
    };
    let ((cold_median, cold_max), (cached_median, cached_max)) = (summary(cold), summary(cached));
    println!("\n### Install to first served call, echo, {runs} runs each\n");
    println!("| compile cache | median ms | max ms |");
    println!("| --- | --- | --- |");
    println!("| cold (compiles the component) | {cold_median:.1} | {cold_max:.1} |");
    println!("| warm (package compiled before) | {cached_median:.1} | {cached_max:.1} |");
    println!(
        "\ncold / warm (median): {:.1}x",
        cold_median / cached_median
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        hot_swap().await;
        first_call().await;
    });
}
