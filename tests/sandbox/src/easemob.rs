//! The fake Easemob (环信) customer service: access tokens, business bindings and session
//! routing for the tenant [`EASEMOB_TENANT_ID`](crate::EASEMOB_TENANT_ID).
//!
//! - `POST /api/platform/tenants/{tenantId}/accessToken` with `{"tenantId"?, "clientId",
//!   "secretId"}` answers `{"status":"OK","entity":{"accessToken":"<32 hex>","expireTime":7200}}`.
//! - The other calls carry that token in the `Kefu-Token` header (the seed's table spells it
//!   `Kefu-Toke`, a typo): `POST` and `DELETE /api/platform/tenants/{tenantId}/busniessbind`
//!   (Easemob's spelling) create and remove business bindings, and `POST
//!   /api/platform/tenants/{tenantId}/sessions` routes a visitor's new session as the
//!   business-binding dispatch describes (see [`routing`]).
//! - Failures answer `{"status":"FAIL","errorCode":"API_…","errorDescription":"…"}` (see
//!   [`reply`]).
//!
//! Control routes under `/__sandbox/easemob/` (see [`control`]) change agents' states, set
//! routing rules, expire tokens and report what happened. This module owns the API routes;
//! bodies are parsed in [`params`], tokens live in [`tokens`], agents, bindings and sessions in
//! [`desk`].

mod control;
mod desk;
mod params;
mod reply;
mod routing;
mod tokens;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    Json, Router,
    extract::{Path, State, rejection::PathRejection},
    http::HeaderMap,
    routing::post,
};
use serde_json::{Value, json};

use desk::Desk;
use params::{BindRequest, Body, SessionRequest, TokenRequest, UnbindRequest};
use reply::Fail;
use tokens::{TOKEN_LIFETIME_S, Tokens, check_tenant};

/// The header API calls carry the access token in.
const TOKEN_HEADER: &str = "Kefu-Token";

/// What the Easemob routes share.
#[derive(Debug, Default)]
struct Easemob {
    tokens: Tokens,
    desk: Desk,
}

/// The provider's routes; faults, counting of `/api/*` and the shared control routes are
/// added by `upstream`.
pub(crate) fn routes() -> Router {
    let easemob = Arc::new(Easemob::default());
    Router::new()
        .route(
            "/api/platform/tenants/{tenant}/accessToken",
            post(issue_token),
        )
        .route(
            "/api/platform/tenants/{tenant}/busniessbind",
            post(bind).delete(unbind),
        )
        .route(
            "/api/platform/tenants/{tenant}/sessions",
            post(route_session),
        )
        .with_state(Arc::clone(&easemob))
        .merge(control::routes(easemob))
}

impl Easemob {
    /// Passes when the tenant in the path exists (`API_003`) and the request carries one of
    /// its live tokens (`API_002`).
    fn authorize(
        &self,
        tenant: Result<Path<String>, PathRejection>,
        headers: &HeaderMap,
    ) -> Result<(), Fail> {
        check_tenant(&tenant_of(tenant)?)?;
        let token = headers
            .get(TOKEN_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::trim);
        self.tokens.check(token, now_ms())
    }
}

async fn issue_token(
    State(easemob): State<Arc<Easemob>>,
    tenant: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Json<Value>, Fail> {
    let tenant = tenant_of(tenant)?;
    let token = easemob
        .tokens
        .issue(&tenant, TokenRequest::parse(body), now_ms())?;
    Ok(reply::ok_with(
        &json!({ "accessToken": token, "expireTime": TOKEN_LIFETIME_S }),
    ))
}

async fn bind(
    State(easemob): State<Arc<Easemob>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Fail> {
    easemob.authorize(tenant, &headers)?;
    easemob.desk.bind(BindRequest::parse(body)?)?;
    Ok(reply::ok())
}

async fn unbind(
    State(easemob): State<Arc<Easemob>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Fail> {
    easemob.authorize(tenant, &headers)?;
    easemob.desk.unbind(UnbindRequest::parse(body)?)?;
    Ok(reply::ok())
}

async fn route_session(
    State(easemob): State<Arc<Easemob>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, Fail> {
    easemob.authorize(tenant, &headers)?;
    let routed = easemob.desk.route(SessionRequest::parse(body)?);
    Ok(reply::ok_with(&routed))
}

/// The `{tenantId}` path segment; one that does not decode names no tenant.
fn tenant_of(path: Result<Path<String>, PathRejection>) -> Result<String, Fail> {
    path.map(|Path(tenant)| tenant)
        .map_err(|_| Fail::UnknownTenant)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
