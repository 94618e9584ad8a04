//! `POST /v1/connectors/{name}/operations/{operation}` and `POST /v1/invoke`.
//!
//! On the first, the body is the operation's JSON input and who the call is
//! for comes from headers: `X-Tenant` (default `default`), `X-Agent`,
//! `X-Channel` and `X-Customer`. The second takes an envelope for callers
//! that can only shape a body (IVR flows, low-code tools):
//! `{"connector", "operation", "input", "context": {"tenant", "agent",
//! "channel", "customer"}}`, where each context field given overrides its
//! header. The answer is the operation's JSON output with the serving version
//! in `X-Connector-Version` and, while a canary runs, `X-Connector-Route:
//! active` or `canary`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use axum::Extension;

use super::auth::tenant_of_call;
use super::error::header_value;
use super::{ApiError, AppState, REQUEST_ID};
use crate::auth::Caller;
use crate::invoke::{CallServices, InvokeOutput, InvokeRequest};
use crate::model::CallContext;
use crate::names::TenantId;
use crate::pipeline::Served;
use crate::pipeline::idempotency::{Claim, ClaimError, InvalidKey};
use crate::store::IdempotentResult;

/// Longest context header value kept, in bytes.
const MAX_CONTEXT_VALUE: usize = 256;

fn optional_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .ok()
        .filter(|v| v.len() <= MAX_CONTEXT_VALUE)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                format!(
                    "header {name} must be printable ASCII of at most {MAX_CONTEXT_VALUE} bytes"
                ),
            )
        })?;
    Ok(Some(value.to_owned()))
}

fn parse_tenant(tenant: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(tenant)
        .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, "invalid_tenant", err.to_string()))
}

fn header_tenant(headers: &HeaderMap) -> Result<Option<TenantId>, ApiError> {
    optional_header(headers, "x-tenant")?
        .as_deref()
        .map(parse_tenant)
        .transpose()
}

/// The call context described by the request's headers (`X-Tenant` or
/// `default`), for requests without a caller: webhooks.
pub fn call_context(headers: &HeaderMap) -> Result<CallContext, ApiError> {
    let tenant = header_tenant(headers)?.unwrap_or_else(TenantId::default_tenant);
    context_for(headers, tenant)
}

/// The call context of `caller`'s request: its tenant is the caller's own
/// unless `X-Tenant` names one the caller may act for.
pub fn caller_context(headers: &HeaderMap, caller: &Caller) -> Result<CallContext, ApiError> {
    let tenant = tenant_of_call(caller, header_tenant(headers)?)?;
    context_for(headers, tenant)
}

fn context_for(headers: &HeaderMap, tenant: TenantId) -> Result<CallContext, ApiError> {
    Ok(CallContext {
        request_id: optional_header(headers, REQUEST_ID.as_str())?.unwrap_or_default(),
        tenant,
        agent: optional_header(headers, "x-agent")?,
        channel: optional_header(headers, "x-channel")?,
        customer: optional_header(headers, "x-customer")?,
    })
}

/// Maps a failure to read the body to the envelope.
pub fn body_error(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "payload_too_large",
            "the request body is larger than this route accepts",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            rejection.body_text(),
        )
    }
}

/// Invokes an operation.
pub async fn invoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let context = caller_context(&headers, &caller)?;
    let key = idempotency_key(&headers)?;
    let call = Call {
        caller: &caller,
        connector: &name,
        operation: &operation,
        context,
        input: &body,
    };
    answer(&state, call, key.as_deref()).await
}

/// One call as the API received it.
pub struct Call<'a> {
    /// Who made it.
    pub caller: &'a Caller,
    /// The connector called.
    pub connector: &'a str,
    /// Its operation.
    pub operation: &'a str,
    /// Who the call is for.
    pub context: CallContext,
    /// The JSON input.
    pub input: &'a [u8],
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    headers
        .get("idempotency-key")
        .map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .map_err(|_| invalid_key(&InvalidKey))
        })
        .transpose()
}

fn invalid_key(err: &InvalidKey) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_idempotency_key",
        err.to_string(),
    )
}

/// Runs one call, honouring an idempotency key: a repeat gets the first
/// answer again, marked `Idempotent-Replayed: true`.
pub async fn answer(
    state: &AppState,
    call: Call<'_>,
    key: Option<&str>,
) -> Result<Response, ApiError> {
    let Some(key) = key else {
        return run(state, call, false).await.map(output_response);
    };
    let request = fingerprint(&call.context, call.input);
    let claim = state
        .idempotency
        .claim(
            call.context.tenant.as_str(),
            call.connector,
            call.operation,
            key,
            &request,
        )
        .await
        .map_err(|err| match err {
            ClaimError::InvalidKey(invalid) => invalid_key(&invalid),
            ClaimError::Store(err) => err.into(),
        })?;
    let pending = match claim {
        Claim::Fresh(pending) => pending,
        Claim::Replay(stored) => return replay(stored),
        Claim::Mismatch => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with another request body; use a new key for a new request",
            ));
        }
        Claim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_progress",
                "a request with this Idempotency-Key is still running; retry when it has finished",
            )
            .retry_after(std::time::Duration::from_secs(1)));
        }
    };
    let result = run(state, call, true).await;
    let kept = match &result {
        // A fallback stands in for the operation; the key waits for a real answer.
        Ok(output) if output.served == Served::Fallback => None,
        Ok(output) => Some((
            200,
            output.output.to_string(),
            Some(output.version.to_string()),
        )),
        Err(err) => Some((err.status.as_u16(), stored_error(err), None)),
    };
    if let Some((status, body, version)) = kept
        && let Err(err) = state
            .idempotency
            .complete(pending, status, body, version)
            .await
    {
        tracing::error!(error = %err, "could not keep the answer for its idempotency key");
    }
    result.map(output_response)
}

/// What makes a call the same call: its context and its input.
fn fingerprint(context: &CallContext, input: &[u8]) -> Vec<u8> {
    let mut request = serde_json::json!([context.agent, context.channel, context.customer,])
        .to_string()
        .into_bytes();
    request.push(0);
    request.extend_from_slice(input);
    request
}

/// Runs one call through the pipeline, without an idempotency key.
pub async fn run(
    state: &AppState,
    call: Call<'_>,
    idempotency_key: bool,
) -> Result<InvokeOutput, ApiError> {
    let request = InvokeRequest {
        actor: &call.caller.id,
        connector: call.connector,
        operation: call.operation,
        context: call.context,
        input: call.input,
        idempotency_key,
    };
    let services = CallServices {
        registry: &state.registry,
        pipelines: &state.pipelines,
        metrics: &state.metrics,
        audit: &state.audit,
    };
    Ok(crate::invoke::invoke(services, request).await?)
}

/// An error as kept for replays: its code, message and retryability.
fn stored_error(err: &ApiError) -> String {
    serde_json::json!({
        "code": err.code,
        "message": err.message,
        "retryable": err.retryable,
    })
    .to_string()
}

fn replay(stored: IdempotentResult) -> Result<Response, ApiError> {
    if stored.status == 200 {
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            stored.body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(version) = &stored.version {
            headers.insert("x-connector-version", header_value(version));
        }
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(response);
    }
    let error: serde_json::Value = serde_json::from_str(&stored.body).unwrap_or_default();
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    let mut replayed = ApiError::new(
        status,
        error["code"].as_str().unwrap_or("replayed_error"),
        error["message"].as_str().unwrap_or_default(),
    );
    replayed.retryable = error["retryable"].as_bool();
    Err(replayed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    connector: String,
    operation: String,
    input: serde_json::Value,
    #[serde(default)]
    context: ContextFields,
}

/// Call-context fields given in a body; each overrides its header.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextFields {
    tenant: Option<String>,
    agent: Option<String>,
    channel: Option<String>,
    customer: Option<String>,
}

impl ContextFields {
    /// Writes the fields given over `context`; a tenant must be one `caller` may act for.
    pub fn apply(self, context: &mut CallContext, caller: &Caller) -> Result<(), ApiError> {
        if let Some(tenant) = context_field("tenant", self.tenant)? {
            context.tenant = tenant_of_call(caller, Some(parse_tenant(&tenant)?))?;
        }
        for (name, value, slot) in [
            ("agent", self.agent, &mut context.agent),
            ("channel", self.channel, &mut context.channel),
            ("customer", self.customer, &mut context.customer),
        ] {
            if let Some(value) = context_field(name, value)? {
                *slot = Some(value);
            }
        }
        Ok(())
    }
}

const ENVELOPE_SHAPE: &str = r#"{"connector": "...", "operation": "...", "input": {...}, "context": {"tenant", "agent", "channel", "customer"}}"#;

fn context_field(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > MAX_CONTEXT_VALUE => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_context",
            format!("context.{name} must be 1 to {MAX_CONTEXT_VALUE} bytes"),
        )),
        other => Ok(other),
    }
}

/// Invokes the operation an envelope names, with the context in its fields.
pub async fn invoke_envelope(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("send {ENVELOPE_SHAPE}: {err}"),
        )
    })?;
    let mut context = caller_context(&headers, &caller)?;
    envelope.context.apply(&mut context, &caller)?;
    let input = envelope.input.to_string();
    let key = idempotency_key(&headers)?;
    let call = Call {
        caller: &caller,
        connector: &envelope.connector,
        operation: &envelope.operation,
        context,
        input: input.as_bytes(),
    };
    answer(&state, call, key.as_deref()).await
}

fn output_response(result: InvokeOutput) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        String::from(&*result.output),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        "x-connector-version",
        header_value(&result.version.to_string()),
    );
    if let Some(side) = result.side {
        headers.insert("x-connector-route", HeaderValue::from_static(side.as_str()));
    }
    match result.served {
        Served::Ran {
            attempts,
            cacheable,
        } => {
            if cacheable {
                headers.insert("x-cache", HeaderValue::from_static("miss"));
            }
            if attempts > 1 {
                headers.insert("x-attempts", header_value(&attempts.to_string()));
            }
        }
        Served::Cached => {
            headers.insert("x-cache", HeaderValue::from_static("hit"));
        }
        Served::Fallback => {
            headers.insert("x-fallback", HeaderValue::from_static("circuit_open"));
        }
    }
    response
}
