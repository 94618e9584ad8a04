//! Versions and deployments: list, activate, roll back, canary, promote,
//! abort, remove a version; and the audit log of those changes.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::events::required_json;
use super::invoke::body_error;
use super::{ApiError, AppState};
use crate::registry::canary::FULL_WEIGHT_BP;
use crate::registry::lifecycle::{Actor, CanarySpec};
use crate::registry::view::DeploymentView;

/// Parses a JSON body; an empty body is `T::default()`.
fn json_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let body = body.map_err(body_error)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    required_json(Ok(body), shape)
}

/// `GET /v1/connectors/{name}/versions`: every version with its state and
/// counters, the active and previous version, and the canary.
pub async fn versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(state.registry.view(&name)?))
}

/// `POST /v1/connectors/{name}/versions/{version}/activate`.
pub async fn activate(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(
        state.registry.activate(&name, &version, Actor::Api).await?,
    ))
}

/// `DELETE /v1/connectors/{name}/versions/{version}`: only a version that
/// serves nothing.
pub async fn remove_version(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .registry
        .remove_version(&name, &version, Actor::Api)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/connectors/{name}/rollback`: the previous version becomes active.
pub async fn rollback(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(state.registry.rollback(&name, Actor::Api).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanaryBody {
    version: Option<String>,
    #[serde(default)]
    weight_percent: f64,
    #[serde(default)]
    agents: BTreeSet<String>,
    #[serde(default)]
    channels: BTreeSet<String>,
    #[serde(default)]
    tenants: BTreeSet<String>,
}

const CANARY_SHAPE: &str =
    r#"{"version": "2.0.0", "weight_percent": 10, "agents": [], "channels": [], "tenants": []}"#;

/// `PUT /v1/connectors/{name}/canary`: starts a canary or changes the running one.
pub async fn put_canary(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeploymentView>, ApiError> {
    let body: CanaryBody = json_body(body, CANARY_SHAPE)?;
    let invalid =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_canary", message);
    let version = body
        .version
        .ok_or_else(|| invalid(format!("`version` is required: send {CANARY_SHAPE}")))?;
    let version = version
        .parse()
        .map_err(|err| invalid(format!("`{version}` is not a semantic version: {err}")))?;
    if !(0.0..=100.0).contains(&body.weight_percent) {
        return Err(invalid("weight_percent must be between 0 and 100".into()));
    }
    let weight_bp = (body.weight_percent * 100.0).round() as u16;
    let spec = CanarySpec {
        version,
        weight_bp: weight_bp.min(FULL_WEIGHT_BP),
        agents: body.agents,
        channels: body.channels,
        tenants: body.tenants,
    };
    Ok(Json(
        state.registry.start_canary(&name, spec, Actor::Api).await?,
    ))
}

/// `POST /v1/connectors/{name}/canary/promote`: the candidate becomes active.
pub async fn promote(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    Ok(Json(state.registry.promote(&name, Actor::Api).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AbortBody {
    reason: Option<String>,
}

/// `POST /v1/connectors/{name}/canary/abort` with an optional `{"reason": "..."}`.
pub async fn abort(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeploymentView>, ApiError> {
    let body: AbortBody = json_body(body, r#"{"reason": "..."}"#)?;
    let reason = body
        .reason
        .unwrap_or_else(|| "aborted by an operator".into());
    if reason.len() > 1024 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_canary",
            "the reason is at most 1024 bytes",
        ));
    }
    Ok(Json(
        state
            .registry
            .abort_canary(&name, &reason, Actor::Api)
            .await?,
    ))
}
