//! The Prometheus text exposition format (version 0.0.4).

use std::fmt::Write as _;

use super::{BOUNDS_SECONDS, Metrics, Snapshot};

/// A value read when the metrics are rendered, such as a breaker's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Metric name, such as `switchboard_breaker_open`.
    pub name: &'static str,
    /// One line of help for the metric.
    pub help: &'static str,
    /// Label names and values.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// `value` escaped for a label: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(out: &mut String, name: &str, pairs: &[(&str, &str)], snapshot: &Snapshot) {
    for (bound, count) in BOUNDS_SECONDS.iter().zip(snapshot.cumulative) {
        let le = bound.to_string();
        let mut with_le = pairs.to_vec();
        with_le.push(("le", &le));
        let _ = writeln!(out, "{name}_bucket{} {count}", labels(&with_le));
    }
    let mut with_inf = pairs.to_vec();
    with_inf.push(("le", "+Inf"));
    let _ = writeln!(out, "{name}_bucket{} {}", labels(&with_inf), snapshot.count);
    let _ = writeln!(out, "{name}_sum{} {}", labels(pairs), snapshot.sum_seconds);
    let _ = writeln!(out, "{name}_count{} {}", labels(pairs), snapshot.count);
}

/// Every metric of `metrics` and `gauges` as Prometheus text.
pub fn render(metrics: &Metrics, gauges: &[Gauge]) -> String {
    let mut out = String::new();
    let calls = metrics.calls();
    header(
        &mut out,
        "switchboard_calls_total",
        "counter",
        "Operation calls by connector, version, operation and outcome code (`ok` or the error code returned).",
    );
    for (series_labels, series) in &calls {
        for (code, count) in series.codes() {
            let pairs = [
                ("connector", series_labels.connector.as_str()),
                ("version", series_labels.version.as_str()),
                ("operation", series_labels.operation.as_str()),
                ("code", code.as_str()),
            ];
            let _ = writeln!(out, "switchboard_calls_total{} {count}", labels(&pairs));
        }
    }
    header(
        &mut out,
        "switchboard_call_duration_seconds",
        "histogram",
        "Latency of operation calls, whatever their outcome.",
    );
    for (series_labels, series) in &calls {
        let pairs = [
            ("connector", series_labels.connector.as_str()),
            ("version", series_labels.version.as_str()),
            ("operation", series_labels.operation.as_str()),
        ];
        histogram(
            &mut out,
            "switchboard_call_duration_seconds",
            &pairs,
            &series.latency.snapshot(),
        );
    }
    header(
        &mut out,
        "switchboard_webhooks_total",
        "counter",
        "Inbound webhooks by connector, hook and outcome code (`ok` when accepted).",
    );
    for ([connector, hook, code], count) in metrics.webhooks() {
        let pairs = [
            ("connector", connector.as_str()),
            ("hook", hook.as_str()),
            ("code", code.as_str()),
        ];
        let _ = writeln!(out, "switchboard_webhooks_total{} {count}", labels(&pairs));
    }
    header(
        &mut out,
        "switchboard_deliveries_total",
        "counter",
        "Event delivery attempts by target kind and outcome (`delivered`, `failed`, `dead`).",
    );
    for ([target, outcome], count) in metrics.deliveries() {
        let pairs = [("target", target.as_str()), ("outcome", outcome.as_str())];
        let _ = writeln!(
            out,
            "switchboard_deliveries_total{} {count}",
            labels(&pairs)
        );
    }
    header(
        &mut out,
        "switchboard_delivery_lag_seconds",
        "histogram",
        "Time from an event's time to its successful delivery.",
    );
    histogram(
        &mut out,
        "switchboard_delivery_lag_seconds",
        &[],
        &metrics.delivery_lag(),
    );
    let mut previous = None;
    for gauge in gauges {
        if previous != Some(gauge.name) {
            header(&mut out, gauge.name, "gauge", gauge.help);
            previous = Some(gauge.name);
        }
        let pairs: Vec<(&str, &str)> = gauge
            .labels
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let rendered = if pairs.is_empty() {
            String::new()
        } else {
            labels(&pairs)
        };
        let _ = writeln!(out, "{}{rendered} {}", gauge.name, gauge.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::CallLabels;

    #[test]
    fn renders_counters_histograms_and_gauges_in_the_text_format() {
        let metrics = Metrics::default();
        let series = CallLabels {
            connector: "crm".into(),
            version: "0.1.0".into(),
            operation: "lookup".into(),
        };
        metrics.record_call(&series, 0, "ok", Duration::from_millis(2));
        metrics.record_webhook("ringostat", "call", "unauthorized");
        let gauges = [Gauge {
            name: "switchboard_instances_max",
            help: "Instance slots of the pool.",
            labels: Vec::new(),
            value: 1000.0,
        }];
        let text = render(&metrics, &gauges);
        for line in [
            "# TYPE switchboard_calls_total counter",
            r#"switchboard_calls_total{connector="crm",version="0.1.0",operation="lookup",code="ok"} 1"#,
            r#"switchboard_call_duration_seconds_bucket{connector="crm",version="0.1.0",operation="lookup",le="0.001"} 0"#,
            r#"switchboard_call_duration_seconds_bucket{connector="crm",version="0.1.0",operation="lookup",le="0.0025"} 1"#,
            r#"switchboard_call_duration_seconds_bucket{connector="crm",version="0.1.0",operation="lookup",le="+Inf"} 1"#,
            r#"switchboard_call_duration_seconds_count{connector="crm",version="0.1.0",operation="lookup"} 1"#,
            r#"switchboard_webhooks_total{connector="ringostat",hook="call",code="unauthorized"} 1"#,
            "# TYPE switchboard_instances_max gauge",
            "switchboard_instances_max 1000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
