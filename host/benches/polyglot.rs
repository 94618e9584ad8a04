//! The logistics connector in Rust, JavaScript and Python, side by side: the
//! package size, the host's compile-and-check time at install, and the cost of
//! a call through the runtime, with the Rust twin as the baseline of the same
//! run. Run with `scripts/bench` (it builds all three first).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{Stats, dist, install, measure, runtime_call};

use std::time::{Duration, Instant};

use switchboard::app::App;
use switchboard::names::SettingKey;
use switchboard::registry::plugins_dir::read_package;
use switchboard::store::SettingKind;

const TWINS: [(&str, &str, &str); 3] = [
    ("Rust", "plugins/logistics-tracking", "logistics-tracking"),
    (
        "JavaScript",
        "polyglot/logistics-tracking-js",
        "logistics-tracking-js",
    ),
    (
        "Python",
        "polyglot/logistics-tracking-py",
        "logistics-tracking-py",
    ),
];

const PARCEL: &str = r#"{"carrier":"yto","tracking_number":"YT1234567890"}"#;
const BLANK: &str = r#"{"carrier":" ","tracking_number":"YT1234567890"}"#;

fn iterations() -> usize {
    std::env::var("BENCH_POLYGLOT_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

struct Figures {
    language: &'static str,
    wasm_bytes: usize,
    install: Duration,
    tracked: Stats,
    refused: Stats,
}

async fn measure_twin(
    language: &'static str,
    package_dir: &str,
    name: &'static str,
    sandbox: &switchboard_sandbox::Sandbox,
    n: usize,
) -> Figures {
    let package = read_package(&dist().join(package_dir)).unwrap();
    let wasm_bytes = package.wasm.len();
    let data = tempfile::tempdir().unwrap();
    let app = App::open(common::host_config(data.path())).unwrap();
    app.load_connectors().await.unwrap();
    let registry = app.state.registry.clone();
    let started = Instant::now();
    install(&registry, package).await;
    let installed_in = started.elapsed();
    for (kind, key, value) in [
        (SettingKind::Config, "base_url", sandbox.logistics_url()),
        (
            SettingKind::Secret,
            "api_key",
            switchboard_sandbox::LOGISTICS_API_KEY.to_owned(),
        ),
    ] {
        let key = SettingKey::parse(key).unwrap();
        registry
            .set_setting(name, kind, &key, Some(value))
            .await
            .unwrap();
    }
    let connector = registry.get(name).unwrap();
    let call = |input: &'static str, succeeds: bool| {
        let (registry, connector) = (&registry, &connector);
        async move {
            let outcome = runtime_call(registry, connector, "track", input).await;
            assert_eq!(outcome.is_ok(), succeeds, "{language}: {input}");
        }
    };
    let tracked = measure(n, || call(PARCEL, true)).await;
    let refused = measure(n, || call(BLANK, false)).await;
    Figures {
        language,
        wasm_bytes,
        install: installed_in,
        tracked,
        refused,
    }
}

#[tokio::main]
async fn main() {
    let n = iterations();
    let sandbox =
        switchboard_sandbox::Sandbox::start(switchboard_sandbox::SandboxConfig::ephemeral())
            .await
            .unwrap();
    let mut figures = Vec::new();
    for (language, dir, name) in TWINS {
        figures.push(measure_twin(language, dir, name, &sandbox, n).await);
    }
    let rust = &figures[0];
    println!("\n### The logistics connector in three languages, {n} sequential calls each\n");
    println!(
        "| language | component | install (compile + checks) | `track`, upstream on loopback: p50 / p99 µs | vs Rust | refused input, no upstream: p50 / p99 µs | vs Rust |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for f in &figures {
        println!(
            "| {} | {:.1} MiB | {:.2} s | {:.0} / {:.0} | {:.1}x | {:.0} / {:.0} | {:.1}x |",
            f.language,
            f.wasm_bytes as f64 / (1024.0 * 1024.0),
            f.install.as_secs_f64(),
            f.tracked.p50,
            f.tracked.p99,
            f.tracked.p50 / rust.tracked.p50,
            f.refused.p50,
            f.refused.p99,
            f.refused.p50 / rust.refused.p50,
        );
    }
}
