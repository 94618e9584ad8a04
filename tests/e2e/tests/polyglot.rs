//! The logistics connector in three languages passes one contract: the Rust
//! original and its JavaScript and Python twins, each built by `scripts/test`
//! from the same WIT, served by the real binary against the sandbox provider.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{Host, copy_package, dist};
use serde_json::{Value, json};
use switchboard_sandbox::{FaultConfig, Provider, Sandbox, SandboxConfig};

#[tokio::test]
async fn the_rust_logistics_connector_meets_the_contract() {
    meets_the_logistics_contract(
        &dist("plugins").join("logistics-tracking"),
        "logistics-tracking",
    )
    .await;
}

#[tokio::test]
async fn the_javascript_logistics_connector_meets_the_contract() {
    meets_the_logistics_contract(
        &dist("polyglot").join("logistics-tracking-js"),
        "logistics-tracking-js",
    )
    .await;
}

#[tokio::test]
async fn the_python_logistics_connector_meets_the_contract() {
    meets_the_logistics_contract(
        &dist("polyglot").join("logistics-tracking-py"),
        "logistics-tracking-py",
    )
    .await;
}

/// Installs the package in `package` alone on a fresh host and checks what
/// every logistics connector must do, whatever its language.
async fn meets_the_logistics_contract(package: &Path, name: &str) {
    let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    copy_package(package, &plugins.join(name));
    let host = Host::start(&temp.path().join("data"), Some(plugins)).await;

    let (status, described) = host
        .call(
            reqwest::Method::GET,
            &format!("/v1/connectors/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{described}");
    let operations = described["operations"].as_array().unwrap();
    assert_eq!(operations.len(), 1, "{described}");
    let track = &operations[0];
    assert_eq!(track["name"], "track");
    assert_eq!(track["idempotent"], true);
    let mut required: Vec<&str> = track["input_schema"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["carrier", "tracking_number"], "{track}");

    let parcel = json!({"carrier": "yto", "tracking_number": "YT1234567890"});
    let (status, body) = host.invoke(name, "track", parcel.clone()).await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "secret_missing"),
        "{body}"
    );

    host.set(name, "config", "base_url", &sandbox.logistics_url())
        .await;
    host.set(name, "secrets", "api_key", "sk_wrong").await;
    let (status, body) = host.invoke(name, "track", parcel.clone()).await;
    assert_eq!(
        (status, error_code(&body), body["error"]["message"].as_str()),
        (
            422,
            "upstream_unauthorized",
            Some(
                "upstream answered HTTP 401: {\"error\":{\"type\":\"unauthorized\",\
                 \"message\":\"the API key is not valid for this provider\"}}"
            )
        ),
        "{body}"
    );
    assert!(
        !host.log_text().contains("sk_wrong"),
        "a secret reached the log"
    );

    host.set(
        name,
        "secrets",
        "api_key",
        switchboard_sandbox::LOGISTICS_API_KEY,
    )
    .await;
    let (status, body) = host.invoke(name, "track", parcel).await;
    assert_eq!(status, 200, "{body}");
    let expected: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/tracking/yto/YT1234567890",
            sandbox.logistics_url()
        ))
        .bearer_auth(switchboard_sandbox::LOGISTICS_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, expected, "the provider's answer, field for field");

    let failures = [
        (
            json!({"carrier": "yto", "tracking_number": "YT1234560000"}),
            422,
            "tracking_not_found",
            "carrier `yto` has no parcel `YT1234560000`",
        ),
        (
            json!({"carrier": "dhl", "tracking_number": "YT1234567890"}),
            422,
            "unknown_carrier",
            "unknown carrier \"dhl\"; known carriers: sf-express, zto, yto, ems, jd",
        ),
        (
            json!({"carrier": "yto", "tracking_number": "short"}),
            422,
            "invalid_tracking_number",
            "tracking number \"short\" must be 8 to 20 ASCII letters or digits",
        ),
        (
            json!({"carrier": "  ", "tracking_number": "YT1234567890"}),
            422,
            "invalid_input",
            "`carrier` must not be empty",
        ),
    ];
    for (input, want_status, want_code, want_message) in failures {
        let (status, body) = host.invoke(name, "track", input.clone()).await;
        assert_eq!(
            (status, error_code(&body), body["error"]["message"].as_str()),
            (want_status, want_code, Some(want_message)),
            "{input} gave {body}"
        );
    }

    let (status, body) = host.invoke(name, "track", json!({"carrier": "yto"})).await;
    assert_eq!(
        (status, error_code(&body)),
        (422, "schema_violation"),
        "the host checks input against the published schema: {body}"
    );

    sandbox.faults(Provider::Logistics).set(FaultConfig {
        failure_rate: 1.0,
        ..FaultConfig::default()
    });
    let (status, body) = host
        .invoke(
            name,
            "track",
            json!({"carrier": "zto", "tracking_number": "ZT1234567890"}),
        )
        .await;
    assert_eq!(
        (
            status,
            error_code(&body),
            body["error"]["retryable"].as_bool()
        ),
        (502, "upstream_unavailable", Some(true)),
        "{body}"
    );
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("(no error code)")
}
