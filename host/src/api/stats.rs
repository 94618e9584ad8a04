//! `GET /v1/stats`: each connector's deployment and calls — totals since
//! start, the alert window, and minute by minute — as JSON, for the
//! dashboard and for anyone who would rather not parse `/metrics`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::metrics::{BucketCounts, CallSeries, MINUTES, MinuteCounts, empty_minutes};
use crate::registry::view::DeploymentView;

/// Minutes returned when the query names none.
const DEFAULT_MINUTES: u64 = 30;

/// The query: how many minutes of timeline (1 to 60).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    minutes: Option<u64>,
}

/// Calls of a span of time: how many, by outcome code, and their latency.
#[derive(Debug, Serialize)]
pub struct CallFigures {
    /// Calls that finished.
    pub calls: u64,
    /// Of those, calls answered with `ok`.
    pub ok: u64,
    /// `ok` as a percentage of calls; `None` without calls.
    pub success_percent: Option<f64>,
    /// Median latency, as the upper bound of its histogram bucket.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, as the upper bound of its histogram bucket.
    pub p95_ms: Option<f64>,
    /// Calls per outcome code (`ok` or the error code the caller got).
    pub codes: BTreeMap<String, u64>,
}

impl CallFigures {
    fn new(codes: BTreeMap<String, u64>, latency: &BucketCounts) -> Self {
        let calls = codes.values().sum();
        let ok = codes.get("ok").copied().unwrap_or(0);
        Self {
            calls,
            ok,
            success_percent: (calls > 0).then(|| ok as f64 * 100.0 / calls as f64),
            p50_ms: latency.quantile_ms(0.5),
            p95_ms: latency.quantile_ms(0.95),
            codes,
        }
    }
}

/// One minute of a connector's timeline.
#[derive(Debug, Serialize)]
pub struct MinuteFigures {
    /// When the minute began, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// Its calls.
    #[serde(flatten)]
    pub figures: CallFigures,
}

/// What the alert rules see of a connector now.
#[derive(Debug, Serialize)]
pub struct WindowFigures {
    /// Calls that ran in the window.
    pub calls: u64,
    /// Of those, failures on the connector's side.
    pub failures: u64,
    /// Failures as a percentage of calls.
    pub failure_percent: f64,
    /// 95th percentile latency over the window.
    pub p95_ms: Option<f64>,
}

/// One connector: its deployment and its calls.
#[derive(Debug, Serialize)]
pub struct ConnectorStats {
    /// Versions, the active one, the canary.
    pub deployment: DeploymentView,
    /// Every call since the host started, over every version.
    pub total: CallFigures,
    /// The alert window.
    pub window: WindowFigures,
    /// The last minutes, oldest first, the current one last.
    pub minutes: Vec<MinuteFigures>,
}

/// The whole answer.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// When the figures were read, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The alert window's length.
    pub window_ms: u64,
    /// Connectors by name.
    pub connectors: Vec<ConnectorStats>,
}

/// Every connector's figures now.
pub async fn stats(
    State(state): State<AppState>,
    query: Result<Query<StatsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Stats>, ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid_query(err.body_text()))?;
    let minutes = query.minutes.unwrap_or(DEFAULT_MINUTES);
    if !(1..=MINUTES).contains(&minutes) {
        return Err(ApiError::invalid_query(format!(
            "minutes must be between 1 and {MINUTES}, not {minutes}"
        )));
    }
    let now_ms = crate::capabilities::now_ms();
    let mut series: BTreeMap<String, Vec<std::sync::Arc<CallSeries>>> = BTreeMap::new();
    for (labels, calls) in state.metrics.calls() {
        series.entry(labels.connector).or_default().push(calls);
    }
    let mut names: Vec<String> = state
        .registry
        .list()
        .iter()
        .map(|loaded| loaded.manifest.name.as_str().to_owned())
        .collect();
    names.sort();
    let connectors = names
        .into_iter()
        .filter_map(|name| {
            let deployment = state.registry.view(&name).ok()?;
            let calls = series.get(&name).map_or(&[][..], Vec::as_slice);
            let summary = state.metrics.window_summary(&name, now_ms);
            Some(ConnectorStats {
                deployment,
                total: total(calls),
                window: WindowFigures {
                    calls: summary.calls,
                    failures: summary.failures,
                    failure_percent: summary.failure_percent(),
                    p95_ms: summary.p95_ms,
                },
                minutes: timeline(calls, now_ms, minutes),
            })
        })
        .collect();
    Ok(Json(Stats {
        now_ms,
        window_ms: crate::runtime::limits::millis(state.alerts.policy().window),
        connectors,
    }))
}

/// Every call of `series` since start.
fn total(series: &[std::sync::Arc<CallSeries>]) -> CallFigures {
    let mut codes = BTreeMap::new();
    let mut latency = BucketCounts::default();
    for one in series {
        for (code, count) in one.codes() {
            *codes.entry(code).or_default() += count;
        }
        latency.add(&one.latency.snapshot().buckets());
    }
    CallFigures::new(codes, &latency)
}

/// The last `minutes` of `series`, added up.
fn timeline(
    series: &[std::sync::Arc<CallSeries>],
    now_ms: u64,
    minutes: u64,
) -> Vec<MinuteFigures> {
    let mut counts = empty_minutes(now_ms, minutes);
    for one in series {
        one.add_minutes(now_ms, &mut counts);
    }
    counts
        .into_iter()
        .map(
            |MinuteCounts {
                 start_ms,
                 codes,
                 latency,
             }| MinuteFigures {
                start_ms,
                figures: CallFigures::new(codes, &latency),
            },
        )
        .collect()
}
