//! Inbound webhooks: `/v1/hooks/{connector}/{hook}` and each hook's settings.
//!
//! The host checks the caller's address and the body size before the
//! connector runs; the connector verifies the provider's signature over the
//! raw bytes and returns the reply and the events; the events are on disk
//! before the reply goes out. A refusal is answered with a stable code and
//! recorded in the audit log.

use crate::store::{AuditKind, AuditRecord};
use std::net::SocketAddr;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::connectors::{connector as connector_of, not_installed};
use super::events::{events_error, required_json};
use super::invoke::call_context;
use super::{ApiError, AppState};
use crate::events::hooks::HookPolicy;
use crate::model::{Event, HttpRequest};
use crate::names::{ConnectorName, TenantId};
use crate::registry::LoadedConnector;
use crate::registry::lifecycle::Actor;
use crate::runtime::call::CallError;
use crate::store::Appended;

/// Connector error codes that mean the provider's request was not authentic.
const UNAUTHENTIC: [&str; 4] = [
    "signature_invalid",
    "signature_missing",
    "unauthorized",
    "secret_invalid",
];

/// Headers of a connector's reply the host sets itself or must not pass on.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "content-length",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "x-request-id",
];

fn hook_not_found(connector: &str, hook: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "hook_not_found",
        format!(
            "connector `{connector}` has no webhook `{hook}`; its manifest declares the hooks it takes under [hooks]"
        ),
    )
}

/// The settings in force for `hook` of the version `loaded`.
fn policy_of(state: &AppState, loaded: &LoadedConnector, hook: &str) -> Option<HookPolicy> {
    let declared = loaded.manifest.hooks.get(hook)?;
    Some(
        state
            .events
            .hook_override(loaded.manifest.name.as_str(), hook)
            .unwrap_or_else(|| declared.clone()),
    )
}

/// `POST /v1/hooks/{connector}/{hook}` (any method): a provider's request,
/// counted in the metrics and recorded in the audit trail when the hook is
/// one the connector declares.
pub async fn receive(
    State(state): State<AppState>,
    Path((connector, hook)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let time_ms = crate::capabilities::now_ms();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |info| info.0.ip().to_string());
    let request_id = request
        .headers()
        .get(super::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let result = accept(&state, &connector, &hook, request).await;
    let declared = state
        .registry
        .get(&connector)
        .is_some_and(|loaded| loaded.manifest.hooks.contains_key(&hook));
    if declared {
        let code = result
            .as_ref()
            .map_or_else(|err| err.code.as_str(), |_| "ok");
        state.metrics.record_webhook(&connector, &hook, code);
        let error = result.as_ref().err();
        state.audit.record(AuditRecord {
            time_ms,
            kind: AuditKind::Webhook,
            actor: "provider".into(),
            action: "webhook".into(),
            connector,
            detail: format!("from {peer}"),
            operation: Some(hook),
            request_id,
            status: Some(if error.is_none() { "ok" } else { "error" }.into()),
            code: error.map(|err| err.code.clone()),
            latency_us: Some(started.elapsed().as_micros() as u64),
            output: error.map(|err| crate::audit::excerpt(&err.message)),
            ..AuditRecord::default()
        });
    }
    result
}

/// Checks, verifies and stores one provider request.
async fn accept(
    state: &AppState,
    connector: &str,
    hook: &str,
    request: Request,
) -> Result<Response, ApiError> {
    // The tenant comes from the hook's settings, never from a header: the
    // provider's signature does not cover headers a replay could change.
    let mut context = call_context(request.headers())?;
    context.tenant = TenantId::default_tenant();
    let routed = state
        .registry
        .route(connector, &context)
        .ok_or_else(|| not_installed(connector))?;
    let loaded = routed.loaded.clone();
    let policy = policy_of(state, &loaded, hook).ok_or_else(|| hook_not_found(connector, hook))?;
    if let Some(tenant) = &policy.tenant {
        context.tenant = tenant.clone();
    }
    let tenant = context.tenant.to_string();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let name = loaded.manifest.name.clone();
    if !policy.allows(peer) {
        let shown = peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "ip_not_allowed",
            format!("webhook `{hook}` of `{connector}` does not take requests from {shown}"),
        );
        reject(state, &name, &loaded, hook, &err, peer).await;
        return Err(err);
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, policy.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            let err = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "webhook `{hook}` takes bodies of at most {} bytes",
                    policy.max_body_bytes
                ),
            );
            reject(state, &name, &loaded, hook, &err, peer).await;
            return Err(err);
        }
    };
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let provider_request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        url: format!("http://{host}{}", parts.uri),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let started = std::time::Instant::now();
    let result = state
        .registry
        .runtime()
        .handle_webhook(
            &loaded.prepared,
            &loaded.grants,
            std::sync::Arc::new(context),
            hook,
            provider_request,
        )
        .await;
    let failed = result
        .as_ref()
        .err()
        .is_some_and(crate::pipeline::counts_against);
    state.registry.finish(routed, started.elapsed(), failed);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(CallError::Connector(err)) if UNAUTHENTIC.contains(&err.code.as_str()) => {
            let refused = ApiError::new(StatusCode::UNAUTHORIZED, &err.code, err.message);
            reject(state, &name, &loaded, hook, &refused, peer).await;
            return Err(refused);
        }
        Err(CallError::Connector(err)) if !err.retryable => {
            let refused = ApiError::new(StatusCode::BAD_REQUEST, &err.code, err.message);
            reject(state, &name, &loaded, hook, &refused, peer).await;
            return Err(refused);
        }
        Err(err) => return Err(err.into()),
    };
    let status = StatusCode::from_u16(outcome.response.status)
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| {
            ApiError::from(CallError::InvalidOutput(format!(
                "the webhook reply has status {}",
                outcome.response.status
            )))
        })?;
    if let Some(index) = outcome.events.iter().position(|e| e.id.is_empty()) {
        return Err(CallError::InvalidOutput(format!(
            "event {index} of the webhook has no id; use the provider's event id (or one derived from the payload) so a resend is recognised"
        ))
        .into());
    }
    let count = outcome.events.len();
    let appended = state
        .events
        .accept(name.as_str(), &tenant, outcome.events)
        .await
        .map_err(|err| match err {
            crate::events::EventsError::Invalid(reason) => {
                ApiError::from(CallError::InvalidOutput(format!(
                    "the webhook returned an invalid event: {reason}"
                )))
            }
            other => events_error(other, "invalid_event"),
        })?;
    let duplicates = appended
        .iter()
        .filter(|a| matches!(a, Appended::Duplicate(_)))
        .count();
    tracing::debug!(connector = %name, hook, events = count, duplicates, "webhook accepted");
    let mut response = (status, Body::from(outcome.response.body)).into_response();
    for (key, value) in outcome.response.headers {
        let (Ok(key), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) else {
            continue;
        };
        if !HOP_BY_HOP.contains(&key.as_str()) {
            response.headers_mut().append(key, value);
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        "x-connector-version",
        super::error::header_value(&loaded.manifest.version.to_string()),
    );
    headers.insert(
        "x-events-stored",
        super::error::header_value(&(count - duplicates).to_string()),
    );
    Ok(response)
}

/// Records a refused webhook request in the audit log.
async fn reject(
    state: &AppState,
    name: &ConnectorName,
    loaded: &LoadedConnector,
    hook: &str,
    err: &ApiError,
    peer: Option<std::net::IpAddr>,
) {
    let from = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    tracing::warn!(connector = %name, hook, code = err.code, from, "webhook refused");
    state
        .registry
        .audit(
            Actor::Webhook,
            "webhook.refused",
            name,
            Some(&loaded.manifest.version),
            format!("hook `{hook}` from {from}: {} ({})", err.code, err.message),
        )
        .await;
}

/// `GET /v1/connectors/{name}/hooks`: the hooks the active version takes,
/// with the settings in force and where they come from.
pub async fn list(
    State(state): State<AppState>,
    Path(connector): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let loaded = connector_of(&state, &connector)?;
    let hooks: Vec<Value> = loaded
        .manifest
        .hooks
        .keys()
        .map(|hook| {
            let overridden = state.events.hook_override(&connector, hook).is_some();
            json!({
                "hook": hook,
                "path": format!("/v1/hooks/{connector}/{hook}"),
                "settings": policy_of(&state, &loaded, hook),
                "source": if overridden { "operator" } else { "manifest" },
            })
        })
        .collect();
    Ok(Json(json!({ "connector": connector, "hooks": hooks })))
}

/// `PUT /v1/connectors/{name}/hooks/{hook}`: replaces the manifest's
/// allowlist and body limit for this hook.
pub async fn put(
    State(state): State<AppState>,
    Path((connector, hook)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let loaded = connector_of(&state, &connector)?;
    if !loaded.manifest.hooks.contains_key(&hook) {
        return Err(hook_not_found(&connector, &hook));
    }
    let policy: HookPolicy = required_json(
        body,
        "{\"allow_ips\": [\"203.0.113.0/24\"], \"max_body_bytes\": 65536}",
    )?;
    state
        .events
        .put_hook(&connector, &hook, policy.clone())
        .await
        .map_err(|err| events_error(err, "invalid_hook_settings"))?;
    state
        .registry
        .audit(
            Actor::Api,
            "hook.configured",
            &loaded.manifest.name,
            None,
            format!(
                "hook `{hook}`: {} allowed blocks, body limit {} bytes",
                policy.allow_ips.len(),
                policy.max_body_bytes
            ),
        )
        .await;
    Ok(Json(
        json!({ "hook": hook, "settings": policy, "source": "operator" }),
    ))
}

/// `DELETE /v1/connectors/{name}/hooks/{hook}`: back to the manifest's settings.
pub async fn reset(
    State(state): State<AppState>,
    Path((connector, hook)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let loaded = connector_of(&state, &connector)?;
    let existed = state
        .events
        .reset_hook(&connector, &hook)
        .await
        .map_err(|err| events_error(err, "invalid_hook_settings"))?;
    if !existed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "hook_settings_not_found",
            format!("hook `{hook}` of `{connector}` has no operator settings"),
        ));
    }
    state
        .registry
        .audit(
            Actor::Api,
            "hook.reset",
            &loaded.manifest.name,
            None,
            format!("hook `{hook}` uses the manifest's settings again"),
        )
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of an event posted to `POST /v1/events`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectedEvent {
    /// The caller's id for it, used to drop a repeat; a UUID when absent.
    #[serde(default)]
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// What it is about.
    #[serde(default)]
    pub subject: Option<String>,
    /// Its payload.
    #[serde(default)]
    pub data: Value,
}

impl From<InjectedEvent> for Event {
    fn from(event: InjectedEvent) -> Self {
        Self {
            id: event.id,
            kind: event.kind,
            subject: event.subject,
            time_ms: 0,
            data: event.data.to_string(),
        }
    }
}
