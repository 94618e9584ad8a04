//! Easemob's reply envelope: `{"status":"OK"}`, `{"status":"OK","entity":{…}}`, or
//! `{"status":"FAIL","errorCode":"API_…","errorDescription":"…"}`.
//!
//! This module owns the error codes, their descriptions and the HTTP status each is answered
//! with; which route raises which failure is up to the routes.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::{Value, json};

/// A failure Easemob answers with; each is one documented `errorCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fail {
    /// `API_001` (400): a parameter is missing, blank, of the wrong type or not a single value.
    InvalidParam,
    /// `API_002` (401): the `Kefu-Token` header is missing, unknown or expired.
    InvalidToken,
    /// `API_003` (400): the tenant id names no tenant.
    UnknownTenant,
    /// `API_004` (401): `clientId` or `secretId` is wrong.
    BadCredentials,
    /// `API_120` (400): the binding exists already, names an unknown agent, or (on delete)
    /// does not exist.
    BindFailed,
}

impl Fail {
    /// The documented `errorCode`.
    pub(super) fn code(self) -> &'static str {
        match self {
            Fail::InvalidParam => "API_001",
            Fail::InvalidToken => "API_002",
            Fail::UnknownTenant => "API_003",
            Fail::BadCredentials => "API_004",
            Fail::BindFailed => "API_120",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Fail::InvalidParam => "param is invalid,please check your param is correct!",
            Fail::InvalidToken => "accessToken is invalid or expired",
            Fail::UnknownTenant => "tenantId is invalid",
            Fail::BadCredentials => "clientId or secretId is invalid",
            Fail::BindFailed => "business bind operation failed",
        }
    }

    /// The HTTP status the failure is answered with.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Fail::InvalidToken | Fail::BadCredentials => StatusCode::UNAUTHORIZED,
            Fail::InvalidParam | Fail::UnknownTenant | Fail::BindFailed => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "FAIL",
            "errorCode": self.code(),
            "errorDescription": self.description(),
        });
        (self.status(), Json(body)).into_response()
    }
}

/// `{"status":"OK"}`.
pub(super) fn ok() -> Json<Value> {
    Json(json!({ "status": "OK" }))
}

/// `{"status":"OK","entity":<entity>}`.
pub(super) fn ok_with<T: Serialize>(entity: &T) -> Json<Value> {
    Json(json!({ "status": "OK", "entity": entity }))
}
