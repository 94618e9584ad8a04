//! Webhooks the fake providers send: where to (set through a control route), and sending
//! one with a record of how it went.
//!
//! A provider that pushes events (call tracking, the ticket system, the IM channel, the
//! payment provider, Clink's call-end push) keeps one [`WebhookTarget`]; tests and people
//! point it at a Switchboard hook with `PUT /__sandbox/webhook` `{"url": …, "secret": …}`.
//! How a request is signed is up to the provider's module.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    routing::get,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::error::ApiError;
use crate::upstream::parse_json_body;

/// How long the provider waits for the receiver of a webhook.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a provider sends its webhooks, and the secret it signs them with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WebhookConfig {
    /// Absolute `http://` URL the webhooks go to; none means nothing is sent.
    #[serde(default)]
    pub(crate) url: Option<String>,
    /// The shared secret the provider signs with (or puts in the URL), if any.
    #[serde(default)]
    pub(crate) secret: Option<String>,
}

/// What became of one webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Delivery {
    /// The URL it went to.
    pub(crate) url: String,
    /// The receiver's status, or none when it could not be reached.
    pub(crate) status: Option<u16>,
    /// Why it could not be reached, or the start of the receiver's answer.
    pub(crate) detail: String,
}

impl Delivery {
    /// Whether the receiver answered 2xx.
    pub(crate) fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// A provider's webhook settings and its history of sends.
#[derive(Debug, Default)]
pub(crate) struct WebhookTarget {
    config: Mutex<WebhookConfig>,
    sent: Mutex<Vec<Delivery>>,
}

impl WebhookTarget {
    /// The current settings.
    pub(crate) fn config(&self) -> WebhookConfig {
        self.config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings.
    pub(crate) fn set(&self, config: WebhookConfig) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// Every webhook sent so far, oldest first.
    pub(crate) fn sent(&self) -> Vec<Delivery> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends `request` (built by the provider, signed as it signs) and records the outcome.
    pub(crate) async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Delivery {
        let delivery = match request.timeout(SEND_TIMEOUT).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Delivery {
                    url: url.to_owned(),
                    status: Some(status),
                    detail: body.chars().take(512).collect(),
                }
            }
            Err(error) => Delivery {
                url: url.to_owned(),
                status: None,
                detail: error.to_string(),
            },
        };
        if !delivery.succeeded() {
            tracing::warn!(url, status = ?delivery.status, detail = %delivery.detail, "sandbox webhook failed");
        }
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(delivery.clone());
        delivery
    }
}

/// A client that ignores proxy settings, so webhooks stay on loopback.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// `GET|PUT /__sandbox/webhook` (the settings) and `GET /__sandbox/webhook/sent` (the
/// history) for a provider's target.
pub(crate) fn control_routes(target: Arc<WebhookTarget>) -> Router {
    Router::new()
        .route("/__sandbox/webhook", get(get_config).put(put_config))
        .route("/__sandbox/webhook/sent", get(get_sent))
        .with_state(target)
}

async fn get_config(State(target): State<Arc<WebhookTarget>>) -> Json<WebhookConfig> {
    Json(target.config())
}

async fn put_config(
    State(target): State<Arc<WebhookTarget>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookConfig>, ApiError> {
    let config: WebhookConfig = parse_json_body(body)?;
    if let Some(url) = &config.url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(ApiError::invalid_param(
            "url",
            "the webhook URL must start with http:// or https://",
        ));
    }
    target.set(config.clone());
    Ok(Json(config))
}

async fn get_sent(State(target): State<Arc<WebhookTarget>>) -> Json<Vec<Delivery>> {
    Json(target.sent())
}
