//! Alert rules on each connector's recent calls: the failure rate, the p95
//! latency and the circuit breaker, judged over a sliding window.
//!
//! An alert fires once when its condition starts to hold and resolves once
//! when it stops; each transition is stored as a host event
//! (`switchboard.alert_fired`, `switchboard.alert_resolved`, subject the
//! connector), so subscriptions deliver it like any event, and
//! `GET /v1/alerts` lists what is firing and what resolved recently.
//! Failures are what counts against a connector (crashes, timeouts, limits,
//! retryable errors after the pipeline's retries), not business answers or
//! refused calls. Alert state is per host and in memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::api::AppState;
use crate::metrics::WindowSummary;
use crate::pipeline::breaker::BreakerState;

/// Resolved alerts kept for the API.
const RESOLVED_KEPT: usize = 500;

/// The rules, set by the operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertPolicy {
    /// How far back the rules look.
    #[serde(rename = "window_ms", serialize_with = "millis")]
    pub window: Duration,
    /// Fewest calls in the window before the failure-rate and latency rules judge.
    pub min_calls: u64,
    /// Failure rate, in percent, at or above which an alert fires.
    pub failure_percent: f64,
    /// p95 latency in milliseconds at or above which an alert fires; `None` turns the rule off.
    pub p95_ms: Option<u64>,
    /// Whether an open circuit breaker fires an alert.
    pub breaker: bool,
}

fn millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(crate::runtime::limits::millis(*duration))
}

impl Default for AlertPolicy {
    /// Failure rate ≥ 1 % of at least 20 calls over 5 minutes, and open breakers.
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            min_calls: 20,
            failure_percent: 1.0,
            p95_ms: None,
            breaker: true,
        }
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Failures over the window at or above the threshold.
    FailureRate,
    /// p95 latency over the window at or above the threshold.
    LatencyP95,
    /// A circuit breaker of the connector is open.
    BreakerOpen,
}

/// One alert, firing or resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Unique per host run.
    pub id: u64,
    /// The connector.
    pub connector: String,
    /// The rule that fired.
    pub rule: Rule,
    /// When it fired, in milliseconds since the Unix epoch.
    pub fired_at_ms: u64,
    /// When it resolved, if it has.
    pub resolved_at_ms: Option<u64>,
    /// The measured value when it fired (percent, milliseconds, or 1 for a breaker).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Calls in the window when it fired.
    pub calls: u64,
    /// For people.
    pub message: String,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    firing: BTreeMap<(String, Rule), Alert>,
    resolved: VecDeque<Alert>,
}

/// The alert rules and what they have fired.
#[derive(Debug)]
pub struct Alerts {
    policy: AlertPolicy,
    state: Mutex<State>,
}

/// A condition that holds now, for one connector and rule.
struct Finding {
    value: f64,
    threshold: f64,
    calls: u64,
    message: String,
}

impl Alerts {
    /// No alert yet, judged by `policy`.
    pub fn new(policy: AlertPolicy) -> Self {
        Self {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// The rules.
    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Alerts firing now, then those resolved most recently first.
    pub fn view(&self) -> (Vec<Alert>, Vec<Alert>) {
        let state = self.lock();
        (
            state.firing.values().cloned().collect(),
            state.resolved.iter().rev().cloned().collect(),
        )
    }

    fn judge(
        &self,
        connector: &str,
        summary: &WindowSummary,
        breaker_open: bool,
    ) -> Vec<(Rule, Option<Finding>)> {
        let policy = &self.policy;
        let enough = summary.calls >= policy.min_calls;
        let failure = summary.failure_percent();
        let window = crate::runtime::limits::millis(policy.window);
        let mut findings = vec![(
            Rule::FailureRate,
            (enough && failure >= policy.failure_percent).then(|| Finding {
                value: failure,
                threshold: policy.failure_percent,
                calls: summary.calls,
                message: format!(
                    "{connector}: {} of {} calls failed ({failure:.2} %) in the last {window} ms; the threshold is {} %",
                    summary.failures, summary.calls, policy.failure_percent
                ),
            }),
        )];
        if let Some(p95_ms) = policy.p95_ms {
            let slow = summary.p95_ms.filter(|p95| enough && *p95 >= p95_ms as f64);
            findings.push((
                Rule::LatencyP95,
                slow.map(|p95| Finding {
                    value: p95,
                    threshold: p95_ms as f64,
                    calls: summary.calls,
                    message: format!(
                        "{connector}: p95 latency reached {p95} ms over {} calls in the last {window} ms; the threshold is {p95_ms} ms",
                        summary.calls
                    ),
                }),
            ));
        }
        if policy.breaker {
            findings.push((
                Rule::BreakerOpen,
                breaker_open.then(|| Finding {
                    value: 1.0,
                    threshold: 1.0,
                    calls: summary.calls,
                    message: format!("{connector}: a circuit breaker is open; calls are refused or answered by fallbacks"),
                }),
            ));
        }
        findings
    }

    /// Judges every connector at `now_ms`; returns the alerts that fired and
    /// those that resolved, and stores an event for each.
    pub async fn evaluate(&self, state: &AppState, now_ms: u64) -> (Vec<Alert>, Vec<Alert>) {
        let mut fired = Vec::new();
        let mut resolved = Vec::new();
        let connectors = state.registry.list();
        {
            let mut alerts = self.lock();
            let mut judged = Vec::new();
            for loaded in &connectors {
                let connector = loaded.manifest.name.as_str();
                let summary = state.metrics.window_summary(connector, now_ms);
                let breaker_open = state
                    .pipelines
                    .of(loaded)
                    .view()
                    .breakers
                    .values()
                    .any(|breaker| breaker.state != BreakerState::Closed);
                for (rule, finding) in self.judge(connector, &summary, breaker_open) {
                    let key = (connector.to_owned(), rule);
                    judged.push(key.clone());
                    match (finding, alerts.firing.contains_key(&key)) {
                        (Some(finding), false) => {
                            alerts.next_id += 1;
                            let alert = Alert {
                                id: alerts.next_id,
                                connector: connector.to_owned(),
                                rule,
                                fired_at_ms: now_ms,
                                resolved_at_ms: None,
                                value: finding.value,
                                threshold: finding.threshold,
                                calls: finding.calls,
                                message: finding.message,
                            };
                            alerts.firing.insert(key, alert.clone());
                            fired.push(alert);
                        }
                        (None, true) => {
                            if let Some(alert) = alerts.firing.remove(&key) {
                                resolved.push(alert);
                            }
                        }
                        _ => {}
                    }
                }
            }
            // A connector that is gone, or a rule turned off, resolves too.
            let stale: Vec<_> = alerts
                .firing
                .keys()
                .filter(|key| !judged.contains(key))
                .cloned()
                .collect();
            for key in stale {
                if let Some(alert) = alerts.firing.remove(&key) {
                    resolved.push(alert);
                }
            }
            for alert in &mut resolved {
                alert.resolved_at_ms = Some(now_ms);
                alerts.resolved.push_back(alert.clone());
                if alerts.resolved.len() > RESOLVED_KEPT {
                    alerts.resolved.pop_front();
                }
            }
        }
        for alert in &fired {
            tracing::warn!(connector = %alert.connector, rule = ?alert.rule, "{}", alert.message);
            announce(state, "switchboard.alert_fired", alert).await;
        }
        for alert in &resolved {
            tracing::info!(connector = %alert.connector, rule = ?alert.rule, "alert resolved");
            announce(state, "switchboard.alert_resolved", alert).await;
        }
        (fired, resolved)
    }
}

async fn announce(state: &AppState, kind: &str, alert: &Alert) {
    let data = serde_json::to_value(alert).unwrap_or_default();
    state.events.announce(kind, &alert.connector, data).await;
}

/// How often the rules are judged: a tenth of the window, within 100 ms to 10 s.
pub fn tick(policy: &AlertPolicy) -> Duration {
    (policy.window / 10).clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// Judges the rules every [`tick`] until the task is aborted.
pub async fn run(state: AppState) {
    let mut interval = tokio::time::interval(tick(state.alerts.policy()));
    loop {
        interval.tick().await;
        state
            .alerts
            .evaluate(&state, crate::capabilities::now_ms())
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(calls: u64, failures: u64, p95_ms: Option<f64>) -> WindowSummary {
        WindowSummary {
            calls,
            failures,
            p95_ms,
        }
    }

    fn firing(alerts: &Alerts, summary: &WindowSummary, breaker_open: bool) -> Vec<Rule> {
        alerts
            .judge("crm", summary, breaker_open)
            .into_iter()
            .filter_map(|(rule, finding)| finding.map(|_| rule))
            .collect()
    }

    #[test]
    fn the_failure_rule_needs_enough_calls_and_the_threshold_reached() {
        let alerts = Alerts::new(AlertPolicy::default());
        assert_eq!(firing(&alerts, &summary(19, 19, None), false), []);
        assert_eq!(firing(&alerts, &summary(200, 1, None), false), []);
        assert_eq!(
            firing(&alerts, &summary(200, 2, None), false),
            [Rule::FailureRate]
        );
    }

    #[test]
    fn latency_and_breaker_rules_fire_when_configured() {
        let alerts = Alerts::new(AlertPolicy {
            p95_ms: Some(500),
            ..AlertPolicy::default()
        });
        assert_eq!(firing(&alerts, &summary(100, 0, Some(250.0)), false), []);
        assert_eq!(
            firing(&alerts, &summary(100, 0, Some(500.0)), true),
            [Rule::LatencyP95, Rule::BreakerOpen]
        );
        let quiet = Alerts::new(AlertPolicy {
            breaker: false,
            ..AlertPolicy::default()
        });
        assert_eq!(firing(&quiet, &summary(0, 0, None), true), []);
    }

    #[test]
    fn rules_are_judged_ten_times_per_window_within_bounds() {
        let policy = |secs| AlertPolicy {
            window: Duration::from_secs(secs),
            ..AlertPolicy::default()
        };
        assert_eq!(tick(&policy(300)), Duration::from_secs(10));
        assert_eq!(tick(&policy(20)), Duration::from_secs(2));
        assert_eq!(tick(&policy(0)), Duration::from_millis(100));
    }
}
