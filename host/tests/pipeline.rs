//! The call pipeline against the sandbox providers and their fault
//! injection: retries, the circuit breaker and its fallback, the cache,
//! rate and concurrency limits, batches, idempotency keys and the deadline.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestHost, sandbox};
use serde_json::{Value, json};
use switchboard_sandbox::{FaultConfig, Sandbox};

/// A host serving logistics-tracking against `sandbox`, its manifest
/// extended with `pipeline` (TOML tables).
async fn logistics(sandbox: &Sandbox, pipeline: &str) -> TestHost {
    let host = TestHost::start().await;
    let (manifest, wasm) = common::package("plugins", "logistics-tracking");
    host.install_manifest(&format!("{manifest}\n{pipeline}\n"), wasm)
        .await;
    for (kind, key, value) in [
        ("config", "base_url", sandbox.logistics_url()),
        (
            "secrets",
            "api_key",
            switchboard_sandbox::LOGISTICS_API_KEY.to_owned(),
        ),
    ] {
        let reply = host
            .put_setting("logistics-tracking", kind, key, &value)
            .await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    }
    host
}

async fn track(host: &TestHost, number: &str) -> Reply {
    host.invoke(
        "logistics-tracking",
        "track",
        &json!({ "carrier": "sf-express", "tracking_number": number }).to_string(),
    )
    .await
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

fn fail(sandbox: &Sandbox, next: u32, rate: f64) {
    sandbox.logistics_faults().set(FaultConfig {
        fail_next: next,
        failure_rate: rate,
        ..FaultConfig::default()
    });
}

#[tokio::test]
async fn a_retryable_failure_is_retried_and_the_third_try_succeeds() {
    let sandbox = sandbox().await;
    let host = logistics(&sandbox, "[pipeline.retry]\nattempts = 3\nbase_ms = 5\n").await;
    fail(&sandbox, 2, 0.0);
    let before = sandbox.logistics_requests();
    let reply = track(&host, "SF1234567890").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(header(&reply, "x-attempts"), Some("3"));
    assert_eq!(sandbox.logistics_requests() - before, 3);

    fail(&sandbox, 3, 0.0);
    let exhausted = track(&host, "SF1234567890").await;
    assert_eq!(
        exhausted.code(),
        "upstream_unavailable",
        "{}",
        exhausted.text
    );
    assert_eq!(exhausted.json["error"]["retryable"], true);
}

/// A host with the misbehaving connector, whose `post` is not idempotent.
async fn misbehaving() -> TestHost {
    let host = TestHost::start().await;
    host.install("test-plugins", "misbehaving").await;
    host
}

fn post_request(sandbox: &Sandbox, order: &str, key: Option<&str>) -> Request<Body> {
    let input = json!({
        "url": format!("{}/v1/payment_links", sandbox.payment_url()),
        "bearer": switchboard_sandbox::PAYMENT_API_KEY,
        "body": { "order_id": order, "amount": 100, "currency": "CNY" },
    });
    let mut request = Request::post("/v1/connectors/misbehaving/operations/post")
        .header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.body(Body::from(input.to_string())).unwrap()
}

#[tokio::test]
async fn a_non_idempotent_call_is_never_retried_unless_it_carries_an_idempotency_key() {
    let sandbox = sandbox().await;
    let host = misbehaving().await;
    sandbox.payment_faults().set(FaultConfig {
        fail_next: 1,
        ..FaultConfig::default()
    });
    let before = sandbox.payment_requests();
    let reply = host.send(post_request(&sandbox, "NI-1", None)).await;
    assert_eq!(reply.code(), "upstream_unavailable", "{}", reply.text);
    assert_eq!(sandbox.payment_requests() - before, 1, "not retried");

    sandbox.payment_faults().set(FaultConfig {
        fail_next: 1,
        ..FaultConfig::default()
    });
    let before = sandbox.payment_requests();
    let reply = host
        .send(post_request(&sandbox, "NI-2", Some("key-ni-2")))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(header(&reply, "x-attempts"), Some("2"));
    assert_eq!(sandbox.payment_requests() - before, 2);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let sandbox = sandbox().await;
    let host = misbehaving().await;
    let first = host.send(post_request(&sandbox, "ID-1", Some("k-1"))).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let created = sandbox.payment_requests();
    let again = host.send(post_request(&sandbox, "ID-1", Some("k-1"))).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text, first.text, "the first answer, byte for byte");
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
    assert_eq!(
        sandbox.payment_requests(),
        created,
        "the connector did not run"
    );

    let other = host.send(post_request(&sandbox, "ID-2", Some("k-1"))).await;
    assert_eq!(
        (other.status, other.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    let bad = host.send(post_request(&sandbox, "ID-3", Some(""))).await;
    assert_eq!(bad.code(), "invalid_idempotency_key");
}

#[tokio::test]
async fn the_breaker_opens_serves_the_fallback_probes_and_closes() {
    let sandbox = sandbox().await;
    let host = logistics(
        &sandbox,
        r#"[pipeline.retry]
attempts = 1

[pipeline.breaker]
window = 4
min_calls = 4
failure_rate_percent = 50
open_ms = 300
probes = 1

[pipeline.operations.track]
fallback = { value = { carrier = "sf-express", tracking_number = "unknown", status = "unavailable", events = [] } }
"#,
    )
    .await;
    fail(&sandbox, 0, 1.0);
    for _ in 0..4 {
        assert_eq!(
            track(&host, "SF1234567890").await.code(),
            "upstream_unavailable"
        );
    }
    let view = host.get("/v1/connectors/logistics-tracking/pipeline").await;
    assert_eq!(
        view.json["breakers"]["0.1.0"]["state"], "open",
        "{}",
        view.text
    );

    let before = sandbox.logistics_requests();
    let fallback = track(&host, "SF1234567890").await;
    assert_eq!(fallback.status, StatusCode::OK, "{}", fallback.text);
    assert_eq!(header(&fallback, "x-fallback"), Some("circuit_open"));
    assert_eq!(fallback.json["status"], "unavailable");
    assert_eq!(
        sandbox.logistics_requests(),
        before,
        "the upstream was spared"
    );

    sandbox.logistics_faults().clear();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let probe = track(&host, "SF1234567890").await;
    assert_eq!(probe.status, StatusCode::OK, "{}", probe.text);
    assert_eq!(
        header(&probe, "x-fallback"),
        None,
        "the probe ran the connector"
    );
    let view = host.get("/v1/connectors/logistics-tracking/pipeline").await;
    assert_eq!(
        view.json["breakers"]["0.1.0"]["state"], "closed",
        "{}",
        view.text
    );
}

#[tokio::test]
async fn without_a_fallback_an_open_breaker_answers_circuit_open_with_retry_after() {
    let sandbox = sandbox().await;
    let host = logistics(
        &sandbox,
        "[pipeline.retry]\nattempts = 1\n\n[pipeline.breaker]\nwindow = 2\nmin_calls = 2\nopen_ms = 5000\n",
    )
    .await;
    fail(&sandbox, 0, 1.0);
    track(&host, "SF1234567890").await;
    track(&host, "SF1234567890").await;
    let refused = track(&host, "SF1234567890").await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "circuit_open"),
        "{}",
        refused.text
    );
    assert_eq!(header(&refused, "retry-after"), Some("5"));
}

#[tokio::test]
async fn a_cacheable_operation_is_answered_from_the_cache_until_its_ttl_passes() {
    let sandbox = sandbox().await;
    let host = logistics(
        &sandbox,
        "[pipeline.operations.track]\ncache_ttl_ms = 400\n",
    )
    .await;
    let before = sandbox.logistics_requests();
    let first = track(&host, "SF1234567890").await;
    assert_eq!(header(&first, "x-cache"), Some("miss"));
    let second = track(&host, "SF1234567890").await;
    assert_eq!(header(&second, "x-cache"), Some("hit"));
    assert_eq!(second.text, first.text);
    assert_eq!(sandbox.logistics_requests() - before, 1);
    let other = track(&host, "SF1234567891").await;
    assert_eq!(header(&other, "x-cache"), Some("miss"), "another input");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let expired = track(&host, "SF1234567890").await;
    assert_eq!(header(&expired, "x-cache"), Some("miss"));
    assert_eq!(sandbox.logistics_requests() - before, 3);
}

#[tokio::test]
async fn a_burst_over_the_rate_gets_429_with_retry_after_and_tenants_have_their_own_buckets() {
    let sandbox = sandbox().await;
    let host = logistics(
        &sandbox,
        "[pipeline.rate]\ntenant_rate_per_second = 1\ntenant_burst = 3\n",
    )
    .await;
    let call = |tenant: &'static str| {
        let host = &host;
        async move {
            host.send(
                Request::post("/v1/connectors/logistics-tracking/operations/track")
                    .header("content-type", "application/json")
                    .header("x-tenant", tenant)
                    .body(Body::from(
                        r#"{"carrier":"sf-express","tracking_number":"SF1234567890"}"#,
                    ))
                    .unwrap(),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(call("acme").await.status, StatusCode::OK);
    }
    let limited = call("acme").await;
    assert_eq!(
        (limited.status, limited.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(header(&limited, "retry-after"), Some("1"));
    assert_eq!(
        call("globex").await.status,
        StatusCode::OK,
        "another tenant"
    );
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_shed_not_queued() {
    let sandbox = sandbox().await;
    let host = Arc::new(logistics(&sandbox, "[pipeline.rate]\nmax_concurrency = 1\n").await);
    sandbox.logistics_faults().set(FaultConfig {
        latency_ms: 500,
        ..FaultConfig::default()
    });
    let slow = {
        let host = host.clone();
        tokio::spawn(async move { track(&host, "SF1234567890").await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let shed = track(&host, "SF1234567890").await;
    assert_eq!(
        (shed.status, shed.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
        "{}",
        shed.text
    );
    assert_eq!(slow.await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn retries_stay_within_the_one_deadline_of_the_call_and_report_the_real_failure() {
    let sandbox = sandbox().await;
    let host = logistics(
        &sandbox,
        "[pipeline.retry]\nattempts = 10\nbase_ms = 400\nmax_ms = 400\n",
    )
    .await;
    sandbox.logistics_faults().set(FaultConfig {
        latency_ms: 200,
        failure_rate: 1.0,
        ..FaultConfig::default()
    });
    let before = sandbox.logistics_requests();
    let reply = track(&host, "SF1234567890").await;
    assert_eq!(
        reply.code(),
        "upstream_unavailable",
        "the upstream's failure, not a deadline hit by the last retry: {}",
        reply.text
    );
    // Each try takes 200 ms and waits 200 to 400 ms before the next: a 3 s
    // deadline leaves room for at most 7 of the 10 allowed.
    let tries = sandbox.logistics_requests() - before;
    assert!((3..=7).contains(&tries), "{tries} tries within 3 s");
}

#[tokio::test]
async fn a_batch_answers_every_call_in_order_with_its_own_result() {
    let sandbox = sandbox().await;
    let host = logistics(&sandbox, "").await;
    let batch = json!({ "calls": [
        { "connector": "logistics-tracking", "operation": "track",
          "input": { "carrier": "sf-express", "tracking_number": "SF1234567890" } },
        { "connector": "logistics-tracking", "operation": "track",
          "input": { "carrier": "zto", "tracking_number": "ZT12340000" } },
        { "connector": "logistics-tracking", "operation": "nope", "input": {} },
        { "connector": "logistics-tracking", "operation": "track", "input": { "carrier": 5 } },
        { "connector": "absent", "operation": "x", "input": {} },
    ]});
    let reply = host.post_json("/v1/batch", &batch.to_string()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let results = reply.json["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 422, 404, 422, 404]);
    assert_eq!(results[0]["output"]["tracking_number"], "SF1234567890");
    assert_eq!(results[1]["error"]["code"], "tracking_not_found");
    assert_eq!(results[2]["error"]["code"], "operation_not_found");
    assert_eq!(results[3]["error"]["code"], "schema_violation");
    assert_eq!(results[4]["error"]["code"], "connector_not_found");

    let too_many = json!({ "calls": vec![batch["calls"][0].clone(); 101] });
    let refused = host.post_json("/v1/batch", &too_many.to_string()).await;
    assert_eq!(refused.code(), "invalid_batch");
    let empty: Value = json!({ "calls": [] });
    assert_eq!(
        host.post_json("/v1/batch", &empty.to_string()).await.code(),
        "invalid_batch"
    );
}

#[tokio::test]
async fn invalid_pipeline_settings_are_refused_at_install() {
    let host = TestHost::start().await;
    let (manifest, wasm) = common::package("plugins", "logistics-tracking");
    for (pipeline, expected) in [
        (
            "[pipeline.operations.nope]\ncache_ttl_ms = 10\n",
            "no operation `nope`",
        ),
        ("[pipeline.retry]\nattempts = 0\n", "pipeline.retry"),
        ("[pipeline.rate]\nrate_per_second = 0\n", "pipeline.rate"),
        (
            "[pipeline.breaker]\nfailure_rate_percent = 0\n",
            "pipeline.breaker",
        ),
        ("[pipeline]\nttl = 1\n", "unknown field"),
    ] {
        let reply = host
            .send(common::multipart_install(
                &format!("{manifest}\n{pipeline}"),
                &wasm,
            ))
            .await;
        assert_eq!(
            reply.code(),
            "invalid_manifest",
            "{pipeline}: {}",
            reply.text
        );
        assert!(
            reply.message().contains(expected),
            "{pipeline}: {}",
            reply.message()
        );
    }
}

#[tokio::test]
async fn an_operator_override_replaces_the_manifests_settings_until_reset() {
    let sandbox = sandbox().await;
    let host = logistics(&sandbox, "").await;
    let uri = "/v1/connectors/logistics-tracking/pipeline";
    let refused = host
        .put_json(uri, r#"{"operations": {"nope": {"cache_ttl_ms": 1000}}}"#)
        .await;
    assert_eq!(refused.code(), "invalid_pipeline", "{}", refused.text);
    let set = host
        .put_json(uri, r#"{"operations": {"track": {"cache_ttl_ms": 60000}}}"#)
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(
        set.json["policy"]["operations"]["track"]["cache_ttl_ms"],
        60000
    );
    track(&host, "SF1234567890").await;
    let cached = track(&host, "SF1234567890").await;
    assert_eq!(header(&cached, "x-cache"), Some("hit"));

    let host = host.restart().await;
    let after_restart = host.get(uri).await;
    assert_eq!(
        after_restart.json["policy"]["operations"]["track"]["cache_ttl_ms"], 60000,
        "the override is persisted"
    );
    let reset = host
        .send(Request::delete(uri).body(Body::empty()).unwrap())
        .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    let uncached = track(&host, "SF1234567890").await;
    assert_eq!(header(&uncached, "x-cache"), None);
    let audit = host
        .get("/v1/audit?connector=logistics-tracking&limit=1000")
        .await;
    let actions: Vec<&str> = audit.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"pipeline.overridden") && actions.contains(&"pipeline.reset"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_upstream_host_that_keeps_failing_is_not_called_while_its_breaker_is_open() {
    let sandbox = sandbox().await;
    let host = logistics(
        &sandbox,
        "[pipeline.retry]\nattempts = 1\n\n[pipeline.breaker]\nwindow = 100\nmin_calls = 100\n",
    )
    .await;
    fail(&sandbox, 0, 1.0);
    for _ in 0..10 {
        assert_eq!(
            track(&host, "SF1234567890").await.code(),
            "upstream_unavailable"
        );
    }
    let before = sandbox.logistics_requests();
    let refused = track(&host, "SF1234567890").await;
    assert_eq!(refused.code(), "circuit_open", "{}", refused.text);
    assert_eq!(refused.json["error"]["retryable"], true);
    assert_eq!(
        sandbox.logistics_requests(),
        before,
        "the upstream was not called"
    );
    let upstreams = host.get("/v1/upstreams").await;
    let target = sandbox.logistics_url().replace("http://", "");
    assert_eq!(
        upstreams.json["upstreams"][&target]["state"], "open",
        "{}",
        upstreams.text
    );
}

#[tokio::test]
async fn a_second_call_with_a_key_still_running_is_refused_and_a_later_one_replays() {
    let sandbox = sandbox().await;
    let host = Arc::new(misbehaving().await);
    sandbox.payment_faults().set(FaultConfig {
        latency_ms: 400,
        ..FaultConfig::default()
    });
    let first = {
        let (host, request) = (host.clone(), post_request(&sandbox, "RACE-1", Some("race")));
        tokio::spawn(async move { host.send(request).await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = host
        .send(post_request(&sandbox, "RACE-1", Some("race")))
        .await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "idempotency_key_in_progress")
    );
    let first = first.await.unwrap();
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let third = host
        .send(post_request(&sandbox, "RACE-1", Some("race")))
        .await;
    assert_eq!(third.text, first.text);
    assert_eq!(header(&third, "idempotent-replayed"), Some("true"));
}
