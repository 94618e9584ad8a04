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

use super::error::header_value;
use super::{ApiError, AppState, REQUEST_ID};
use crate::invoke::InvokeOutput;
use crate::model::CallContext;
use crate::names::TenantId;

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

/// The call context described by the request's headers.
pub fn call_context(headers: &HeaderMap) -> Result<CallContext, ApiError> {
    let tenant = match optional_header(headers, "x-tenant")? {
        None => TenantId::default_tenant(),
        Some(t) => TenantId::parse(&t).map_err(|err| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_tenant", err.to_string())
        })?,
    };
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
    Path((name, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(body_error)?;
    let context = call_context(&headers)?;
    let result = crate::invoke::invoke(&state.registry, &name, &operation, context, &body).await?;
    Ok(output_response(result))
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

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextFields {
    tenant: Option<String>,
    agent: Option<String>,
    channel: Option<String>,
    customer: Option<String>,
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
    let mut context = call_context(&headers)?;
    let fields = envelope.context;
    if let Some(tenant) = context_field("tenant", fields.tenant)? {
        context.tenant = TenantId::parse(&tenant).map_err(|err| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_tenant", err.to_string())
        })?;
    }
    for (name, value, slot) in [
        ("agent", fields.agent, &mut context.agent),
        ("channel", fields.channel, &mut context.channel),
        ("customer", fields.customer, &mut context.customer),
    ] {
        if let Some(value) = context_field(name, value)? {
            *slot = Some(value);
        }
    }
    let input = envelope.input.to_string();
    let result = crate::invoke::invoke(
        &state.registry,
        &envelope.connector,
        &envelope.operation,
        context,
        input.as_bytes(),
    )
    .await?;
    Ok(output_response(result))
}

fn output_response(result: InvokeOutput) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        result.output,
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
    response
}
