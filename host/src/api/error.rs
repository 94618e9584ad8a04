//! The API's one error type and its JSON envelope.
//!
//! Every error response is `{"error": {"code", "message", "request_id"}}`
//! (plus `retryable` for errors a connector reported). `code` is stable and
//! machine-readable; the table of codes is in `docs/api.md`. Handlers return
//! [`ApiError`]; the [`envelope`] middleware adds the request id and turns
//! any other error response (an unknown route, a body over the limit, a
//! panic) into the same shape.

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::invoke::InvokeError;
use crate::pipeline::PipelineError;
use crate::pipeline::rate_limit::Refused;
use crate::registry::lifecycle::LifecycleError;
use crate::registry::signature::SignatureError;
use crate::registry::{InstallError, SettingError};
use crate::runtime::LoadError;
use crate::runtime::call::CallError;
use crate::store::StoreError;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: String,
    /// What happened and what to do, for people.
    pub message: String,
    /// For connector-reported errors: whether retrying may help.
    pub retryable: Option<bool>,
    /// When to try again, sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<std::time::Duration>,
    /// What went wrong inside the host: logged with the request id, never sent.
    detail: Option<String>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            retryable: None,
            retry_after: None,
            detail: None,
        }
    }

    /// 400 `invalid_query`: a query parameter is malformed.
    pub fn invalid_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", message)
    }

    /// 404 for a path that names nothing.
    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "no such route; see /v1/openapi.json",
        )
    }

    /// A host failure; the details are in the log under the request id, not
    /// in the answer.
    pub fn internal(detail: &str) -> Self {
        Self {
            detail: Some(detail.to_owned()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the host failed; the request id identifies it in the log",
            )
        }
    }

    fn body(&self, request_id: &str) -> serde_json::Value {
        let mut error =
            json!({ "code": self.code, "message": self.message, "request_id": request_id });
        if let Some(retryable) = self.retryable {
            error["retryable"] = json!(retryable);
        }
        json!({ "error": error })
    }

    /// This error with a `Retry-After` of `after`.
    pub fn retry_after(self, after: std::time::Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..self
        }
    }

    fn render(&self, request_id: &str) -> Response {
        let mut response = (self.status, axum::Json(self.body(request_id))).into_response();
        if let Some(after) = self.retry_after {
            let seconds = after.as_millis().div_ceil(1000).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header_value(&seconds.to_string()));
        }
        response.extensions_mut().insert(self.clone());
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.render("")
    }
}

/// The error for an error response produced outside our handlers.
fn for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::route_not_found(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "this route does not accept that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "payload_too_large",
            "the request body is larger than this route accepts",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "the request's Content-Type is not accepted here",
        ),
        s if s.is_client_error() => {
            ApiError::new(status, "bad_request", "the request could not be understood")
        }
        _ => ApiError::internal("an error response without a code"),
    }
}

/// Middleware: renders every error response as the JSON envelope with the request id.
pub async fn envelope(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if response
        .extensions()
        .get::<super::auth::OAuthError>()
        .is_some()
    {
        return response;
    }
    if let Some(err) = response.extensions().get::<ApiError>() {
        log_failure(&request_id, err);
        return with_headers_of(err.render(&request_id), &response);
    }
    if status.is_client_error() || status.is_server_error() {
        return with_headers_of(for_status(status).render(&request_id), &response);
    }
    response
}

/// A host bug is an error; a connector that failed or ran out of time is a
/// warning; a caller's mistake and `not_ready` (expected during start-up) are
/// not logged.
fn log_failure(request_id: &str, err: &ApiError) {
    let (code, message) = (err.code.as_str(), err.message.as_str());
    if err.status == StatusCode::INTERNAL_SERVER_ERROR {
        let detail = err.detail.as_deref().unwrap_or_default();
        tracing::error!(request_id, code, message, detail, "request failed");
    } else if err.status.is_server_error() && code != "not_ready" {
        tracing::warn!(request_id, code, message, "request failed");
    }
}

fn with_headers_of(mut rendered: Response, original: &Response) -> Response {
    for (name, value) in original.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
}

/// A panic caught by the panic layer becomes a 500 in the envelope.
pub fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
}

impl From<CallError> for ApiError {
    fn from(err: CallError) -> Self {
        let status = match &err {
            CallError::Connector(e) => {
                let status = if e.retryable {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                return Self {
                    retryable: Some(e.retryable),
                    ..Self::new(status, &e.code, e.message.clone())
                };
            }
            CallError::Internal(detail) => return ApiError::internal(detail),
            CallError::DeadlineExceeded { .. } => StatusCode::GATEWAY_TIMEOUT,
            CallError::CapacityExhausted => StatusCode::SERVICE_UNAVAILABLE,
            CallError::VersionUnloaded => {
                return Self {
                    retryable: Some(true),
                    ..Self::new(StatusCode::SERVICE_UNAVAILABLE, err.code(), err.to_string())
                };
            }
            CallError::LimitExceeded(_)
            | CallError::Trapped(_)
            | CallError::OutputTooLarge { .. }
            | CallError::InvalidOutput(_) => StatusCode::BAD_GATEWAY,
        };
        Self::new(status, err.code(), err.to_string())
    }
}

impl From<InvokeError> for ApiError {
    fn from(err: InvokeError) -> Self {
        let message = err.to_string();
        let code = err.code();
        match &err {
            InvokeError::ConnectorNotFound(_) | InvokeError::OperationNotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, code, message)
            }
            InvokeError::InvalidJson(_) => Self::new(StatusCode::BAD_REQUEST, code, message),
            InvokeError::SchemaViolation { .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            InvokeError::Pipeline(PipelineError::Refused(Refused::RateLimited {
                retry_after,
                ..
            })) => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_after(*retry_after)
            }
            InvokeError::Pipeline(PipelineError::Refused(Refused::Overloaded { .. })) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
                    .retry_after(std::time::Duration::from_secs(1))
            }
            InvokeError::Pipeline(PipelineError::CircuitOpen { retry_after, .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message).retry_after(*retry_after)
            }
            InvokeError::Pipeline(PipelineError::Call { error }) => error.clone().into(),
        }
    }
}

impl From<InstallError> for ApiError {
    fn from(err: InstallError) -> Self {
        let status = match &err {
            InstallError::Load(LoadError::Internal(detail))
            | InstallError::DescribeFailed(CallError::Internal(detail)) => {
                return ApiError::internal(detail);
            }
            InstallError::Manifest(_) | InstallError::Load(LoadError::InvalidComponent(_)) => {
                StatusCode::BAD_REQUEST
            }
            InstallError::DescribeFailed(CallError::CapacityExhausted) | InstallError::Store(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Self::new(status, err.code(), err.to_string())
    }
}

impl From<LifecycleError> for ApiError {
    fn from(err: LifecycleError) -> Self {
        let message = err.to_string();
        let (status, code) = match err {
            LifecycleError::UnknownConnector(_) => (StatusCode::NOT_FOUND, "connector_not_found"),
            LifecycleError::UnknownVersion { .. } => (StatusCode::NOT_FOUND, "version_not_found"),
            LifecycleError::VersionConflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            LifecycleError::VersionInUse { .. } => (StatusCode::CONFLICT, "version_in_use"),
            LifecycleError::NoPreviousVersion(_) => (StatusCode::CONFLICT, "no_previous_version"),
            LifecycleError::NoCanary(_) => (StatusCode::CONFLICT, "no_canary"),
            LifecycleError::CanaryTripped(_) => (StatusCode::CONFLICT, "canary_tripped"),
            LifecycleError::InvalidVersion(_) => (StatusCode::BAD_REQUEST, "invalid_version"),
            LifecycleError::InvalidCanary(_) => (StatusCode::BAD_REQUEST, "invalid_canary"),
            LifecycleError::Signature(SignatureError::Malformed(_)) => {
                (StatusCode::BAD_REQUEST, "signature_malformed")
            }
            LifecycleError::Signature(err) => (StatusCode::FORBIDDEN, err.code()),
            LifecycleError::Install(err) => return err.into(),
            LifecycleError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        };
        Self::new(status, code, message)
    }
}

impl From<SettingError> for ApiError {
    fn from(err: SettingError) -> Self {
        let message = err.to_string();
        match err {
            SettingError::UnknownConnector(_) => {
                Self::new(StatusCode::NOT_FOUND, "connector_not_found", message)
            }
            SettingError::Undeclared { .. } => {
                Self::new(StatusCode::BAD_REQUEST, "undeclared_setting", message)
            }
            SettingError::Store(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                message,
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            err.to_string(),
        )
    }
}

/// Header value for a plain string known to be valid.
pub fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
