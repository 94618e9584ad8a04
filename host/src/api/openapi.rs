//! `GET /v1/openapi.json`: an OpenAPI 3.1 document of the API as it is now.
//!
//! The fixed routes come from [`ROUTES`] (a test checks each is served); each
//! installed connector adds one path per operation, with the JSON Schemas its
//! `describe()` published. Embedded schemas get an `$id` so their internal
//! `$ref`s resolve inside themselves.

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::AppState;
use crate::registry::LoadedConnector;

/// One fixed route: method, path, operation id, summary, request body kind.
pub struct Route {
    /// HTTP method in lower case.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// OpenAPI operationId.
    pub id: &'static str,
    /// One line.
    pub summary: &'static str,
    /// `json`, `setting`, `multipart` or nothing.
    pub body: Option<&'static str>,
}

/// The fixed routes of the API.
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/healthz",
        id: "healthz",
        summary: "The process is up",
        body: None,
    },
    Route {
        method: "get",
        path: "/readyz",
        id: "readyz",
        summary: "Start-up finished and connectors are loaded",
        body: None,
    },
    Route {
        method: "get",
        path: "/metrics",
        id: "metrics",
        summary: "Calls, errors by code, latency histograms, webhooks, deliveries, breakers, cache and pool, in the Prometheus text format",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/alerts",
        id: "listAlerts",
        summary: "The alert rules, the alerts firing now and those resolved recently",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/stats",
        id: "stats",
        summary: "Each connector's deployment and calls: totals since start, the alert window, and minute by minute (`minutes`, 1 to 60, default 30)",
        body: None,
    },
    Route {
        method: "get",
        path: "/ui",
        id: "dashboard",
        summary: "The operator dashboard (an HTML page; its data comes from the API with the key given in the page)",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/openapi.json",
        id: "openapi",
        summary: "This document",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/connectors",
        id: "listConnectors",
        summary: "List installed connectors",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/connectors",
        id: "installConnector",
        summary: "Install a connector version (multipart: manifest, component, optional signature; ?activate=false stages it)",
        body: Some("multipart"),
    },
    Route {
        method: "get",
        path: "/v1/connectors/{name}",
        id: "describeConnector",
        summary: "Describe a connector with its operations' schemas",
        body: None,
    },
    Route {
        method: "delete",
        path: "/v1/connectors/{name}",
        id: "removeConnector",
        summary: "Remove a connector",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/connectors/{name}/config",
        id: "listConfig",
        summary: "Config keys with their values",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/connectors/{name}/config/{key}",
        id: "setConfig",
        summary: "Set a config value",
        body: Some("setting"),
    },
    Route {
        method: "delete",
        path: "/v1/connectors/{name}/config/{key}",
        id: "deleteConfig",
        summary: "Reset a config value to its default",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/connectors/{name}/secrets",
        id: "listSecrets",
        summary: "Secret names and whether each is set",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/connectors/{name}/secrets/{key}",
        id: "setSecret",
        summary: "Set a secret (write-only)",
        body: Some("setting"),
    },
    Route {
        method: "delete",
        path: "/v1/connectors/{name}/secrets/{key}",
        id: "deleteSecret",
        summary: "Remove a secret",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/connectors/{name}/operations/{operation}",
        id: "invoke",
        summary: "Invoke an operation with a JSON input",
        body: Some("json"),
    },
    Route {
        method: "post",
        path: "/v1/invoke",
        id: "invokeEnvelope",
        summary: "Invoke an operation named in the body, with the call context as body fields",
        body: Some("json"),
    },
    Route {
        method: "post",
        path: "/v1/batch",
        id: "batch",
        summary: "Up to 100 calls in one request, each with its own result",
        body: Some("json"),
    },
    Route {
        method: "get",
        path: "/v1/connectors/{name}/pipeline",
        id: "pipeline",
        summary: "Circuit breaker, rate limits, calls in flight and cache of a connector",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/connectors/{name}/pipeline",
        id: "setPipeline",
        summary: "Override the manifest's [pipeline] settings (same shape, as JSON)",
        body: Some("json"),
    },
    Route {
        method: "delete",
        path: "/v1/connectors/{name}/pipeline",
        id: "resetPipeline",
        summary: "Back to the manifest's [pipeline] settings",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/upstreams",
        id: "upstreams",
        summary: "The circuit breaker of every upstream host connectors have called",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/connectors/{name}/versions",
        id: "listVersions",
        summary: "Installed versions with state and call counts, the deployment and the canary",
        body: None,
    },
    Route {
        method: "delete",
        path: "/v1/connectors/{name}/versions/{version}",
        id: "removeVersion",
        summary: "Remove a version that serves nothing",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/connectors/{name}/versions/{version}/activate",
        id: "activateVersion",
        summary: "Make a version active; a running canary ends",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/connectors/{name}/rollback",
        id: "rollback",
        summary: "Make the previous version active again",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/connectors/{name}/canary",
        id: "startCanary",
        summary: "Start or change a canary by weight and routing keys",
        body: Some("json"),
    },
    Route {
        method: "post",
        path: "/v1/connectors/{name}/canary/promote",
        id: "promoteCanary",
        summary: "Make the canary's candidate active",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/connectors/{name}/canary/abort",
        id: "abortCanary",
        summary: "End the canary (optional body: {\"reason\": \"...\"})",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/audit",
        id: "audit",
        summary: "The audit log of lifecycle changes (?connector=&from=&limit=)",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/hooks/{connector}/{hook}",
        id: "receiveWebhook",
        summary: "A provider's webhook (any method); the connector verifies it, the events are stored before the reply",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/connectors/{name}/hooks",
        id: "listHooks",
        summary: "The hooks the active version takes, with the settings in force",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/connectors/{name}/hooks/{hook}",
        id: "setHook",
        summary: "Replace a hook's allowlist and body limit",
        body: Some("json"),
    },
    Route {
        method: "delete",
        path: "/v1/connectors/{name}/hooks/{hook}",
        id: "resetHook",
        summary: "Back to the manifest's hook settings",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/events",
        id: "listEvents",
        summary: "The event log (?from=&limit=&kind=&subject=&source=&tenant=)",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/events",
        id: "injectEvent",
        summary: "Store an event ({\"id\"?, \"kind\", \"subject\"?, \"data\"})",
        body: Some("json"),
    },
    Route {
        method: "get",
        path: "/v1/events/{sequence}",
        id: "getEvent",
        summary: "One event and its deliveries",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/rules",
        id: "listRules",
        summary: "Every rule",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/rules",
        id: "createRule",
        summary: "Create a rule",
        body: Some("json"),
    },
    Route {
        method: "get",
        path: "/v1/rules/{id}",
        id: "getRule",
        summary: "One rule",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/rules/{id}",
        id: "putRule",
        summary: "Replace a rule",
        body: Some("json"),
    },
    Route {
        method: "delete",
        path: "/v1/rules/{id}",
        id: "deleteRule",
        summary: "Remove a rule",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/subscriptions",
        id: "listSubscriptions",
        summary: "Every outbound subscription (without secrets)",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/subscriptions",
        id: "createSubscription",
        summary: "Create a subscription; the answer shows its secret once",
        body: Some("json"),
    },
    Route {
        method: "get",
        path: "/v1/subscriptions/{id}",
        id: "getSubscription",
        summary: "One subscription",
        body: None,
    },
    Route {
        method: "put",
        path: "/v1/subscriptions/{id}",
        id: "putSubscription",
        summary: "Replace a subscription",
        body: Some("json"),
    },
    Route {
        method: "delete",
        path: "/v1/subscriptions/{id}",
        id: "deleteSubscription",
        summary: "Remove a subscription",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/subscriptions/{id}/replay",
        id: "replay",
        summary: "Deliver again one event or a time range",
        body: Some("json"),
    },
    Route {
        method: "get",
        path: "/v1/deliveries",
        id: "listDeliveries",
        summary: "Deliveries (?from=&limit=&state=&target=&event=)",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/deliveries/{id}",
        id: "getDelivery",
        summary: "One delivery with its attempts",
        body: None,
    },
    Route {
        method: "get",
        path: "/v1/dlq",
        id: "deadLetters",
        summary: "The dead-letter queue",
        body: None,
    },
    Route {
        method: "post",
        path: "/v1/dlq/{id}/retry",
        id: "retryDeadLetter",
        summary: "Back into the queue, due now",
        body: None,
    },
    Route {
        method: "delete",
        path: "/v1/dlq/{id}",
        id: "discardDeadLetter",
        summary: "Discard a dead letter",
        body: None,
    },
];

fn error_response() -> Value {
    json!({
        "description": "An error with a stable code",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

fn fixed_operation(route: &Route) -> Value {
    let mut op = json!({
        "operationId": route.id,
        "summary": route.summary,
        "parameters": path_parameters(route.path),
        "responses": { "2XX": { "description": "Success" }, "4XX": error_response(), "5XX": error_response() },
    });
    let body = match route.body {
        Some("multipart") => json!({ "multipart/form-data": { "schema": {
            "type": "object", "required": ["manifest", "component"],
            "properties": { "manifest": { "type": "string" }, "component": { "type": "string", "contentMediaType": "application/wasm" } }
        } } }),
        Some("setting") => json!({ "application/json": { "schema": {
            "type": "object", "required": ["value"], "additionalProperties": false, "properties": { "value": { "type": "string" } }
        } } }),
        Some(_) => json!({ "application/json": { "schema": {} } }),
        None => return op,
    };
    op["requestBody"] = json!({ "required": true, "content": body });
    op
}

fn with_id(schema: &Value, id: String) -> Value {
    match schema {
        Value::Object(map) => {
            let mut map = map.clone();
            map.entry("$id").or_insert(Value::String(id));
            Value::Object(map)
        }
        other => other.clone(),
    }
}

fn context_headers() -> Vec<Value> {
    ["X-Tenant", "X-Agent", "X-Channel", "X-Customer"]
        .iter()
        .map(|name| json!({ "name": name, "in": "header", "required": false, "schema": { "type": "string" } }))
        .collect()
}

fn connector_paths(connector: &LoadedConnector, paths: &mut Map<String, Value>) {
    let name = connector.manifest.name.as_str();
    for op in connector.operations() {
        let urn = format!("urn:switchboard:{name}:{}", op.info.name);
        let operation = json!({
            "operationId": format!("{name}.{}", op.info.name),
            "summary": op.info.description,
            "tags": [name],
            "parameters": context_headers(),
            "requestBody": { "required": true, "content": { "application/json": { "schema": with_id(&op.input_schema, format!("{urn}:input")) } } },
            "responses": {
                "200": { "description": "The operation's output", "content": { "application/json": { "schema": with_id(&op.output_schema, format!("{urn}:output")) } } },
                "4XX": error_response(),
                "5XX": error_response(),
            },
            "x-idempotent": op.info.idempotent,
        });
        paths.insert(
            format!("/v1/connectors/{name}/operations/{}", op.info.name),
            json!({ "post": operation }),
        );
    }
}

/// Builds the document for the connectors installed now.
pub fn build(state: &AppState) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path).or_insert_with(|| json!({}));
        entry[route.method] = fixed_operation(route);
    }
    for connector in state.registry.list() {
        connector_paths(&connector, &mut paths);
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Switchboard", "version": env!("CARGO_PKG_VERSION"),
                  "description": "Contact-center connectors as sandboxed WebAssembly components." },
        "paths": paths,
        "components": { "schemas": { "Error": {
            "type": "object", "required": ["error"],
            "properties": { "error": {
                "type": "object", "required": ["code", "message", "request_id"],
                "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" },
                    "request_id": { "type": "string" }, "retryable": { "type": "boolean" }
                }
            } }
        } } }
    })
}

/// `GET /v1/openapi.json`.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(build(&state))
}
