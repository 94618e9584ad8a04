//! Per-invoke overhead and HTTP throughput, each against a baseline measured
//! in the same run. Run with `scripts/bench` (it builds the connectors first).
//!
//! 1. The echo connector through the full in-process API path, through the
//!    runtime alone, and through bare wasmtime with its default pooling
//!    allocator (fresh store, pooled instantiate, typed call), against a
//!    native function doing the same JSON work.
//! 2. HTTP calls/s at 64 concurrent connections for the logistics connector
//!    against the sandbox provider, with the load generator in this process.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{Stats, dist, install, measure, run_load, runtime_call, serve_logistics, stats};

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use switchboard::app::App;
use switchboard::registry::plugins_dir::read_package;
use tower::ServiceExt;
use wasmtime::component::{Component, ComponentType, Lift, Linker, Lower};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

const INPUT: &str = r#"{"customer":"+8613800138000","order":"A-1001","items":[1,2,3]}"#;

fn iterations() -> usize {
    std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

fn http_seconds() -> u64 {
    std::env::var("BENCH_HTTP_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn native_echo(input: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(input).unwrap();
    let text = serde_json::to_string(&value).unwrap();
    serde_json::from_str::<serde::de::IgnoredAny>(&text).unwrap();
    text
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct BareContext {
    #[component(name = "request-id")]
    request_id: String,
    tenant: String,
    agent: Option<String>,
    channel: Option<String>,
    customer: Option<String>,
    #[component(name = "deadline-ms")]
    deadline_ms: u64,
}

#[derive(ComponentType, Lift)]
#[component(record)]
struct BareError {
    code: String,
    message: String,
    retryable: bool,
}

struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

type InvokeParams<'a> = (&'a BareContext, &'a str, &'a str);

/// Bare wasmtime with its default pooling allocator: fresh store, pooled
/// instantiate, one typed call of `invoke`. No limits, no deadline, no capture.
async fn bare_wasmtime(wasm: &[u8], n: usize) -> Stats {
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::pooling());
    let engine = wasmtime::Engine::new(&config).unwrap();
    let component = Component::new(&engine, wasm).unwrap();
    let mut linker: Linker<BareState> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    linker.define_unknown_imports_as_traps(&component).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();
    let (_, invoke) = component.get_export(None, "invoke").unwrap();
    let context = BareContext {
        request_id: "bench".into(),
        tenant: "default".into(),
        agent: None,
        channel: None,
        customer: None,
        deadline_ms: 5_000,
    };
    measure(n, || {
        let (pre, engine, context) = (&pre, &engine, &context);
        async move {
            let state = BareState {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            };
            let mut store = wasmtime::Store::new(engine, state);
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            let func = instance
                .get_typed_func::<InvokeParams<'_>, (Result<String, BareError>,)>(
                    &mut store, &invoke,
                )
                .unwrap();
            let (result,) = func
                .call_async(&mut store, (context, "echo", INPUT))
                .await
                .unwrap();
            if let Err(e) = result {
                panic!(
                    "echo failed: {} ({}, retryable: {})",
                    e.code, e.message, e.retryable
                );
            }
        }
    })
    .await
}

fn row(name: &str, s: &Stats, base: &Stats) {
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} | {:.2}x |",
        s.p50,
        s.p99,
        s.mean,
        s.p50 / base.p50
    );
}

async fn invoke_overhead() {
    let n = iterations();
    let package = read_package(&dist().join("test-plugins/echo")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let app = App::open(common::host_config(data.path())).unwrap();
    install(&app.state.registry, package.clone()).await;
    app.load_connectors().await.unwrap();
    let router = app.router();
    let registry = app.state.registry.clone();
    let echo = registry.get("echo").unwrap();

    let native = measure(n, || async {
        std::hint::black_box(native_echo(INPUT));
    })
    .await;
    let bare = bare_wasmtime(&package.wasm, n).await;
    let runtime = measure(n, || {
        let (registry, echo) = (&registry, &echo);
        async move {
            runtime_call(registry, echo, "echo", INPUT).await.unwrap();
        }
    })
    .await;
    let full = measure(n, || {
        let router = router.clone();
        async move {
            let request = Request::post("/v1/connectors/echo/operations/echo")
                .header("content-type", "application/json")
                .header("authorization", common::AUTHORIZATION)
                .body(Body::from(INPUT))
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert!(response.status().is_success());
            http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap();
        }
    })
    .await;

    println!("\n### Per-invoke overhead, echo connector, {n} sequential calls\n");
    println!("| path | p50 µs | p99 µs | mean µs | p50 vs native |");
    println!("| --- | --- | --- | --- | --- |");
    row(
        "native Rust: parse + serialize + check the same JSON",
        &native,
        &native,
    );
    row(
        "bare wasmtime: new store + pooled instantiate + typed call",
        &bare,
        &native,
    );
    row(
        "switchboard runtime: Runtime::invoke (store, limits, WASI, checks)",
        &runtime,
        &native,
    );
    row(
        "switchboard full in-process: router → validate → invoke → response",
        &full,
        &native,
    );
    println!(
        "\nruntime / bare wasmtime (p50): {:.2}x; full path / bare wasmtime (p50): {:.2}x",
        runtime.p50 / bare.p50,
        full.p50 / bare.p50
    );
}

async fn http_throughput() {
    let sandbox =
        switchboard_sandbox::Sandbox::start(switchboard_sandbox::SandboxConfig::ephemeral())
            .await
            .unwrap();
    let url = serve_logistics(&sandbox).await;

    let connections = 64;
    let load = run_load(connections, Duration::from_secs(http_seconds()), |worker| {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let url = url.clone();
        move |i| {
            let request = client
                .post(&url)
                .header("content-type", "application/json")
                .header("authorization", common::AUTHORIZATION)
                .body(format!(
                    r#"{{"carrier":"sf-express","tracking_number":"SF{worker:02}{i:08}"}}"#
                ))
                .send();
            async move {
                match request.await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }
    })
    .await;
    let (ok, failed) = (load.ok, load.failed);
    let elapsed = load.elapsed.as_secs_f64();
    let s = stats(load.latencies);
    println!("\n### HTTP throughput, logistics-tracking `track` against the sandbox provider\n");
    println!("| connections | seconds | calls | calls/s | failed | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {connections} | {elapsed:.1} | {} | {:.0} | {failed} | {:.2} | {:.2} |",
        ok + failed,
        ok as f64 / elapsed,
        s.p50 / 1000.0,
        s.p99 / 1000.0
    );
    println!(
        "\nsandbox upstream requests served: {}",
        sandbox.logistics_requests()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        invoke_overhead().await;
        http_throughput().await;
    });
}
