//! `GET /metrics` moves with real calls and webhooks of real connectors.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestHost, sandbox};

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn calls_by_code_latency_webhooks_and_breakers_move_with_real_traffic() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;

    let before = host.get("/metrics").await;
    assert_eq!(before.status, StatusCode::OK);
    assert_eq!(
        before.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let series = r#"{connector="logistics-tracking",version="0.1.0",operation="track""#;
    assert_eq!(
        value_of(
            &before.text,
            &format!("switchboard_calls_total{series},code=\"ok\"}}")
        ),
        None
    );

    for body in [
        r#"{"carrier":"yto","tracking_number":"YT1234567890"}"#,
        r#"{"carrier":"zto","tracking_number":"ZT1234567890"}"#,
        r#"{"carrier":"yto","tracking_number":"YT1234560000"}"#,
        r#"{"carrier":"yto"}"#,
    ] {
        host.invoke("logistics-tracking", "track", body).await;
    }
    let unknown = host.invoke("no-such-connector", "track", "{}").await;
    assert_eq!(unknown.code(), "connector_not_found");
    let secret = host
        .put_setting(
            "payment-link",
            "secrets",
            "webhook_secret",
            "whsec_c2VjcmV0",
        )
        .await;
    assert_eq!(secret.status, StatusCode::NO_CONTENT, "{}", secret.text);
    let hook = host
        .send(
            Request::post("/v1/hooks/payment-link/events")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"type":"payment_link.paid"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(hook.status, StatusCode::UNAUTHORIZED, "{}", hook.text);

    let after = host.get("/metrics").await.text;
    let count = |suffix: &str| {
        value_of(
            &after,
            &format!("switchboard_calls_total{series},{suffix}}}"),
        )
    };
    assert_eq!(count("code=\"ok\""), Some(2.0), "{after}");
    assert_eq!(count("code=\"tracking_not_found\""), Some(1.0));
    assert_eq!(count("code=\"schema_violation\""), Some(1.0));
    assert!(
        !after.contains("no-such-connector"),
        "names nobody installed never become series"
    );
    assert_eq!(
        value_of(
            &after,
            &format!("switchboard_call_duration_seconds_count{series}}}")
        ),
        Some(4.0)
    );
    assert_eq!(
        value_of(
            &after,
            &format!("switchboard_call_duration_seconds_bucket{series},le=\"+Inf\"}}")
        ),
        Some(4.0)
    );
    assert_eq!(
        value_of(
            &after,
            &format!(
                "switchboard_webhooks_total{{connector=\"payment-link\",hook=\"events\",code=\"{}\"}}",
                hook.code()
            )
        ),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value_of(
            &after,
            r#"switchboard_breaker_state{connector="logistics-tracking",version="0.1.0",state="closed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(value_of(&after, "switchboard_connectors"), Some(2.0));
    assert!(value_of(&after, "switchboard_instances_max").is_some());
}

#[tokio::test]
async fn stats_sum_each_connectors_calls_by_code_since_start_and_per_minute() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    for body in [
        r#"{"carrier":"yto","tracking_number":"YT1234567890"}"#,
        r#"{"carrier":"yto","tracking_number":"YT1234567890"}"#,
        r#"{"carrier":"yto","tracking_number":"YT1234560000"}"#,
        r#"{"carrier":"yto"}"#,
    ] {
        host.invoke("logistics-tracking", "track", body).await;
    }

    let reply = host.get("/v1/stats?minutes=5").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let stats = &reply.json;
    let connectors = stats["connectors"].as_array().unwrap();
    let names: Vec<&str> = connectors
        .iter()
        .map(|c| c["deployment"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["logistics-tracking", "payment-link"], "by name");
    let logistics = &connectors[0];
    assert_eq!(logistics["deployment"]["active"], "0.1.0");
    let total = &logistics["total"];
    assert_eq!(
        (total["calls"].as_u64(), total["ok"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(total["success_percent"], 50.0);
    assert_eq!(total["codes"]["tracking_not_found"], 1);
    assert_eq!(total["codes"]["schema_violation"], 1);
    assert!(total["p95_ms"].as_f64().unwrap() > 0.0, "{total}");
    let minutes = logistics["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 5);
    let in_minutes: u64 = minutes.iter().map(|m| m["calls"].as_u64().unwrap()).sum();
    assert_eq!(in_minutes, 4, "every call is in the last minutes");
    let starts: Vec<u64> = minutes
        .iter()
        .map(|m| m["start_ms"].as_u64().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == 60_000),
        "{starts:?}"
    );
    assert!(starts[4] <= stats["now_ms"].as_u64().unwrap());
    assert_eq!(
        logistics["window"]["calls"], 3,
        "the alert window holds the calls that ran, not the refused one"
    );
    let payment = &connectors[1];
    assert_eq!(payment["total"]["calls"], 0);
    assert!(payment["total"]["success_percent"].is_null());

    for bad in [
        "/v1/stats?minutes=0",
        "/v1/stats?minutes=61",
        "/v1/stats?minutes=x",
        "/v1/stats?hours=1",
    ] {
        let reply = host.get(bad).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}: {}",
            reply.text
        );
    }
}
