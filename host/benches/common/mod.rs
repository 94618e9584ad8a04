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
