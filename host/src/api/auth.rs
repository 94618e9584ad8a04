//! Authentication on every route but health, the dashboard's page and
//! webhooks; the OAuth2 token endpoint; API keys; the master key.
//!
//! Each request names its credential as `Authorization: Bearer <key or
//! token>`. [`authenticate`] resolves it to a [`Caller`] and checks the
//! route's scope (`GET` needs `read`, calling an operation `invoke`, any
//! other change `admin`) and reach (a tenant's key only reaches the routes
//! in [`TENANT_ROUTES`]); handlers then keep the caller to its tenant.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::required_json;
use super::{ApiError, AppState};
use crate::auth::{Caller, KeyError, NewKey, Scope, Scopes, TokenError, TokenIssuer};
use crate::names::TenantId;
use crate::sealing::RotateError;
use crate::store::{AuditKind, AuditRecord};

/// Routes a key bound to a tenant may reach, by method; every other route
/// concerns the whole host.
pub const TENANT_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/v1/connectors"),
    (Method::GET, "/v1/connectors/{name}"),
    (Method::POST, "/v1/connectors/{name}/operations/{operation}"),
    (Method::POST, "/v1/invoke"),
    (Method::POST, "/v1/batch"),
    (Method::GET, "/v1/events"),
    (Method::POST, "/v1/events"),
    (Method::GET, "/v1/events/{sequence}"),
    (Method::GET, "/v1/audit"),
    (Method::GET, "/v1/audit/export"),
    (Method::GET, "/v1/keys"),
    (Method::POST, "/v1/keys"),
    (Method::DELETE, "/v1/keys/{id}"),
    (Method::GET, "/v1/openapi.json"),
];

/// Routes that call operations, and so need `invoke` rather than `admin`.
const INVOKE_ROUTES: &[&str] = &[
    "/v1/connectors/{name}/operations/{operation}",
    "/v1/invoke",
    "/v1/batch",
];

/// The scope a request to `route` with `method` needs.
pub fn required_scope(method: &Method, route: &str) -> Scope {
    if method == Method::GET || method == Method::HEAD {
        Scope::Read
    } else if method == Method::POST && INVOKE_ROUTES.contains(&route) {
        Scope::Invoke
    } else {
        Scope::Admin
    }
}

fn tenant_reachable(method: &Method, route: &str) -> bool {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    TENANT_ROUTES
        .iter()
        .any(|(m, r)| m == method && *r == route)
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

/// The bearer credential of a request, if it sent one.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().ok().unwrap_or_default();
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(unauthenticated(
            "the Authorization header must be `Bearer <API key or token>`",
        ));
    }
    Ok(Some(credential.trim()))
}

/// The caller a request's credential stands for.
fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let credential = bearer(headers)?.ok_or_else(|| {
        unauthenticated(
            "this route needs `Authorization: Bearer <API key or token>`; the host printed an admin key at its first start",
        )
    })?;
    if TokenIssuer::is_token(credential) {
        return state
            .tokens
            .verify(credential, &state.keys)
            .map_err(|err| match err {
                TokenError::Expired => {
                    ApiError::new(StatusCode::UNAUTHORIZED, "token_expired", err.to_string())
                }
                _ => unauthenticated("the bearer token is not valid (altered, revoked, or from before the host restarted)"),
            });
    }
    state
        .keys
        .authenticate(credential)
        .ok_or_else(|| unauthenticated("the API key is not valid (unknown or revoked)"))
}

/// Middleware: establishes the caller and checks the route's scope and reach.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let checked = resolve(&state, request.headers()).and_then(|caller| {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or_default();
        let scope = required_scope(request.method(), route);
        if !caller.scopes.allows(scope) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "scope_required",
                format!(
                    "{} {route} needs the {} scope; key {} has {}",
                    request.method(),
                    scope.as_str(),
                    caller.id,
                    caller.scopes
                ),
            ));
        }
        if !caller.is_host_wide() && !tenant_reachable(request.method(), route) {
            return Err(tenant_forbidden(&format!(
                "{} {route} concerns the whole host; a key bound to a tenant cannot reach it",
                request.method()
            )));
        }
        Ok(caller)
    });
    match checked {
        Ok(caller) => {
            let route = request
                .extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default();
            let scope = required_scope(request.method(), &route);
            let admin = (scope == Scope::Admin).then(|| AdminRequest::of(&request, &caller, route));
            request.extensions_mut().insert(caller.clone());
            let response = crate::auth::serving(caller.id, next.run(request)).await;
            if let Some(admin) = admin {
                state.audit.record(admin.record(&response));
            }
            response
        }
        Err(err) => {
            let mut response = err.into_response();
            if response.status() == StatusCode::UNAUTHORIZED {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

/// What an admin request's audit record says before its answer is known.
struct AdminRequest {
    started: std::time::Instant,
    record: AuditRecord,
}

impl AdminRequest {
    fn of(request: &Request, caller: &Caller, route: String) -> Self {
        let path = request.uri().path();
        let connector = route
            .strip_prefix("/v1/connectors/{name}")
            .and_then(|_| path.split('/').nth(3))
            .unwrap_or_default();
        Self {
            started: std::time::Instant::now(),
            record: AuditRecord {
                time_ms: crate::capabilities::now_ms(),
                kind: AuditKind::Admin,
                actor: caller.id.clone(),
                action: format!("{} {route}", request.method()),
                connector: connector.to_owned(),
                detail: crate::masking::mask(path).into_owned(),
                tenant: caller.tenant.as_ref().map(ToString::to_string),
                request_id: request
                    .headers()
                    .get(super::REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                ..AuditRecord::default()
            },
        }
    }

    fn record(self, response: &Response) -> AuditRecord {
        let error = response.extensions().get::<ApiError>();
        AuditRecord {
            status: Some(
                if response.status().is_success() {
                    "ok"
                } else {
                    "error"
                }
                .into(),
            ),
            code: error.map(|e| e.code.clone()),
            output: error.map(|e| crate::audit::excerpt(&e.message)),
            latency_us: Some(self.started.elapsed().as_micros() as u64),
            ..self.record
        }
    }
}

/// 403 for data of a tenant the caller is not bound to.
pub fn tenant_forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "tenant_forbidden", message)
}

/// The tenant a call acts for: the one asked for, or the caller's own (else
/// `default`); another tenant than a bound caller's is refused.
pub fn tenant_of_call(caller: &Caller, asked: Option<TenantId>) -> Result<TenantId, ApiError> {
    match (asked, &caller.tenant) {
        (None, Some(own)) => Ok(own.clone()),
        (None, None) => Ok(TenantId::default_tenant()),
        (Some(asked), _) if caller.sees_tenant(asked.as_str()) => Ok(asked),
        (Some(asked), _) => Err(tenant_forbidden(&format!(
            "key {} is bound to tenant {}; it cannot act for tenant {asked}",
            caller.id,
            caller
                .tenant
                .as_ref()
                .map(TenantId::as_str)
                .unwrap_or_default()
        ))),
    }
}

/// An error of the token endpoint, in the shape of RFC 6749 §5.2.
#[derive(Debug, Clone)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        }
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// `POST /oauth/token`: the client-credentials grant. The client id is a
/// key's id and the secret the key itself, in the form body or HTTP Basic.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form: TokenRequest = serde_urlencoded::from_bytes(&body).map_err(|err| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("the body must be application/x-www-form-urlencoded: {err}"),
        )
    })?;
    if form.grant_type.as_deref() != Some("client_credentials") {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        ));
    }
    let (id, secret) = match basic_credentials(&headers) {
        Some(pair) => pair,
        None => (
            form.client_id.unwrap_or_default(),
            form.client_secret.unwrap_or_default(),
        ),
    };
    let client = state
        .keys
        .authenticate(&secret)
        .filter(|client| client.id == id)
        .ok_or_else(|| {
            OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id must be a key's id and client_secret the key",
            )
        })?;
    let requested = form
        .scope
        .as_deref()
        .map(Scopes::parse)
        .transpose()
        .map_err(|err| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", err))?;
    let issued = state.tokens.issue(&client, requested).map_err(|err| {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", err.to_string())
    })?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(issued),
    )
        .into_response())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    name: String,
    #[serde(default)]
    tenant: Option<String>,
    scopes: Vec<String>,
}

const KEY_SHAPE: &str = r#"{"name": "...", "scopes": ["read" | "invoke" | "admin"], "tenant": "..." (omit for host-wide)}"#;

fn key_error(err: KeyError) -> ApiError {
    match err {
        KeyError::NoScopes | KeyError::Malformed(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_key_request",
            err.to_string(),
        ),
        KeyError::Escalation { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "scope_required", err.to_string())
        }
        KeyError::OtherTenant(_) => tenant_forbidden(&err.to_string()),
        KeyError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "key_not_found", err.to_string())
        }
        KeyError::Store(err) => err.into(),
    }
}

/// `GET /v1/keys`: the keys the caller may see, without secrets.
pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    Json(json!({ "keys": state.keys.list(&caller) }))
}

/// `POST /v1/keys`: makes a key; the answer is the only time it is shown.
pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: KeyBody = required_json(body, KEY_SHAPE)?;
    let invalid =
        |message: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_key_request", message);
    let scopes = Scopes::parse(&body.scopes.join(" ")).map_err(invalid)?;
    let tenant = body
        .tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|err| invalid(err.to_string()))?;
    let new = NewKey {
        name: body.name,
        tenant,
        scopes,
    };
    let keys = state.keys.clone();
    let created = tokio::task::spawn_blocking(move || keys.create(new, Some(&caller)))
        .await
        .map_err(|err| ApiError::internal(&err.to_string()))?
        .map_err(key_error)?;
    Ok((StatusCode::CREATED, Json(json!(created))))
}

/// `DELETE /v1/keys/{id}`: revokes a key and every token issued for it.
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let keys = state.keys.clone();
    tokio::task::spawn_blocking(move || keys.revoke(&id, &caller))
        .await
        .map_err(|err| ApiError::internal(&err.to_string()))?
        .map_err(key_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/master-key`: the id of the key sealing secrets.
pub async fn master_key(State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "key_id": state.master_keys.key_id() }))
}

/// `POST /v1/master-key/rotate`: seals every secret under a new master key
/// while calls go on.
pub async fn rotate_master_key(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rotated = state.master_keys.rotate().await.map_err(|err| match err {
        RotateError::FromEnvironment => ApiError::new(
            StatusCode::CONFLICT,
            "master_key_from_environment",
            err.to_string(),
        ),
        RotateError::Store(_) | RotateError::Write { .. } => ApiError::internal(&err.to_string()),
    })?;
    Ok(Json(json!(rotated)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_need_read_calls_need_invoke_and_changes_need_admin() {
        let operation = "/v1/connectors/{name}/operations/{operation}";
        assert_eq!(required_scope(&Method::GET, "/v1/connectors"), Scope::Read);
        assert_eq!(required_scope(&Method::POST, operation), Scope::Invoke);
        assert_eq!(required_scope(&Method::POST, "/v1/batch"), Scope::Invoke);
        assert_eq!(
            required_scope(&Method::POST, "/v1/connectors"),
            Scope::Admin
        );
        assert_eq!(
            required_scope(&Method::PUT, "/v1/connectors/{name}/secrets/{key}"),
            Scope::Admin
        );
        assert_eq!(required_scope(&Method::POST, "/v1/events"), Scope::Admin);
    }

    #[test]
    fn a_tenant_reaches_its_calls_and_data_but_nothing_host_wide() {
        assert!(tenant_reachable(&Method::POST, "/v1/invoke"));
        assert!(tenant_reachable(&Method::HEAD, "/v1/events"));
        assert!(!tenant_reachable(&Method::POST, "/v1/connectors"));
        assert!(!tenant_reachable(
            &Method::GET,
            "/v1/connectors/{name}/config"
        ));
        assert!(!tenant_reachable(&Method::GET, "/metrics"));
        assert!(!tenant_reachable(&Method::GET, "/v1/subscriptions"));
    }

    #[test]
    fn a_bound_caller_acts_for_its_own_tenant_only() {
        let acme = TenantId::parse("acme").expect("tenant");
        let caller = Caller {
            id: "sbk_1".into(),
            tenant: Some(acme.clone()),
            scopes: [Scope::Invoke].into_iter().collect(),
        };
        assert_eq!(tenant_of_call(&caller, None).expect("own"), acme);
        let other = TenantId::parse("globex").expect("tenant");
        assert_eq!(
            tenant_of_call(&caller, Some(other.clone()))
                .expect_err("other")
                .code,
            "tenant_forbidden"
        );
        let host_wide = Caller {
            tenant: None,
            ..caller
        };
        assert_eq!(
            tenant_of_call(&host_wide, Some(other.clone())).expect("any"),
            other
        );
        assert_eq!(
            tenant_of_call(&host_wide, None).expect("default"),
            TenantId::default_tenant()
        );
    }
}
