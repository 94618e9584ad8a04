//! The ticket system's error replies, shaped as Zendesk's:
//! `401 {"error":"Couldn't authenticate you"}`,
//! `404 {"error":"RecordNotFound","description":"Not found"}` and
//! `422 {"error":"RecordInvalid","description":"Record validation errors","details":{…}}`.
//!
//! This module owns the shapes and their statuses; which route raises which lives with the
//! routes and the request checks.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::rejection::BytesRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// Validation failures by field, each a list of descriptions, as in Zendesk's `details`.
pub(crate) type Details = BTreeMap<&'static str, Vec<String>>;

/// An error the ticket system answers with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TicketError {
    /// 401: no token, or not the account's token.
    Unauthenticated,
    /// 404: no ticket with that id.
    NotFound,
    /// 422: the record would be invalid; the details name each field at fault.
    Invalid(Details),
    /// A request that cannot be read at all (not JSON, too large), with its status.
    Unreadable(StatusCode, String),
}

impl TicketError {
    /// 422 with one description of one field.
    pub(crate) fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::Invalid(BTreeMap::from([(field, vec![description.into()])]))
    }

    /// 400 for a body that is not the JSON the route takes.
    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::Unreadable(StatusCode::BAD_REQUEST, description.into())
    }

    /// The HTTP status this error is answered with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unreadable(status, _) => *status,
        }
    }

    fn body(&self) -> Value {
        match self {
            Self::Unauthenticated => json!({"error": "Couldn't authenticate you"}),
            Self::NotFound => json!({"error": "RecordNotFound", "description": "Not found"}),
            Self::Invalid(details) => {
                let details: Map<String, Value> = details
                    .iter()
                    .map(|(field, descriptions)| {
                        let list = descriptions
                            .iter()
                            .map(|description| json!({"description": description}))
                            .collect();
                        ((*field).to_owned(), Value::Array(list))
                    })
                    .collect();
                json!({
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": details,
                })
            }
            Self::Unreadable(_, description) => {
                json!({"error": "InvalidRequest", "description": description})
            }
        }
    }
}

impl std::fmt::Display for TicketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.body())
    }
}

impl std::error::Error for TicketError {}

/// A body that cannot be read (too large, cut off) keeps axum's status.
impl From<BytesRejection> for TicketError {
    fn from(rejection: BytesRejection) -> Self {
        Self::Unreadable(rejection.status(), rejection.body_text())
    }
}

impl IntoResponse for TicketError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}
