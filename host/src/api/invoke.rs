//! `POST /v1/connectors/{name}/operations/{operation}`.
//!
//! The body is the operation's JSON input. Who the call is for comes from
//! headers: `X-Tenant` (default `default`), `X-Agent`, `X-Channel` and
//! `X-Customer`. The answer is the operation's JSON output with the serving
//! version in `X-Connector-Version`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::header_value;
use super::{ApiError, AppState, REQUEST_ID};
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
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        result.output,
    )
        .into_response();
    response.headers_mut().insert(
        "x-connector-version",
        header_value(&result.version.to_string()),
    );
    Ok(response)
}
