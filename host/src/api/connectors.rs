//! Connector administration: list, describe, install, remove, settings.
//!
//! What is described is the active version; `lifecycle` covers the others.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::invoke::body_error;
use super::{ApiError, AppState};
use crate::names::{ConnectorName, SettingKey};
use crate::pipeline::OverrideError;
use crate::pipeline::policy::PipelinePolicy;
use crate::registry::LoadedConnector;
use crate::registry::lifecycle::{Activation, Actor, Package};
use crate::store::{InstallSource, SettingKind};

/// 404 `connector_not_found` for `name`.
pub(super) fn not_installed(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "connector_not_found",
        format!("connector `{name}` is not installed"),
    )
}

/// The active version of `name`, or 404 `connector_not_found`.
pub(super) fn connector(
    state: &AppState,
    name: &str,
) -> Result<std::sync::Arc<LoadedConnector>, ApiError> {
    state.registry.get(name).ok_or_else(|| not_installed(name))
}

fn summary(state: &AppState, c: &LoadedConnector) -> Value {
    let canary = state
        .registry
        .route_of(c.manifest.name.as_str())
        .and_then(|route| {
            route.canary.as_ref().map(|canary| {
                json!({
                    "version": canary.rule.version.to_string(),
                    "weight_percent": f64::from(canary.rule.weight_bp) / 100.0,
                })
            })
        });
    json!({
        "name": c.manifest.name,
        "version": c.manifest.version.to_string(),
        "description": c.manifest.description,
        "package_hash": c.package_hash,
        "installed_at_ms": c.installed_at_ms,
        "operations": c.info.operations.iter().map(|op| op.name.as_str()).collect::<Vec<_>>(),
        "canary": canary,
    })
}

/// `GET /v1/connectors`: every connector with its active version and canary.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let connectors: Vec<Value> = state
        .registry
        .list()
        .iter()
        .map(|c| summary(&state, c))
        .collect();
    Json(json!({ "connectors": connectors }))
}

/// `GET /v1/connectors/{name}`: everything about one connector, schemas included.
pub async fn describe(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = connector(&state, &name)?;
    let limits = &c.manifest.limits;
    let mut body = summary(&state, &c);
    body["operations"] = c
        .operations()
        .map(|op| {
            json!({
                "name": op.info.name,
                "description": op.info.description,
                "idempotent": op.info.idempotent,
                "input_schema": op.input_schema,
                "output_schema": op.output_schema,
            })
        })
        .collect();
    body["emits"] = json!(c.info.emits);
    body["allowed_hosts"] = json!(c.manifest.allowed_hosts.entries());
    body["config"] = json!(c.manifest.config.keys().collect::<Vec<_>>());
    body["secrets"] = json!(c.manifest.secrets);
    body["limits"] = json!({
        "deadline_ms": limits.deadline.as_millis(),
        "memory_bytes": limits.memory_bytes,
        "table_elements": limits.table_elements,
        "instances": limits.instances,
        "output_bytes": limits.output_bytes,
        "http_timeout_ms": limits.http_timeout.as_millis(),
        "http_response_bytes": limits.http_response_bytes,
    });
    Ok(Json(body))
}

/// Query of `POST /v1/connectors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallQuery {
    /// Whether the new version becomes active (default) or is staged.
    #[serde(default = "yes")]
    activate: bool,
}

fn yes() -> bool {
    true
}

/// `POST /v1/connectors`: multipart with a `manifest` part (TOML), a
/// `component` part (the `.wasm`) and an optional `signature` part. Installs
/// the version beside the others and makes it active unless
/// `?activate=false`; the first version of a connector is always active.
/// 201 when new, 200 when this exact package was installed already.
pub async fn install(
    State(state): State<AppState>,
    query: Result<Query<InstallQuery>, QueryRejection>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(query) = query.map_err(|err| ApiError::invalid_query(err.body_text()))?;
    let mut multipart = multipart.map_err(|err| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send multipart/form-data with `manifest` and `component` parts: {}",
                err.body_text()
            ),
        )
    })?;
    let mut manifest = None;
    let mut component = None;
    let mut signature = None;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("manifest") => manifest = Some(field.text().await.map_err(multipart_error)?),
            Some("component") => {
                component = Some(field.bytes().await.map_err(multipart_error)?.to_vec())
            }
            Some("signature") => signature = Some(field.text().await.map_err(multipart_error)?),
            other => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unexpected_part",
                    format!(
                        "unexpected part `{}`; send `manifest`, `component` and optionally `signature`",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
    }
    let missing = |part: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_part",
            format!("the upload has no `{part}` part"),
        )
    };
    let package = Package {
        manifest: manifest.ok_or_else(|| missing("manifest"))?,
        wasm: component.ok_or_else(|| missing("component"))?,
        signature,
    };
    let activation = if query.activate {
        Activation::Activate
    } else {
        Activation::Stage
    };
    let installed = state
        .registry
        .install(package, InstallSource::Api, activation, Actor::Api)
        .await?;
    tracing::info!(connector = %installed.name, version = %installed.version, hash = installed.package_hash, "connector installed");
    let status = if installed.already_installed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let deployment = state.registry.view(installed.name.as_str())?;
    Ok((
        status,
        Json(json!({
            "name": installed.name,
            "version": installed.version.to_string(),
            "package_hash": installed.package_hash,
            "already_installed": installed.already_installed,
            "deployment": deployment,
        })),
    ))
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> ApiError {
    let status = err.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "payload_too_large",
            "the upload is larger than the host accepts",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_multipart",
            err.body_text(),
        )
    }
}

/// `DELETE /v1/connectors/{name}`: every version, its settings and its deployment.
pub async fn remove(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let parsed = ConnectorName::parse(&name).map_err(|_| not_installed(&name))?;
    let removed = state.registry.remove(&parsed, Actor::Api).await?;
    state.pipelines.forget(&name);
    if removed {
        tracing::info!(connector = name, "connector removed");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_installed(&name))
    }
}

/// `GET /v1/connectors/{name}/pipeline`: the settings in force, the circuit
/// breakers, rate and concurrency limits, and the cache size.
pub async fn pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = connector(&state, &name)?;
    let view = state.pipelines.of(&c).view();
    Ok(Json(json!(view)))
}

/// `PUT /v1/connectors/{name}/pipeline`: replaces the manifest's
/// `[pipeline]` settings (the same shape, as JSON) for every version.
pub async fn set_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(body_error)?;
    let c = connector(&state, &name)?;
    let policy: PipelinePolicy = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("send the [pipeline] settings as JSON: {err}"),
        )
    })?;
    let detail = serde_json::to_string(&policy).unwrap_or_default();
    state
        .pipelines
        .set_override(&c, policy)
        .await
        .map_err(|err| match err {
            OverrideError::Invalid(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_pipeline", message)
            }
            OverrideError::Store(err) => err.into(),
        })?;
    let connector_name = &c.manifest.name;
    state
        .registry
        .audit(
            Actor::Api,
            "pipeline.overridden",
            connector_name,
            None,
            detail,
        )
        .await;
    Ok(Json(json!(state.pipelines.of(&c).view())))
}

/// `DELETE /v1/connectors/{name}/pipeline`: back to the manifest's settings.
pub async fn reset_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let c = connector(&state, &name)?;
    let existed = state.pipelines.remove_override(&name).await?;
    if existed {
        let connector_name = &c.manifest.name;
        state
            .registry
            .audit(
                Actor::Api,
                "pipeline.reset",
                connector_name,
                None,
                String::new(),
            )
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/connectors/{name}/config`: declared keys, values, and whether the operator set them.
pub async fn list_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = connector(&state, &name)?;
    let config: Vec<Value> = c
        .grants
        .settings
        .config_view()
        .into_iter()
        .map(|(key, value, set)| json!({ "key": key, "value": value, "set_by_operator": set }))
        .collect();
    Ok(Json(json!({ "config": config })))
}

/// `GET /v1/connectors/{name}/secrets`: declared names and whether each is set; never values.
pub async fn list_secrets(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let c = connector(&state, &name)?;
    let secrets: Vec<Value> = c
        .grants
        .settings
        .secrets_view()
        .into_iter()
        .map(|(key, set)| json!({ "name": key, "set": set }))
        .collect();
    Ok(Json(json!({ "secrets": secrets })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingBody {
    value: String,
}

fn setting_key(key: &str) -> Result<SettingKey, ApiError> {
    SettingKey::parse(key).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_setting_key",
            err.to_string(),
        )
    })
}

async fn put_setting(
    state: AppState,
    kind: SettingKind,
    name: String,
    key: String,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(body_error)?;
    let key = setting_key(&key)?;
    // Serde's messages quote the values they met; a setting may be a secret.
    let parsed: SettingBody = serde_json::from_slice(&body).map_err(|err| {
        let what = match err.classify() {
            serde_json::error::Category::Data => "JSON of another shape",
            _ => "not JSON",
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!(
                "send {{\"value\": \"...\"}}: the body is {what} (line {}, column {})",
                err.line(),
                err.column()
            ),
        )
    })?;
    if parsed.value.len() > crate::registry::MAX_SETTING_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "values are at most {} bytes",
                crate::registry::MAX_SETTING_BYTES
            ),
        ));
    }
    state
        .registry
        .set_setting(&name, kind, &key, Some(parsed.value))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_setting(
    state: AppState,
    kind: SettingKind,
    name: String,
    key: String,
) -> Result<StatusCode, ApiError> {
    let key = setting_key(&key)?;
    state.registry.set_setting(&name, kind, &key, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/connectors/{name}/config/{key}` with `{"value": "..."}`.
pub async fn set_config(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    put_setting(state, SettingKind::Config, name, key, body).await
}

/// `DELETE /v1/connectors/{name}/config/{key}`: back to the manifest default.
pub async fn delete_config(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete_setting(state, SettingKind::Config, name, key).await
}

/// `PUT /v1/connectors/{name}/secrets/{key}` with `{"value": "..."}`; write-only.
pub async fn set_secret(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    put_setting(state, SettingKind::Secret, name, key, body).await
}

/// `DELETE /v1/connectors/{name}/secrets/{key}`.
pub async fn delete_secret(
    State(state): State<AppState>,
    Path((name, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete_setting(state, SettingKind::Secret, name, key).await
}
