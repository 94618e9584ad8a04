//! The fake payment provider: a payment-link API in the style of Stripe.
//!
//! `POST /v1/payment_links` and `GET /v1/payment_links/{id}` with `Authorization: Bearer
//! sk_sandbox_payment`; `GET /pay/{id}` is the page a customer opens; `POST
//! /__sandbox/payment_links/{id}/pay` lets a test play the customer who pays. When a link is
//! paid the provider sends the `payment_link.paid` event to the webhook URL set with `PUT
//! /__sandbox/webhook`, signed as Stripe signs: `Stripe-Signature: t=<unix
//! seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook secret>`. This module owns
//! the routes; the link and its checks live in [`link`], memory in [`store`], the HTML in
//! [`page`].

mod link;
mod page;
mod store;

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, State,
        rejection::{BytesRejection, PathRejection},
    },
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::PAYMENT_API_KEY;
use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::upstream::parse_json_body;
use crate::webhook::{self, WebhookConfig, WebhookTarget};
use link::{NewLink, PaymentLink};
use store::{Created, Links, unknown_link};

/// What the payment routes share.
#[derive(Debug)]
struct Provider {
    links: Links,
    /// Link URLs are this plus the link id, e.g. `http://127.0.0.1:18082/pay/`.
    pay_url_base: String,
    /// Where `payment_link.paid` events go.
    webhook: Arc<WebhookTarget>,
}

/// The provider's routes for a server reachable at `base_url`; faults, counting and the
/// shared control routes are added by `upstream`.
pub(crate) fn routes(base_url: &str) -> Router {
    let webhook = Arc::new(WebhookTarget::default());
    let provider = Arc::new(Provider {
        links: Links::default(),
        pay_url_base: format!("{base_url}/pay/"),
        webhook: Arc::clone(&webhook),
    });
    Router::new()
        .route("/v1/payment_links", post(create_link))
        .route("/v1/payment_links/{id}", get(get_link))
        .route("/__sandbox/payment_links/{id}/pay", post(pay_link))
        .route("/pay/{id}", get(checkout_page).post(pay_from_page))
        .with_state(provider)
        .merge(webhook::control_routes(webhook))
}

/// `t=<created>,v1=<hex HMAC-SHA256 of "<created>.<body>">`, Stripe's signature header.
fn stripe_signature(secret: &str, created: u64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any size");
    mac.update(format!("{created}.{body}").as_bytes());
    format!(
        "t={created},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    crate::clock::now_s()
}

async fn create_link(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PaymentLink>), ApiError> {
    require_bearer(&headers, PAYMENT_API_KEY)?;
    let request = NewLink::parse(parse_json_body::<Value>(body)?)?;
    match provider
        .links
        .create(request, &provider.pay_url_base, now())?
    {
        Created::New(link) => Ok((StatusCode::CREATED, Json(link))),
        Created::Existing(link) => Ok((StatusCode::OK, Json(link))),
    }
}

async fn get_link(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PaymentLink>, ApiError> {
    require_bearer(&headers, PAYMENT_API_KEY)?;
    let Path(id) = path?;
    provider
        .links
        .get(&id, now())
        .map(Json)
        .ok_or_else(|| unknown_link(&id))
}

async fn pay_link(
    State(provider): State<Arc<Provider>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PaymentLink>, ApiError> {
    let Path(id) = path?;
    provider.pay(&id).await.map(Json)
}

async fn checkout_page(
    State(provider): State<Arc<Provider>>,
    path: Result<Path<String>, PathRejection>,
) -> (StatusCode, Html<String>) {
    match provider.find(path) {
        Some(link) => (StatusCode::OK, Html(page::checkout(&link))),
        None => (StatusCode::NOT_FOUND, Html(page::unknown())),
    }
}

/// The page's Pay button: pays, then shows the page again (post/redirect/get).
async fn pay_from_page(
    State(provider): State<Arc<Provider>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let Some(link) = provider.find(path) else {
        return (StatusCode::NOT_FOUND, Html(page::unknown())).into_response();
    };
    // An expired link cannot be paid; the page redirected to says so.
    let _ = provider.pay(&link.id).await;
    Redirect::to(&format!("/pay/{}", link.id)).into_response()
}

impl Provider {
    /// Pays the link and, the first time, sends `payment_link.paid` to the webhook URL (if
    /// one is set) before answering, so whoever paid sees its effects.
    async fn pay(&self, id: &str) -> Result<PaymentLink, ApiError> {
        let (link, paid_now) = self.links.pay(id, now())?;
        if paid_now {
            self.send_paid(&link).await;
        }
        Ok(link)
    }

    async fn send_paid(&self, link: &PaymentLink) {
        let WebhookConfig {
            url: Some(url),
            secret,
        } = self.webhook.config()
        else {
            return;
        };
        let created = now();
        let body = json!({
            "id": format!("evt_{}", link.id.trim_start_matches("plink_")),
            "type": "payment_link.paid",
            "created": created,
            "data": { "object": link },
        })
        .to_string();
        let mut request = webhook::client()
            .post(&url)
            .header("content-type", "application/json");
        if let Some(secret) = secret {
            request = request.header(
                "stripe-signature",
                stripe_signature(&secret, created, &body),
            );
        }
        self.webhook.send(&url, request.body(body)).await;
    }

    /// The link a page path names, as it reads now.
    fn find(&self, path: Result<Path<String>, PathRejection>) -> Option<PaymentLink> {
        let Path(id) = path.ok()?;
        self.links.get(&id, now())
    }
}

#[cfg(test)]
mod tests;
