//! The HTTP API: routes, limits as layers, and the error envelope.
//!
//! [`router`] is a pure function of [`AppState`], so tests drive the whole API
//! in-process without a socket.

mod alerts;
mod audit;
pub mod auth;
mod batch;
mod connectors;
pub mod error;
mod events;
mod health;
mod hooks;
mod invoke;
mod lifecycle;
mod metrics;
mod openapi;
mod stats;
mod ui;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::routing::{delete, get, post, put};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::events::Events;
use crate::pipeline::Pipelines;
use crate::pipeline::idempotency::Idempotency;
use crate::registry::Registry;

pub use error::ApiError;

/// Body size limits per kind of route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest invoke input, in bytes.
    pub invoke_bytes: usize,
    /// Largest install upload (manifest plus component), in bytes.
    pub install_bytes: usize,
    /// Largest config or secret body, in bytes.
    pub setting_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self {
            invoke_bytes: 1 << 20,
            install_bytes: 64 << 20,
            setting_bytes: 80 << 10,
        }
    }
}

/// What every handler can reach: one `Arc`, so the clone every request
/// makes is one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// The state over `services`.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    /// The installed connectors.
    pub registry: Arc<Registry>,
    /// The audit trail.
    pub audit: Arc<crate::audit::AuditTrail>,
    /// Rate limits, breakers and caches per connector.
    pub pipelines: Arc<Pipelines>,
    /// Answers kept for idempotency keys.
    pub idempotency: Arc<Idempotency>,
    /// Webhooks, the event log, rules, subscriptions and deliveries.
    pub events: Arc<Events>,
    /// Whether start-up (restoring and loading connectors) has finished.
    pub ready: Arc<AtomicBool>,
    /// Body size limits.
    pub limits: BodyLimits,
    /// Call, webhook and delivery counters for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The alert rules and the alerts they fired.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Instance slots of the engine's pool, reported by `GET /metrics`.
    pub max_instances: u32,
    /// The API keys.
    pub keys: Arc<crate::auth::ApiKeys>,
    /// Issues and checks OAuth2 bearer tokens.
    pub tokens: Arc<crate::auth::TokenIssuer>,
    /// The master key ring sealing secrets.
    pub master_keys: Arc<crate::sealing::MasterKeys>,
}

/// The header carrying each request's id, set when the caller sends none.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The span of one request: method and path, never the query, which may
/// carry a provider's token to a webhook.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let connectors = Router::new()
        .route(
            "/v1/connectors",
            get(connectors::list)
                .post(connectors::install)
                .layer(DefaultBodyLimit::max(limits.install_bytes)),
        )
        .route(
            "/v1/connectors/{name}",
            get(connectors::describe).delete(connectors::remove),
        )
        .route("/v1/connectors/{name}/config", get(connectors::list_config))
        .route(
            "/v1/connectors/{name}/config/{key}",
            put(connectors::set_config)
                .delete(connectors::delete_config)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/connectors/{name}/secrets",
            get(connectors::list_secrets),
        )
        .route(
            "/v1/connectors/{name}/secrets/{key}",
            put(connectors::set_secret)
                .delete(connectors::delete_secret)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/connectors/{name}/operations/{operation}",
            post(invoke::invoke).layer(DefaultBodyLimit::max(limits.invoke_bytes)),
        )
        .route(
            "/v1/invoke",
            post(invoke::invoke_envelope).layer(DefaultBodyLimit::max(limits.invoke_bytes)),
        )
        .route(
            "/v1/batch",
            post(batch::batch).layer(DefaultBodyLimit::max(limits.invoke_bytes)),
        )
        .route(
            "/v1/connectors/{name}/pipeline",
            get(connectors::pipeline)
                .put(connectors::set_pipeline)
                .delete(connectors::reset_pipeline)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route("/v1/upstreams", get(health::upstreams))
        .route("/v1/connectors/{name}/versions", get(lifecycle::versions))
        .route(
            "/v1/connectors/{name}/versions/{version}",
            delete(lifecycle::remove_version),
        )
        .route(
            "/v1/connectors/{name}/versions/{version}/activate",
            post(lifecycle::activate),
        )
        .route("/v1/connectors/{name}/rollback", post(lifecycle::rollback))
        .route(
            "/v1/connectors/{name}/canary",
            put(lifecycle::put_canary).layer(DefaultBodyLimit::max(limits.invoke_bytes)),
        )
        .route(
            "/v1/connectors/{name}/canary/promote",
            post(lifecycle::promote),
        )
        .route(
            "/v1/connectors/{name}/canary/abort",
            post(lifecycle::abort).layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route("/v1/audit", get(audit::list))
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/alerts", get(alerts::list))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/connectors/{name}/hooks", get(hooks::list))
        .route(
            "/v1/connectors/{name}/hooks/{hook}",
            put(hooks::put)
                .delete(hooks::reset)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/events",
            get(events::list)
                .post(events::inject)
                .layer(DefaultBodyLimit::max(limits.invoke_bytes)),
        )
        .route("/v1/events/{sequence}", get(events::get))
        .route("/v1/deliveries", get(events::deliveries))
        .route("/v1/deliveries/{id}", get(events::delivery))
        .route("/v1/dlq", get(events::dead_letters))
        .route("/v1/dlq/{id}", delete(events::discard_dead))
        .route("/v1/dlq/{id}/retry", post(events::retry_dead))
        .route(
            "/v1/rules",
            get(events::rules)
                .post(events::create_rule)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/rules/{id}",
            get(events::rule)
                .put(events::put_rule)
                .delete(events::delete_rule)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/subscriptions",
            get(events::subscriptions)
                .post(events::create_subscription)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/subscriptions/{id}",
            get(events::subscription)
                .put(events::put_subscription)
                .delete(events::delete_subscription)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route(
            "/v1/subscriptions/{id}/replay",
            post(events::replay).layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::require_ready,
        ));
    // Answered during start-up too.
    let host = Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .route(
            "/v1/keys",
            get(auth::list_keys)
                .post(auth::create_key)
                .layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .route("/v1/keys/{id}", delete(auth::revoke_key))
        .route("/v1/master-key", get(auth::master_key))
        .route("/v1/master-key/rotate", post(auth::rotate_master_key));
    let authenticated = connectors
        .merge(host)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ));
    // Providers cannot hold our keys: each hook checks its own signature or token.
    let hooks = Router::new()
        .route(
            "/v1/hooks/{connector}/{hook}",
            axum::routing::any(hooks::receive).layer(DefaultBodyLimit::disable()),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            health::require_ready,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/ui", get(ui::page))
        .route("/ui/{asset}", get(ui::asset))
        .route(
            "/oauth/token",
            post(auth::token).layer(DefaultBodyLimit::max(limits.setting_bytes)),
        )
        .merge(authenticated)
        .merge(hooks)
        .fallback(|| async { ApiError::route_not_found() })
        .with_state(state)
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn(error::envelope))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}
