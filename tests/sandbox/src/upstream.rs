//! What every fake provider has in common: the `/v1/*` request counter and fault layer, the
//! `/__sandbox/*` control routes, JSON answers for unknown routes, and serving on a socket
//! until shut down.
//!
//! The provider-specific routes come from each provider's module; this module wraps them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Request, State, rejection::BytesRejection},
    http::{Method, StatusCode, Uri},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

use crate::error::ApiError;
use crate::faults::{FaultConfig, Faults};

/// How long [`Server::shutdown`] lets in-flight requests finish before it cuts them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The largest request body any sandbox route reads.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// State one provider shares with its owner: the faults to inflict and the traffic seen.
#[derive(Debug, Default)]
pub(crate) struct Upstream {
    /// Fault settings applied to `/v1/*` requests.
    pub(crate) faults: Faults,
    requests: AtomicU64,
}

impl Upstream {
    /// How many `/v1/*` requests arrived, whatever their outcome.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Wraps a provider's routes with the shared control routes, fault layer and JSON fallbacks.
/// Requests whose path starts with `api_prefix` are counted and suffer the faults.
pub(crate) fn app(routes: Router, upstream: Arc<Upstream>, api_prefix: &'static str) -> Router {
    let control = Router::new()
        .route(
            "/__sandbox/faults",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
        .route("/__sandbox/stats", get(stats))
        .with_state(Arc::clone(&upstream));
    routes
        .merge(control)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(
            (upstream, api_prefix),
            count_and_inflict,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Reads a request body as JSON, answering a missing, oversized or malformed body with a
/// JSON `invalid_request` error instead of axum's plain-text rejection.
pub(crate) fn parse_json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    serde_json::from_slice(&body?).map_err(|error| {
        ApiError::invalid_request(format!("the request body is not valid: {error}"))
    })
}

async fn count_and_inflict(
    State((upstream, api_prefix)): State<(Arc<Upstream>, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    if !request.uri().path().starts_with(api_prefix) {
        return next.run(request).await;
    }
    upstream.requests.fetch_add(1, Ordering::Relaxed);
    match upstream.faults.inflict().await {
        Ok(()) => next.run(request).await,
        Err(failure) => failure.into_response(),
    }
}

async fn get_faults(State(upstream): State<Arc<Upstream>>) -> Json<FaultConfig> {
    Json(upstream.faults.get())
}

async fn put_faults(
    State(upstream): State<Arc<Upstream>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FaultConfig>, ApiError> {
    let config: FaultConfig = parse_json_body(body)?;
    config.validate()?;
    upstream.faults.set(config.clone());
    Ok(Json(config))
}

async fn delete_faults(State(upstream): State<Arc<Upstream>>) -> Json<FaultConfig> {
    upstream.faults.clear();
    Json(upstream.faults.get())
}

async fn stats(State(upstream): State<Arc<Upstream>>) -> Json<Value> {
    Json(json!({ "requests": upstream.requests() }))
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}", uri.path()),
    )
}

/// One provider serving in a background task until [`Server::shutdown`] or drop.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    upstream: Arc<Upstream>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts serving `app` on `listener` in a background tokio task.
    pub(crate) fn spawn(
        name: &'static str,
        listener: TcpListener,
        app: Router,
        upstream: Arc<Upstream>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender means the owner is gone: stop then too.
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, provider = name, "sandbox provider stopped serving");
            }
        });
        tracing::info!(provider = name, %addr, "sandbox provider listening");
        Ok(Self {
            addr,
            upstream,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the server is bound to.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The provider's shared state.
    pub(crate) fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Stops accepting connections, lets in-flight requests finish for up to
    /// [`SHUTDOWN_GRACE`], then cuts off whatever is left.
    pub(crate) async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }

    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{client, get_json, read_json, start};

    #[tokio::test]
    async fn stats_count_v1_requests_of_any_outcome_and_nothing_else() -> anyhow::Result<()> {
        let sandbox = start().await?;
        let base = sandbox.logistics_url();
        let key = Some(crate::LOGISTICS_API_KEY);
        get_json(&format!("{base}/v1/tracking/zto/ZT12345678"), key).await?;
        get_json(&format!("{base}/v1/tracking/zto/ZT12345678"), None).await?;
        get_json(&format!("{base}/v1/nowhere"), key).await?;
        get_json(&format!("{base}/__sandbox/faults"), None).await?;
        get_json(&format!("{base}/elsewhere"), None).await?;

        let (status, stats) = get_json(&format!("{base}/__sandbox/stats"), None).await?;
        assert_eq!(status, 200);
        assert_eq!(stats["requests"], 3);
        assert_eq!(sandbox.logistics_requests(), 3);
        assert_eq!(sandbox.payment_requests(), 0);
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_answer_json_errors() -> anyhow::Result<()> {
        let sandbox = start().await?;
        let (status, body) =
            get_json(&format!("{}/v2/anything", sandbox.payment_url()), None).await?;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (404, Some("not_found"))
        );

        let response = client()?
            .delete(format!("{}/__sandbox/stats", sandbox.payment_url()))
            .send()
            .await?;
        let (status, body) = read_json(response).await?;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (405, Some("method_not_allowed"))
        );
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_json_413() -> anyhow::Result<()> {
        let sandbox = start().await?;
        let response = client()?
            .put(format!("{}/__sandbox/faults", sandbox.payment_url()))
            .body(vec![b' '; super::MAX_BODY_BYTES + 1])
            .send()
            .await?;
        let (status, body) = read_json(response).await?;
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (413, Some("invalid_request"))
        );
        sandbox.shutdown().await;
        Ok(())
    }
}
