//! Security through the real binary: a secret set through the API never
//! shows anywhere a person or a scraper can read, keys and tokens are
//! checked, and a master key rotates while the host serves.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ADMIN_KEY, Host, copy_package, dist};
use reqwest::Method;
use serde_json::{Value, json};
use switchboard_sandbox::{FaultConfig, LOGISTICS_API_KEY, Provider, Sandbox, SandboxConfig};

/// Everything the test read back from the host, to search for the secret.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, what: &str, text: impl std::fmt::Display) {
        self.0.push(format!("--- {what}\n{text}"));
    }
}

#[tokio::test]
async fn a_secret_set_through_the_api_never_appears_in_logs_audit_metrics_or_errors() {
    let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    let name = "logistics-tracking";
    copy_package(&dist("plugins").join(name), &plugins.join(name));
    let host = Host::start_with_env(
        &temp.path().join("data"),
        Some(plugins),
        &["--log-format", "json"],
        &[("RUST_LOG", "debug,cranelift=info,wasmtime=info")],
    )
    .await;
    let mut seen = Seen::default();
    host.set(name, "config", "base_url", &sandbox.logistics_url())
        .await;
    host.set(name, "secrets", "api_key", LOGISTICS_API_KEY)
        .await;

    let parcel = json!({"carrier": "yto", "tracking_number": "YT1234567890"});
    let (status, body) = host.invoke(name, "track", parcel.clone()).await;
    assert_eq!(status, 200, "{body}");
    seen.keep("a tracked parcel", &body);
    for (input, code) in [
        (
            json!({"carrier": "zto", "tracking_number": "ZT12340000"}),
            "tracking_not_found",
        ),
        (json!({"carrier": "yto"}), "schema_violation"),
        (
            json!({"carrier": "nope", "tracking_number": "X1"}),
            "unknown_carrier",
        ),
    ] {
        let (_, body) = host.invoke(name, "track", input).await;
        assert_eq!(body["error"]["code"], code, "{body}");
        seen.keep(code, &body);
    }
    sandbox.faults(Provider::Logistics).set(FaultConfig {
        fail_next: 3,
        ..FaultConfig::default()
    });
    let (_, body) = host
        .invoke(
            name,
            "track",
            json!({"carrier": "sf-express", "tracking_number": "SF1111111111"}),
        )
        .await;
    seen.keep("an upstream failure", &body);

    // Settings errors that could echo what was sent.
    for (path, value) in [
        (
            format!("/v1/connectors/{name}/secrets/not_declared"),
            json!({"value": LOGISTICS_API_KEY}),
        ),
        (
            format!("/v1/connectors/{name}/secrets/api_key"),
            json!({"value": LOGISTICS_API_KEY, "extra": 1}),
        ),
        (
            format!("/v1/connectors/{name}/secrets/api_key"),
            json!(LOGISTICS_API_KEY),
        ),
    ] {
        let (status, body) = host.call(Method::PUT, &path, Some(value)).await;
        assert!((400..500).contains(&status), "{status} {body}");
        seen.keep(&path, &body);
    }
    let (status, body) = host
        .call_as(Some(LOGISTICS_API_KEY), Method::GET, "/v1/connectors", None)
        .await;
    assert_eq!(status, 401, "{body}");
    seen.keep("the secret sent as a key", &body);

    let (status, audit) = host.call(Method::GET, "/v1/audit?limit=1000", None).await;
    assert_eq!(status, 200, "{audit}");
    let calls = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "call")
        .count();
    assert!(calls >= 5, "{audit}");
    seen.keep("audit", &audit);
    for path in [
        "/metrics",
        "/v1/audit/export?format=jsonl",
        "/v1/audit/export?format=csv",
        "/v1/connectors/logistics-tracking/secrets",
        "/v1/connectors/logistics-tracking",
        "/v1/events",
        "/v1/openapi.json",
    ] {
        let text = host.text(path).await;
        assert!(!text.is_empty(), "{path} answered nothing");
        seen.keep(path, text);
    }
    let log = host.log_text();
    assert!(
        log.contains(r#""connector":"logistics-tracking""#),
        "the connector's log lines are in the captured log"
    );
    seen.keep("the host's log", &log);

    let everything = seen.0.join("\n");
    assert!(
        everything.contains("switchboard_calls_total"),
        "the metrics were read"
    );
    if let Some(at) = everything.find(LOGISTICS_API_KEY) {
        let start = everything[..at].rfind("\n--- ").unwrap_or(0);
        panic!(
            "the secret appears in: {}",
            &everything[start..(at + 80).min(everything.len())]
        );
    }
}

#[tokio::test]
async fn keys_tokens_and_a_master_key_rotation_through_the_binary() {
    let temp = tempfile::tempdir().unwrap();
    let plugins = temp.path().join("plugins");
    copy_package(&dist("test-plugins").join("echo"), &plugins.join("echo"));
    let host = Host::start(&temp.path().join("data"), Some(plugins)).await;

    let (status, body) = host
        .call_as(None, Method::GET, "/v1/connectors", None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = host.call_as(None, Method::GET, "/healthz", None).await;
    assert_eq!(status, 200);

    let (status, made) = host
        .call(
            Method::POST,
            "/v1/keys",
            Some(json!({"name": "ivr", "scopes": ["invoke"], "tenant": "acme"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (id, key) = (made["id"].as_str().unwrap(), made["key"].as_str().unwrap());

    // The key as an OAuth2 client: a token for it, which calls as it does.
    let token: Value = reqwest::Client::new()
        .post(format!("{}/oauth/token", host.url))
        .basic_auth(id, Some(key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["token_type"], "Bearer", "{token}");
    let access = token["access_token"].as_str().unwrap();
    let (status, echoed) = host
        .call_as(
            Some(access),
            Method::POST,
            "/v1/connectors/echo/operations/echo",
            Some(json!({"hello": "world"})),
        )
        .await;
    assert_eq!((status, &echoed), (200, &json!({"hello": "world"})));
    let (status, body) = host
        .call_as(Some(access), Method::GET, "/v1/audit", None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("scope_required")),
        "{body}"
    );

    let (status, _) = host
        .call(Method::DELETE, &format!("/v1/keys/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = host
        .call_as(
            Some(access),
            Method::POST,
            "/v1/connectors/echo/operations/echo",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 401, "a revoked key's token stops at once");

    // Rotation while serving: the ring file changes, the id moves, calls go on.
    let (_, before) = host.call(Method::GET, "/v1/master-key", None).await;
    let (status, rotated) = host.call(Method::POST, "/v1/master-key/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["key_id"], before["key_id"]);
    let ring = std::fs::read_to_string(temp.path().join("data/master.key")).unwrap();
    assert_eq!(ring.lines().count(), 1, "the old key is gone from the file");
    let (status, _) = host
        .call_as(
            Some(ADMIN_KEY),
            Method::POST,
            "/v1/connectors/echo/operations/echo",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200);
}
