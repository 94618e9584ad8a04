//! The fake payment provider: a payment-link API in the style of Stripe.
//!
//! `POST /v1/payment_links` and `GET /v1/payment_links/{id}` with `Authorization: Bearer
//! sk_sandbox_payment`; `GET /pay/{id}` is the page a customer opens; `POST
//! /__sandbox/payment_links/{id}/pay` lets a test play the customer who pays. This module
//! owns the routes; the link and its checks live in [`link`], memory in [`store`], the HTML
//! in [`page`].

mod link;
mod page;
mod store;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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
use serde_json::Value;

use crate::PAYMENT_API_KEY;
use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::upstream::parse_json_body;
use link::{NewLink, PaymentLink};
use store::{Created, Links, unknown_link};

/// What the payment routes share.
#[derive(Debug)]
struct Provider {
    links: Links,
    /// Link URLs are this plus the link id, e.g. `http://127.0.0.1:18082/pay/`.
    pay_url_base: String,
}

/// The provider's routes for a server reachable at `base_url`; faults, counting and the
/// shared control routes are added by `upstream`.
pub(crate) fn routes(base_url: &str) -> Router {
    let provider = Arc::new(Provider {
        links: Links::default(),
        pay_url_base: format!("{base_url}/pay/"),
    });
    Router::new()
        .route("/v1/payment_links", post(create_link))
        .route("/v1/payment_links/{id}", get(get_link))
        .route("/__sandbox/payment_links/{id}/pay", post(pay_link))
        .route("/pay/{id}", get(checkout_page).post(pay_from_page))
        .with_state(provider)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
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
    provider.links.pay(&id, now()).map(Json)
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
    let _ = provider.links.pay(&link.id, now());
    Redirect::to(&format!("/pay/{}", link.id)).into_response()
}

impl Provider {
    /// The link a page path names, as it reads now.
    fn find(&self, path: Result<Path<String>, PathRejection>) -> Option<PaymentLink> {
        let Path(id) = path.ok()?;
        self.links.get(&id, now())
    }
}

#[cfg(test)]
mod tests;
