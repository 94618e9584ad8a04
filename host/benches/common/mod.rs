//! What the benchmarks share: latency statistics, the built connectors, installing.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use switchboard::registry::Registry;
use switchboard::registry::lifecycle::{Activation, Actor, Package};
use switchboard::store::InstallSource;

/// Latency percentiles and mean, in microseconds.
pub struct Stats {
    pub p50: f64,
    pub p99: f64,
    pub mean: f64,
}

/// Statistics of `samples`.
pub fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| us(samples[((samples.len() as f64 - 1.0) * q).round() as usize]);
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64;
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        mean,
    }
}

/// Runs `f` `n` times after `n / 10` warm-up runs; its latency statistics.
pub async fn measure<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..n / 10 {
        f().await;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        f().await;
        samples.push(started.elapsed());
    }
    stats(samples)
}

/// Where `scripts/bench` puts the built connectors.
pub fn dist() -> std::path::PathBuf {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist");
    assert!(
        dist.join("test-plugins").is_dir(),
        "run scripts/bench: it builds the connectors into {}",
        dist.display()
    );
    dist
}

/// Installs and activates a package through the registry.
pub async fn install(registry: &Registry, package: Package) {
    registry
        .install(
            package,
            InstallSource::Api,
            Activation::Activate,
            Actor::Api,
        )
        .await
        .unwrap();
}

/// Calls `operation` of `connector` once through the runtime alone (fresh
/// instance, call, teardown), bypassing routing and the pipeline.
pub async fn runtime_call(
    registry: &Registry,
    connector: &switchboard::registry::LoadedConnector,
    operation: &str,
    input: &str,
) -> Result<String, switchboard::runtime::call::CallError> {
    let context = std::sync::Arc::new(switchboard::model::CallContext {
        request_id: "bench".into(),
        tenant: switchboard::names::TenantId::default_tenant(),
        agent: None,
        channel: None,
        customer: None,
    });
    let call = switchboard::runtime::Invocation {
        context,
        operation,
        input,
        deadline: Instant::now() + connector.grants.limits.deadline,
        upstream: std::sync::Arc::default(),
    };
    registry
        .runtime()
        .invoke(&connector.prepared, &connector.grants, call)
        .await
}

/// What a load run did.
pub struct Load {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// The latency of every call.
    pub latencies: Vec<Duration>,
    /// How long the run took.
    pub elapsed: Duration,
}

/// Runs `callers` concurrent tasks for `duration`. `caller(n)` makes task
/// `n`'s call function, which gets the call's sequence number and says
/// whether the call succeeded.
pub async fn run_load<C, F, Fut>(callers: usize, duration: Duration, caller: C) -> Load
where
    C: Fn(usize) -> F,
    F: FnMut(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|n| {
            let mut call = caller(n);
            tokio::spawn(async move {
                let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
                let mut i = 0;
                while started.elapsed() < duration {
                    i += 1;
                    let sent = Instant::now();
                    if call(i).await {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                    latencies.push(sent.elapsed());
                }
                (ok, failed, latencies)
            })
        })
        .collect();
    let mut load = Load {
        ok: 0,
        failed: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for task in tasks {
        let (ok, failed, latencies) = task.await.unwrap();
        load.ok += ok;
        load.failed += failed;
        load.latencies.extend(latencies);
    }
    load.elapsed = started.elapsed();
    load
}

/// A host serving `logistics-tracking` against `sandbox`'s provider, on a
/// fresh data directory, listening on loopback; returns the `track` URL.
/// The host lives until the process ends.
pub async fn serve_logistics(sandbox: &switchboard_sandbox::Sandbox) -> String {
    let data = tempfile::tempdir().unwrap();
    let app = switchboard::app::App::open(host_config(data.path())).unwrap();
    app.load_connectors().await.unwrap();
    let registry = app.state.registry.clone();
    let package = switchboard::registry::plugins_dir::read_package(
        &dist().join("plugins/logistics-tracking"),
    )
    .unwrap();
    install(&registry, package).await;
    for (kind, name, value) in [
        (
            switchboard::store::SettingKind::Config,
            "base_url",
            sandbox.logistics_url(),
        ),
        (
            switchboard::store::SettingKind::Secret,
            "api_key",
            switchboard_sandbox::LOGISTICS_API_KEY.to_owned(),
        ),
    ] {
        let key = switchboard::names::SettingKey::parse(name).unwrap();
        registry
            .set_setting("logistics-tracking", kind, &key, Some(value))
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v1/connectors/logistics-tracking/operations/track",
        listener.local_addr().unwrap()
    );
    let router = app.router();
    tokio::spawn(async move {
        let _kept = (data, app);
        axum::serve(listener, router).await.unwrap()
    });
    url
}

/// The host-wide admin key of benchmark hosts.
pub const BENCH_KEY: &str = "sbk_00000000000000be_benchbenchbenchbenchbenchbenchbenchbenchben";

/// The `Authorization` header carrying [`BENCH_KEY`].
pub const AUTHORIZATION: &str =
    "Bearer sbk_00000000000000be_benchbenchbenchbenchbenchbenchbenchbenchben";

/// A host's configuration on `data` with [`BENCH_KEY`] as its admin key.
pub fn host_config(data: &std::path::Path) -> switchboard::app::HostConfig {
    let mut config = switchboard::app::HostConfig::new(data.to_owned());
    config.admin_key = Some(BENCH_KEY.to_owned());
    config
}
