//! `GET /metrics`: the host's counters, histograms and gauges in the
//! Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::metrics::{Gauge, render};
use crate::pipeline::breaker::BreakerState;

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric, reading the gauges now.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let gauges = gauges(&state);
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        render(&state.metrics, &gauges),
    )
        .into_response()
}

/// Breaker states, cache sizes, calls in flight and the instance pool, grouped by metric.
fn gauges(state: &AppState) -> Vec<Gauge> {
    let mut connectors = state.registry.list();
    connectors.sort_by(|a, b| a.manifest.name.as_str().cmp(b.manifest.name.as_str()));
    let mut breakers = Vec::new();
    let mut caches = Vec::new();
    let mut in_flight = Vec::new();
    for loaded in &connectors {
        let connector = loaded.manifest.name.as_str().to_owned();
        let view = state.pipelines.of(loaded).view();
        for (version, breaker) in &view.breakers {
            for (name, state) in [
                ("closed", BreakerState::Closed),
                ("open", BreakerState::Open),
                ("half_open", BreakerState::HalfOpen),
            ] {
                breakers.push(Gauge {
                    name: "switchboard_breaker_state",
                    help: "Circuit breaker of each connector version that has served a call: 1 for its current state.",
                    labels: vec![
                        ("connector", connector.clone()),
                        ("version", version.clone()),
                        ("state", name.to_owned()),
                    ],
                    value: f64::from(u8::from(breaker.state == state)),
                });
            }
        }
        caches.push(Gauge {
            name: "switchboard_cache_entries",
            help: "Operation outputs held in each connector's cache.",
            labels: vec![("connector", connector.clone())],
            value: view.cached_outputs as f64,
        });
        let running = loaded.stats.view().in_flight;
        in_flight.push(Gauge {
            name: "switchboard_calls_in_flight",
            help: "Calls running now on each connector's active version.",
            labels: vec![
                ("connector", connector),
                ("version", loaded.manifest.version.to_string()),
            ],
            value: running as f64,
        });
    }
    let pool = [
        Gauge {
            name: "switchboard_connectors",
            help: "Connectors with an active version.",
            labels: Vec::new(),
            value: connectors.len() as f64,
        },
        Gauge {
            name: "switchboard_audit_records_dropped",
            help: "Audit records dropped since start because the writer fell behind the calls.",
            labels: Vec::new(),
            value: state.audit.dropped() as f64,
        },
        Gauge {
            name: "switchboard_instances_max",
            help: "Instance slots of the pool; calls beyond it get capacity_exhausted.",
            labels: Vec::new(),
            value: f64::from(state.max_instances),
        },
    ];
    breakers
        .into_iter()
        .chain(caches)
        .chain(in_flight)
        .chain(pool)
        .collect()
}
