//! A webhook receiver: the operator's endpoint that Switchboard's outbound
//! subscriptions deliver to.
//!
//! Every request to `/v1/receive/{anything}` (any method) is recorded with
//! its Standard Webhooks headers and body and answered `200 {"ok": true}`,
//! unless the fault settings fail it first — so a test can make the receiver
//! fail for a while or for good. `GET /__sandbox/received` lists what arrived.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::upstream::{self, Server, Upstream};

/// One request the receiver took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// The method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// `webhook-id`.
    pub id: Option<String>,
    /// `webhook-timestamp`.
    pub timestamp: Option<String>,
    /// `webhook-signature`.
    pub signature: Option<String>,
    /// Every header, names in lower case (a provider's own signature headers are here).
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
    /// When it arrived, in milliseconds since the Unix epoch.
    pub at_ms: u64,
}

#[derive(Default)]
struct Log {
    upstream: Arc<Upstream>,
    received: Mutex<Vec<Received>>,
}

/// A receiver serving on loopback until dropped or shut down.
pub struct Subscriber {
    server: Server,
    log: Arc<Log>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("addr", &self.server.addr())
            .finish()
    }
}

impl Subscriber {
    /// Serves on `addr` (port 0 for any free port).
    pub async fn start(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = crate::bind("subscriber", addr).await?;
        let log = Arc::new(Log::default());
        let routes = Router::new()
            .route("/v1/receive/{*rest}", any(receive))
            .route("/__sandbox/received", get(list))
            .with_state(log.clone());
        let app = upstream::app(routes, log.upstream.clone(), "/v1/");
        let server = Server::spawn("subscriber", listener, app, log.upstream.clone())?;
        Ok(Self { server, log })
    }

    /// The base URL; deliveries go to `{url}/v1/receive/<name>`.
    pub fn url(&self) -> String {
        crate::url_of(self.server.addr())
    }

    /// Its live fault settings.
    pub fn faults(&self) -> &Faults {
        &self.log.upstream.faults
    }

    /// How many requests reached it, failed ones included.
    pub fn requests(&self) -> u64 {
        self.log.upstream.requests()
    }

    /// What it took, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.log
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops serving.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn receive(State(log): State<Arc<Log>>, method: Method, request: Request) -> Json<Value> {
    let uri = request.uri().to_string();
    let (id, timestamp, signature) = (
        header(&request, "webhook-id"),
        header(&request, "webhook-timestamp"),
        header(&request, "webhook-signature"),
    );
    let headers = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let body: Bytes = axum::body::to_bytes(request.into_body(), upstream::MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    log.received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            method: method.to_string(),
            uri,
            id,
            timestamp,
            signature,
            headers,
            body: body.to_vec(),
            at_ms,
        });
    Json(json!({ "ok": true }))
}

/// What arrived, bodies shown as text for people.
async fn list(State(log): State<Arc<Log>>) -> Json<Value> {
    let received = log.received.lock().unwrap_or_else(PoisonError::into_inner);
    let items: Vec<Value> = received
        .iter()
        .map(|r| {
            json!({
                "method": r.method,
                "uri": r.uri,
                "id": r.id,
                "timestamp": r.timestamp,
                "signature": r.signature,
                "body": String::from_utf8_lossy(&r.body),
                "at_ms": r.at_ms,
            })
        })
        .collect();
    Json(json!({ "received": items.len(), "items": items }))
}
