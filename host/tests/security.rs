//! Keys, scopes, tenants, the audit trail and secrets at rest, through the
//! whole API in-process.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Reply, TestHost, sandbox};
use serde_json::{Value, json};

/// Makes a key through the API; returns its id and the key.
async fn make_key(host: &TestHost, body: Value) -> (String, String) {
    let made = host.post_json("/v1/keys", &body.to_string()).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.text);
    (
        made.json["id"].as_str().unwrap().to_owned(),
        made.json["key"].as_str().unwrap().to_owned(),
    )
}

async fn send_as(
    host: &TestHost,
    key: &str,
    request: axum::http::request::Builder,
    body: &str,
) -> Reply {
    host.send_raw(
        request
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

async fn get_as(host: &TestHost, key: &str, uri: &str) -> Reply {
    send_as(host, key, Request::get(uri), "").await
}

#[tokio::test]
async fn nothing_but_health_answers_without_a_valid_key() {
    let host = TestHost::start().await;
    for uri in [
        "/v1/connectors",
        "/metrics",
        "/v1/audit",
        "/v1/openapi.json",
        "/v1/keys",
    ] {
        let reply = host
            .send_raw(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(reply.code(), "unauthenticated");
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
    }
    for key in [
        "sbk_00000000000000ad_wrongwrongwrongwrongwrongwrongwrongwrongwro",
        "not a key",
        "sbt_e30.AAAA",
    ] {
        let reply = get_as(&host, key, "/v1/connectors").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{key}");
    }
    let basic = host
        .send_raw(
            Request::get("/v1/connectors")
                .header("authorization", "Basic YTpi")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(basic.code(), "unauthenticated");
    for uri in ["/healthz", "/readyz"] {
        let reply = host
            .send_raw(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn a_key_without_the_admin_scope_is_refused_on_admin_routes() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    let (_, key) = make_key(
        &host,
        json!({"name": "agent desk", "scopes": ["read", "invoke"]}),
    )
    .await;

    assert_eq!(
        get_as(&host, &key, "/v1/connectors").await.status,
        StatusCode::OK
    );
    let call = send_as(
        &host,
        &key,
        Request::post("/v1/connectors/echo/operations/echo"),
        "{}",
    )
    .await;
    assert_eq!(call.status, StatusCode::OK, "{}", call.text);
    for (request, body) in [
        (
            Request::put("/v1/connectors/echo/config/x"),
            r#"{"value":"v"}"#,
        ),
        (Request::delete("/v1/connectors/echo"), ""),
        (Request::post("/v1/connectors/echo/rollback"), ""),
        (Request::post("/v1/rules"), "{}"),
        (Request::post("/v1/master-key/rotate"), ""),
        (Request::post("/v1/events"), r#"{"kind":"a.b","data":{}}"#),
    ] {
        let reply = send_as(&host, &key, request, body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
        assert_eq!(reply.code(), "scope_required");
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("admin scope")
        );
    }
    let wider = send_as(
        &host,
        &key,
        Request::post("/v1/keys"),
        r#"{"name":"x","scopes":["admin"]}"#,
    )
    .await;
    assert_eq!(wider.code(), "scope_required", "{}", wider.text);
    let (_, reader) = make_key(&host, json!({"name": "wallboard", "scopes": ["read"]})).await;
    let refused = send_as(
        &host,
        &reader,
        Request::post("/v1/connectors/echo/operations/echo"),
        "{}",
    )
    .await;
    assert_eq!(refused.code(), "scope_required");
}

#[tokio::test]
async fn one_tenant_is_blocked_from_anothers_data() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    let (acme_id, acme) = make_key(
        &host,
        json!({"name": "acme", "scopes": ["read", "invoke"], "tenant": "acme"}),
    )
    .await;
    let (_, globex) = make_key(
        &host,
        json!({"name": "globex", "scopes": ["admin"], "tenant": "globex"}),
    )
    .await;

    let own = send_as(
        &host,
        &acme,
        Request::post("/v1/connectors/echo/operations/echo"),
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(own.status, StatusCode::OK);
    let other = send_as(
        &host,
        &acme,
        Request::post("/v1/connectors/echo/operations/echo").header("x-tenant", "globex"),
        "{}",
    )
    .await;
    assert_eq!(other.code(), "tenant_forbidden");
    let envelope = send_as(
        &host,
        &acme,
        Request::post("/v1/invoke"),
        r#"{"connector":"echo","operation":"echo","input":{},"context":{"tenant":"globex"}}"#,
    )
    .await;
    assert_eq!(envelope.code(), "tenant_forbidden");

    // Events: each tenant sees its own; another's by number is not found.
    for tenant in ["acme", "globex"] {
        let injected = host
            .send(
                Request::post("/v1/events")
                    .header("content-type", "application/json")
                    .header("x-tenant", tenant)
                    .body(Body::from(
                        json!({"kind": "note.added", "data": {"t": tenant}}).to_string(),
                    ))
                    .unwrap(),
            )
            .await;
        assert_eq!(injected.status, StatusCode::ACCEPTED, "{}", injected.text);
    }
    let events = get_as(&host, &acme, "/v1/events").await;
    let tenants: Vec<&str> = events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme"], "{}", events.text);
    let all = host.get("/v1/events?kind=note.added").await;
    let globex_event = all.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tenant"] == "globex")
        .unwrap()["sequence"]
        .clone();
    let hidden = get_as(&host, &acme, &format!("/v1/events/{globex_event}")).await;
    assert_eq!(hidden.code(), "event_not_found");
    assert_eq!(
        get_as(&host, &acme, "/v1/events?tenant=globex")
            .await
            .code(),
        "tenant_forbidden"
    );

    // Audit: globex sees none of acme's calls, and cannot ask for them.
    let audit = get_as(&host, &globex, "/v1/audit?kind=call").await;
    assert_eq!(audit.status, StatusCode::OK);
    assert_eq!(audit.json["records"], json!([]), "{}", audit.text);
    assert_eq!(
        get_as(&host, &globex, "/v1/audit?tenant=acme").await.code(),
        "tenant_forbidden"
    );
    let acme_audit = get_as(&host, &acme, "/v1/audit?kind=call").await;
    let actors: Vec<&str> = acme_audit.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, [acme_id.as_str()], "{}", acme_audit.text);

    // Host-wide routes and other tenants' keys are out of reach.
    for uri in [
        "/v1/connectors/echo/config",
        "/metrics",
        "/v1/subscriptions",
        "/v1/alerts",
    ] {
        assert_eq!(
            get_as(&host, &globex, uri).await.code(),
            "tenant_forbidden",
            "{uri}"
        );
    }
    let keys = get_as(&host, &globex, "/v1/keys").await;
    assert_eq!(
        keys.json["keys"].as_array().unwrap().len(),
        1,
        "{}",
        keys.text
    );
    let revoke = send_as(
        &host,
        &globex,
        Request::delete(format!("/v1/keys/{acme_id}")),
        "",
    )
    .await;
    assert_eq!(revoke.code(), "key_not_found");
    let cross = send_as(
        &host,
        &globex,
        Request::post("/v1/keys"),
        r#"{"name":"x","scopes":["read"],"tenant":"acme"}"#,
    )
    .await;
    assert_eq!(cross.code(), "tenant_forbidden");
}

#[tokio::test]
async fn an_audit_query_finds_a_call_with_its_phone_number_masked() {
    let host = TestHost::start().await;
    host.install("test-plugins", "echo").await;
    let call = host
        .send(
            Request::post("/v1/connectors/echo/operations/echo")
                .header("content-type", "application/json")
                .header("x-agent", "7001")
                .header("x-tenant", "acme")
                .body(Body::from(
                    r#"{"caller":"+86 138 0013 8000","email":"wang.fang@example.com","card":"6222021234567890128"}"#,
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(call.status, StatusCode::OK);
    host.invoke("echo", "echo", r#"{"other":"call"}"#).await;

    let found = host
        .get("/v1/audit?kind=call&connector=echo&agent=7001&status=ok&order=newest")
        .await;
    let records = found.json["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{}", found.text);
    let record = &records[0];
    assert_eq!(record["actor"], "sbk_00000000000000ad");
    assert_eq!(record["tenant"], "acme");
    assert_eq!(record["operation"], "echo");
    assert_eq!(record["version"], "0.1.0");
    assert!(record["latency_us"].as_u64().unwrap() > 0);
    for field in ["input", "output"] {
        let text = record[field].as_str().unwrap();
        assert!(text.contains("+86 138 **** 8000"), "{field}: {text}");
        assert!(text.contains("w***@example.com"), "{field}: {text}");
        assert!(text.contains("622202*********0128"), "{field}: {text}");
        assert!(!text.contains("0013"), "{field}: {text}");
    }

    let csv = host.get("/v1/audit/export?format=csv&agent=7001").await;
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.text);
    assert!(lines[0].starts_with("sequence,time_ms,kind,actor"));
    assert!(lines[1].contains("+86 138 **** 8000"));
    let jsonl = host.get("/v1/audit/export?kind=call").await;
    let exported: Vec<Value> = jsonl
        .text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(exported.len(), 2, "{}", jsonl.text);
    assert_eq!(
        host.get("/v1/audit?kind=calls").await.code(),
        "invalid_query"
    );
    assert_eq!(
        host.get("/v1/audit?colour=red").await.code(),
        "invalid_query"
    );
    assert_eq!(
        host.get("/v1/audit/export?format=xml").await.code(),
        "invalid_query"
    );

    // Admin requests are recorded with who made them and how they went.
    host.put_setting("echo", "config", "missing", "v").await;
    let admin = host.get("/v1/audit?kind=admin&status=error").await;
    let record = &admin.json["records"][0];
    assert_eq!(
        record["action"], "PUT /v1/connectors/{name}/config/{key}",
        "{}",
        admin.text
    );
    assert_eq!(record["connector"], "echo");
    assert_eq!(record["actor"], "sbk_00000000000000ad");
    assert_eq!(record["code"], "undeclared_setting");
}

#[tokio::test]
async fn secrets_stay_readable_across_a_master_key_rotation_and_a_restart() {
    let sandbox = sandbox().await;
    let host = TestHost::start().await;
    host.install_bundled(&sandbox).await;
    let track = r#"{"carrier":"sf-express","tracking_number":"SF1234567890"}"#;
    assert_eq!(
        host.invoke("logistics-tracking", "track", track)
            .await
            .status,
        StatusCode::OK
    );

    let before = host.get("/v1/master-key").await.json["key_id"].clone();
    let rotated = host.post_json("/v1/master-key/rotate", "").await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(rotated.json["resealed"], 2, "the two connectors' api keys");
    assert_ne!(rotated.json["key_id"], before);
    assert_eq!(
        host.invoke("logistics-tracking", "track", track)
            .await
            .status,
        StatusCode::OK
    );

    let host = host.restart().await;
    let after = host.invoke("logistics-tracking", "track", track).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.text);
    assert_eq!(
        host.get("/v1/master-key").await.json["key_id"],
        rotated.json["key_id"]
    );
}
