//! A connector that misbehaves gets a clear error for that call, within its
//! deadline, while the host and every other connector keep serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{TestHost, sandbox};
use switchboard_sandbox::FaultConfig;

async fn host_with_fixtures() -> TestHost {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    host.install("test-plugins", "misbehaving").await;
    host
}

#[tokio::test]
async fn each_kind_of_misbehaviour_gets_its_own_code_and_status() {
    let host = host_with_fixtures().await;
    let cases = [
        ("spin", StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        ("allocate", StatusCode::BAD_GATEWAY, "memory_limit_exceeded"),
        ("trap", StatusCode::BAD_GATEWAY, "connector_trapped"),
        ("huge-output", StatusCode::BAD_GATEWAY, "output_too_large"),
        (
            "forbidden-host",
            StatusCode::UNPROCESSABLE_ENTITY,
            "host_not_allowed",
        ),
    ];
    for (op, status, code) in cases {
        let started = Instant::now();
        let reply = host.invoke("misbehaving", op, "{}").await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{op}: {}",
            reply.text
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{op} took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        host.invoke("misbehaving", "ok", "{}").await.status,
        StatusCode::OK,
        "the connector itself still serves"
    );
}

#[tokio::test]
async fn the_messages_say_what_happened_without_a_wasmtime_dump() {
    let host = host_with_fixtures().await;
    let spin = host.invoke("misbehaving", "spin", "{}").await;
    assert_eq!(
        spin.message(),
        "the connector did not finish within its 1000 ms deadline"
    );
    let memory = host.invoke("misbehaving", "allocate", "{}").await;
    assert_eq!(
        memory.message(),
        "the connector tried to use more than 33554432 bytes of memory"
    );
    let output = host.invoke("misbehaving", "huge-output", "{}").await;
    assert!(
        output.message().ends_with("its limit is 65536"),
        "{}",
        output.message()
    );
    let forbidden = host.invoke("misbehaving", "forbidden-host", "{}").await;
    assert_eq!(
        forbidden.message(),
        "`[::1]:9` is not in this connector's allowed_hosts"
    );
}

#[tokio::test]
async fn a_well_behaved_connector_keeps_answering_while_others_misbehave() {
    let host = host_with_fixtures().await;
    let router = &host;
    let misbehaving = async {
        let ops = [
            "spin",
            "allocate",
            "trap",
            "huge-output",
            "spin",
            "allocate",
        ];
        futures::future::join_all(ops.iter().map(|op| router.invoke("misbehaving", op, "{}"))).await
    };
    let well_behaved = async {
        let mut answered = 0;
        for i in 0..50 {
            let reply = router
                .invoke("echo", "echo", &format!(r#"{{"n":{i}}}"#))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            assert_eq!(reply.json["n"], i);
            answered += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answered
    };
    let (bad, answered) = tokio::join!(misbehaving, well_behaved);
    assert_eq!(answered, 50);
    assert!(bad.iter().all(|r| r.status.is_server_error()));
}

#[tokio::test]
async fn the_deadline_covers_time_spent_waiting_on_host_http() {
    let sandbox = sandbox().await;
    let host = host_with_fixtures().await;
    let url = format!("{}/v1/tracking/zto/ZT12345678", sandbox.logistics_url());
    sandbox.logistics_faults().set(FaultConfig {
        latency_ms: 600,
        ..FaultConfig::default()
    });
    let inside = host
        .invoke("misbehaving", "fetch", &fetch_input(&url))
        .await;
    assert_eq!(
        inside.status,
        StatusCode::OK,
        "600 ms of a 1000 ms deadline: {}",
        inside.text
    );
    sandbox.logistics_faults().set(FaultConfig {
        latency_ms: 4_000,
        ..FaultConfig::default()
    });
    let started = Instant::now();
    let reply = host
        .invoke(
            "misbehaving",
            "fetch",
            &serde_json::json!({ "url": url }).to_string(),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
        "{}",
        reply.text
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "ended at the 1 s deadline, not the upstream's 4 s: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn output_exactly_at_the_limit_is_returned_and_one_byte_more_is_refused() {
    let host = TestHost::start().await;
    let (manifest, wasm) = common::package("test-plugins", "echo");
    let limited = format!("{manifest}\n[limits]\noutput_bytes = 100\n");
    host.install_manifest(&limited, wasm).await;
    let at_limit = format!(r#"{{"s":"{}"}}"#, "a".repeat(100 - 8));
    assert_eq!(at_limit.len(), 100);
    assert_eq!(
        host.invoke("echo", "echo", &at_limit).await.status,
        StatusCode::OK
    );
    let over = format!(r#"{{"s":"{}"}}"#, "a".repeat(100 - 7));
    assert_eq!(
        host.invoke("echo", "echo", &over).await.code(),
        "output_too_large"
    );
}

#[tokio::test]
async fn the_guest_sees_no_environment_files_arguments_or_network() {
    let host = host_with_fixtures().await;
    let reply = host.invoke("misbehaving", "probe-sandbox", "{}").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.json,
        serde_json::json!({ "env_vars": 0, "args": 0, "list_root": false, "read_passwd": false, "tcp_connect": false })
    );
}

#[tokio::test]
async fn an_instance_limit_too_low_for_the_component_is_refused_at_install() {
    let host = TestHost::start().await;
    let (manifest, wasm) = common::package("test-plugins", "echo");
    let starved = format!("{manifest}\n[limits]\ninstances = 1\n");
    let reply = host.send(common::multipart_install(&starved, &wasm)).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "describe_failed"),
        "{}",
        reply.text
    );
    assert_eq!(
        reply.message(),
        "describe() failed: the connector needs more than 1 instances (or their memories and tables)"
    );
    let (manifest, wasm) = common::package("test-plugins", "echo");
    assert_eq!(
        host.send(common::multipart_install(&manifest, &wasm))
            .await
            .status,
        StatusCode::CREATED
    );
}

/// Installs the misbehaving connector afresh with extra `[limits]` lines
/// (a version is one package, so the old one is removed first).
async fn misbehaving_with_limits(host: &TestHost, limits: &str) {
    let (manifest, wasm) = common::package("test-plugins", "misbehaving");
    let manifest = manifest.replace("[limits]", &format!("[limits]\n{limits}"));
    let name = switchboard::names::ConnectorName::parse("misbehaving").unwrap();
    let registry = &host.app.state.registry;
    registry
        .remove(&name, switchboard::registry::lifecycle::Actor::Api)
        .await
        .unwrap();
    host.install_manifest(&manifest, wasm).await;
}

fn fetch_input(url: &str) -> String {
    serde_json::json!({ "url": url }).to_string()
}

#[tokio::test]
async fn an_upstream_answering_within_the_http_timeout_is_read_and_one_slower_is_cut_off() {
    let sandbox = sandbox().await;
    let url = format!("{}/v1/tracking/zto/ZT12345678", sandbox.logistics_url());
    let host = TestHost::start().await;
    misbehaving_with_limits(&host, "http_timeout_ms = 300").await;

    sandbox.logistics_faults().set(FaultConfig {
        latency_ms: 50,
        ..FaultConfig::default()
    });
    let inside = host
        .invoke("misbehaving", "fetch", &fetch_input(&url))
        .await;
    assert_eq!(inside.status, StatusCode::OK, "{}", inside.text);

    sandbox.logistics_faults().set(FaultConfig {
        latency_ms: 600,
        ..FaultConfig::default()
    });
    let outside = host
        .invoke("misbehaving", "fetch", &fetch_input(&url))
        .await;
    assert_eq!(
        (outside.status, outside.code()),
        (StatusCode::BAD_GATEWAY, "http_timeout"),
        "{}",
        outside.text
    );
    assert_eq!(outside.json["error"]["retryable"], true);
}

#[tokio::test]
async fn an_upstream_body_exactly_at_the_cap_is_read_and_one_byte_more_is_refused() {
    let sandbox = sandbox().await;
    let url = format!("{}/v1/tracking/zto/ZT12345678", sandbox.logistics_url());
    let host = TestHost::start().await;
    host.install("test-plugins", "misbehaving").await;
    let full = host
        .invoke("misbehaving", "fetch", &fetch_input(&url))
        .await;
    let size = full.json["body"].as_str().unwrap().len();

    misbehaving_with_limits(&host, &format!("http_response_bytes = {size}")).await;
    let at_cap = host
        .invoke("misbehaving", "fetch", &fetch_input(&url))
        .await;
    assert_eq!(at_cap.status, StatusCode::OK, "{}", at_cap.text);

    misbehaving_with_limits(&host, &format!("http_response_bytes = {}", size - 1)).await;
    let over = host
        .invoke("misbehaving", "fetch", &fetch_input(&url))
        .await;
    assert_eq!(over.code(), "http_response_too_large", "{}", over.text);
}

#[tokio::test]
async fn calls_beyond_the_instance_pool_fail_fast_with_capacity_exhausted() {
    let host = TestHost::open_with_instances(
        tempfile::tempdir().unwrap(),
        Some(common::dist().join("test-plugins")),
        1,
    );
    host.app.load_connectors().await.unwrap();
    let spinning = host.invoke("misbehaving", "spin", "{}");
    let refused = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let reply = host.invoke("echo", "echo", "{}").await;
        (reply, started.elapsed())
    };
    let (spun, (refused, waited)) = tokio::join!(spinning, refused);
    assert_eq!(spun.code(), "deadline_exceeded");
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "capacity_exhausted"),
        "{}",
        refused.text
    );
    assert!(
        waited < Duration::from_millis(500),
        "refused at once, not queued: {waited:?}"
    );
    assert_eq!(
        host.invoke("echo", "echo", "{}").await.status,
        StatusCode::OK,
        "the slot is free again"
    );
}
