//! In-process API tests: the whole router, real connectors, sandbox upstreams.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{TestHost, multipart_install, package, sandbox};

#[tokio::test]
async fn health_and_readiness_answer_and_every_response_carries_a_request_id() {
    let host = TestHost::start().await;
    let health = host.get("/healthz").await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(health.headers.contains_key("x-request-id"));
    let ready = host.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json["status"], "ready");
}

#[tokio::test]
async fn a_caller_supplied_request_id_is_echoed_in_headers_and_errors() {
    let host = TestHost::start().await;
    let reply = host
        .send(
            Request::get("/v1/connectors/nope")
                .header("x-request-id", "req-42")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.headers["x-request-id"], "req-42");
    assert_eq!(reply.json["error"]["request_id"], "req-42");
}

#[tokio::test]
async fn installing_over_the_api_lists_and_describes_the_connector_with_schemas() {
    let host = TestHost::start().await;
    let (manifest, wasm) = package("plugins", "logistics-tracking");
    let installed = host.send(multipart_install(&manifest, &wasm)).await;
    assert_eq!(installed.status, StatusCode::CREATED, "{}", installed.text);
    assert_eq!(installed.json["name"], "logistics-tracking");
    assert_eq!(installed.json["already_installed"], false);
    assert_eq!(installed.json["deployment"]["active"], "0.1.0");

    let again = host.send(multipart_install(&manifest, &wasm)).await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "the same package again changes nothing: {}",
        again.text
    );
    assert_eq!(again.json["already_installed"], true);
    let changed = format!("{manifest}\n# another build\n");
    let conflict = host.send(multipart_install(&changed, &wasm)).await;
    assert_eq!(
        (conflict.status, conflict.code()),
        (StatusCode::CONFLICT, "version_conflict"),
        "{}",
        conflict.text
    );

    let list = host.get("/v1/connectors").await;
    assert_eq!(list.json["connectors"][0]["name"], "logistics-tracking");
    let described = host.get("/v1/connectors/logistics-tracking").await;
    assert_eq!(described.status, StatusCode::OK);
    let track = &described.json["operations"][0];
    assert_eq!(track["name"], "track");
    assert_eq!(track["idempotent"], true);
    assert_eq!(track["input_schema"]["type"], "object");
    assert!(
        track["input_schema"]["required"]
            .as_array()
            .unwrap()
            .contains(&"carrier".into())
    );
    assert_eq!(described.json["secrets"][0], "api_key");
}

#[tokio::test]
async fn tracking_a_parcel_goes_through_the_connector_to_the_sandbox_provider() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let reply = host
        .invoke(
            "logistics-tracking",
            "track",
            r#"{"carrier":"sf-express","tracking_number":"SF1234567890"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers["x-connector-version"], "0.1.0");
    assert_eq!(reply.json["tracking_number"], "SF1234567890");
    assert!(
        ["in_transit", "out_for_delivery", "delivered"]
            .contains(&reply.json["status"].as_str().unwrap())
    );
    assert!(!reply.json["events"].as_array().unwrap().is_empty());
    assert_eq!(sandbox.logistics_requests(), 1);
}

#[tokio::test]
async fn provider_errors_become_the_connectors_stable_codes() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let missing = host
        .invoke(
            "logistics-tracking",
            "track",
            r#"{"carrier":"zto","tracking_number":"ZT12340000"}"#,
        )
        .await;
    assert_eq!(
        missing.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        missing.text
    );
    assert_eq!(missing.code(), "tracking_not_found");
    assert_eq!(missing.json["error"]["retryable"], false);

    host.put_setting(
        "logistics-tracking",
        "secrets",
        "api_key",
        "sk_wrong_key_1234",
    )
    .await;
    let unauthorized = host
        .invoke(
            "logistics-tracking",
            "track",
            r#"{"carrier":"zto","tracking_number":"ZT12345678"}"#,
        )
        .await;
    assert_eq!(unauthorized.code(), "upstream_unauthorized");
    assert!(
        !unauthorized.text.contains("sk_wrong_key_1234"),
        "a secret leaked: {}",
        unauthorized.text
    );
}

#[tokio::test]
async fn a_payment_link_is_created_once_per_order_and_its_status_read_back_per_tenant() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let input =
        r#"{"order_id":"A-1001","amount":19900,"currency":"CNY","description":"Order A-1001"}"#;
    let first = host.invoke("payment-link", "create-link", input).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let second = host.invoke("payment-link", "create-link", input).await;
    assert_eq!(
        second.json["link_id"], first.json["link_id"],
        "idempotent per order id"
    );
    assert_eq!(first.json["status"], "pending");

    let status = host
        .invoke("payment-link", "get-status", r#"{"order_id":"A-1001"}"#)
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.text);
    assert_eq!(status.json["link_id"], first.json["link_id"]);

    let other_tenant = host
        .send(
            Request::post("/v1/connectors/payment-link/operations/get-status")
                .header("x-tenant", "other-tenant")
                .body(Body::from(r#"{"order_id":"A-1001"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(
        other_tenant.code(),
        "link_not_found",
        "kv is scoped per tenant"
    );

    let conflict = host
        .invoke(
            "payment-link",
            "create-link",
            r#"{"order_id":"A-1001","amount":1,"currency":"CNY"}"#,
        )
        .await;
    assert_eq!(conflict.code(), "order_conflict");

    let events = switchboard::store::EventLog::read_events(host.app.store.as_ref(), 0, 10).unwrap();
    let created: Vec<_> = events
        .iter()
        .filter(|(_, e)| e.kind == "payment.link_created")
        .collect();
    assert!(!created.is_empty(), "emitted events are stored: {events:?}");
    assert_eq!(created[0].1.subject.as_deref(), Some("A-1001"));
    assert_eq!(created[0].1.connector, "payment-link");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_stable_code() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let cases = [
        (
            "/v1/connectors/logistics-tracking/operations/track",
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "/v1/connectors/logistics-tracking/operations/track",
            "",
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            "/v1/connectors/logistics-tracking/operations/track",
            r#"{"carrier":5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema_violation",
        ),
        (
            "/v1/connectors/nope/operations/track",
            "{}",
            StatusCode::NOT_FOUND,
            "connector_not_found",
        ),
        (
            "/v1/connectors/logistics-tracking/operations/nope",
            "{}",
            StatusCode::NOT_FOUND,
            "operation_not_found",
        ),
        (
            "/v1/nowhere",
            "{}",
            StatusCode::NOT_FOUND,
            "route_not_found",
        ),
    ];
    for (uri, body, status, code) in cases {
        let reply = host.post_json(uri, body).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{uri} {body}: {}",
            reply.text
        );
    }
    let schema = host
        .invoke("logistics-tracking", "track", r#"{"carrier":5}"#)
        .await;
    assert!(
        schema.message().contains("/carrier"),
        "{}",
        schema.message()
    );
    let unknown_op = host.invoke("logistics-tracking", "nope", "{}").await;
    assert!(
        unknown_op.message().contains("it offers: track"),
        "{}",
        unknown_op.message()
    );

    let wrong_method = host
        .send(Request::delete("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    let huge = format!(
        r#"{{"carrier":"zto","tracking_number":"{}"}}"#,
        "9".repeat(2 << 20)
    );
    let too_large = host.invoke("logistics-tracking", "track", &huge).await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    let bad_tenant = host
        .send(
            Request::post("/v1/connectors/logistics-tracking/operations/track")
                .header("x-tenant", "no spaces allowed")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (bad_tenant.status, bad_tenant.code()),
        (StatusCode::BAD_REQUEST, "invalid_tenant")
    );
}

#[tokio::test]
async fn bad_packages_are_refused_with_a_code_naming_what_is_wrong() {
    let host = TestHost::start().await;
    let (manifest, wasm) = package("test-plugins", "echo");

    let not_wasm = host
        .send(multipart_install(&manifest, b"definitely not wasm"))
        .await;
    assert_eq!(
        (not_wasm.status, not_wasm.code()),
        (StatusCode::BAD_REQUEST, "invalid_component")
    );

    let core_module = wat::parse_str("(module)").unwrap();
    let module = host.send(multipart_install(&manifest, &core_module)).await;
    assert_eq!(module.code(), "invalid_component");
    assert!(
        module
            .message()
            .contains("core WebAssembly module, not a component"),
        "{}",
        module.message()
    );

    let empty_component = wat::parse_str("(component)").unwrap();
    let missing = host
        .send(multipart_install(&manifest, &empty_component))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "world_mismatch")
    );
    assert_eq!(
        missing.message(),
        "the component does not implement the world switchboard:connector/connector@0.1.1: it does not export `describe`, `invoke`, `handle-webhook` and `on-event`"
    );

    let unknown_field = format!("{manifest}\nflavour = \"vanilla\"\n");
    let bad_manifest = host.send(multipart_install(&unknown_field, &wasm)).await;
    assert_eq!(
        (bad_manifest.status, bad_manifest.code()),
        (StatusCode::BAD_REQUEST, "invalid_manifest")
    );
    assert!(
        bad_manifest.message().contains("unknown field `flavour`"),
        "{}",
        bad_manifest.message()
    );

    let renamed = manifest.replace("name = \"echo\"", "name = \"not-echo\"");
    let mismatch = host.send(multipart_install(&renamed, &wasm)).await;
    assert_eq!(
        (mismatch.status, mismatch.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "describe_mismatch")
    );
    assert_eq!(
        mismatch.message(),
        "describe() reports name `echo` but connector.toml says `not-echo`"
    );

    let no_component = host
        .send(
            Request::post("/v1/connectors")
                .header("content-type", "multipart/form-data; boundary=b")
                .body(Body::from(format!("--b\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{manifest}\r\n--b--\r\n")))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (no_component.status, no_component.code()),
        (StatusCode::BAD_REQUEST, "missing_part")
    );

    let not_multipart = host.post_json("/v1/connectors", "{}").await;
    assert_eq!(
        (not_multipart.status, not_multipart.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );

    assert!(
        host.get("/v1/connectors").await.json["connectors"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing half-installed"
    );
}

#[tokio::test]
async fn secrets_are_write_only_and_undeclared_settings_are_refused() {
    let host = TestHost::start().await;
    host.install("plugins", "logistics-tracking").await;
    let secret = "sk_live_very_secret_value";
    assert_eq!(
        host.put_setting("logistics-tracking", "secrets", "api_key", secret)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let listed = host.get("/v1/connectors/logistics-tracking/secrets").await;
    assert_eq!(listed.json["secrets"][0]["set"], true);
    for uri in [
        "/v1/connectors/logistics-tracking/secrets",
        "/v1/connectors/logistics-tracking/config",
        "/v1/connectors/logistics-tracking",
        "/v1/connectors",
        "/v1/connectors/logistics-tracking/versions",
        "/v1/audit",
    ] {
        assert!(
            !host.get(uri).await.text.contains(secret),
            "{uri} shows the secret"
        );
    }
    let audit = host
        .get("/v1/audit?connector=logistics-tracking&limit=1000")
        .await;
    assert!(
        audit.json["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "secret.set" && r["detail"] == "key api_key"),
        "{}",
        audit.text
    );
    let undeclared = host
        .put_setting("logistics-tracking", "secrets", "password", "x")
        .await;
    assert_eq!(
        (undeclared.status, undeclared.code()),
        (StatusCode::BAD_REQUEST, "undeclared_setting")
    );
    assert!(
        undeclared.message().contains("declared: api_key"),
        "{}",
        undeclared.message()
    );
    let bad_key = host
        .put_setting("logistics-tracking", "config", "Base-URL", "x")
        .await;
    assert_eq!(bad_key.code(), "invalid_setting_key");
    let config = host.get("/v1/connectors/logistics-tracking/config").await;
    assert_eq!(config.json["config"][0]["key"], "base_url");
    assert_eq!(config.json["config"][0]["set_by_operator"], false);
}

#[tokio::test]
async fn removing_a_connector_stops_serving_it() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    assert_eq!(
        host.invoke("echo", "echo", "{}").await.status,
        StatusCode::OK
    );
    let removed = host
        .send(
            Request::delete("/v1/connectors/echo")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert_eq!(
        host.invoke("echo", "echo", "{}").await.code(),
        "connector_not_found"
    );
    let again = host
        .send(
            Request::delete("/v1/connectors/echo")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(again.code(), "connector_not_found");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_each_operations_schemas() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let doc = host.get("/v1/openapi.json").await;
    assert_eq!(doc.json["openapi"], "3.1.0");
    let paths = doc.json["paths"].as_object().unwrap();
    let track = &paths["/v1/connectors/logistics-tracking/operations/track"]["post"];
    assert_eq!(
        track["requestBody"]["content"]["application/json"]["schema"]["type"],
        "object"
    );
    assert!(paths.contains_key("/v1/connectors/payment-link/operations/create-link"));
    for (path, methods) in paths.iter().filter(|(p, _)| !p.contains("/operations/")) {
        for method in methods.as_object().unwrap().keys() {
            let uri = path
                .replace("{name}", "logistics-tracking")
                .replace("{key}", "base_url");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let reply = host.send(request).await;
            let code = reply.json["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                code != "route_not_found" && code != "method_not_allowed",
                "{method} {uri} is documented but not served"
            );
        }
    }
}

#[tokio::test]
async fn connector_routes_answer_not_ready_until_start_up_finished() {
    let host = TestHost::open(tempfile::tempdir().unwrap(), None);
    assert_eq!(host.get("/healthz").await.status, StatusCode::OK);
    let listed = host.get("/v1/connectors").await;
    assert_eq!(
        (listed.status, listed.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    );
    assert_eq!(host.invoke("echo", "echo", "{}").await.code(), "not_ready");
    assert_eq!(host.get("/readyz").await.code(), "not_ready");
    host.app.load_connectors().await.unwrap();
    assert_eq!(host.get("/v1/connectors").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_order_id_that_cannot_travel_as_a_header_is_refused_by_the_schema() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let reply = host
        .invoke(
            "payment-link",
            "create-link",
            r#"{"order_id":"订单 1","amount":100,"currency":"CNY"}"#,
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "schema_violation")
    );
    assert!(reply.message().contains("/order_id"), "{}", reply.message());
    assert_eq!(
        sandbox.payment_requests(),
        0,
        "nothing reached the provider"
    );
}
