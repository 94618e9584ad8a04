//! Liveness, readiness, and the health of the upstreams connectors call.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, AppState};

fn not_ready() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the host is still loading connectors",
    )
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: start-up finished and connectors are loaded.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.ready.load(Ordering::Acquire) {
        Ok(Json(
            json!({ "status": "ready", "connectors": state.registry.list().len() }),
        ))
    } else {
        Err(not_ready())
    }
}

/// Middleware: connector routes answer `not_ready` until start-up finished,
/// so nothing is installed, changed or called half-way through a restore.
pub async fn require_ready(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.ready.load(Ordering::Acquire) {
        next.run(request).await
    } else {
        not_ready().into_response()
    }
}

/// `GET /v1/upstreams`: the circuit breaker of every upstream host
/// connectors have called, by `host:port`.
pub async fn upstreams(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "upstreams": state.registry.runtime().services().upstreams.view() }))
}
