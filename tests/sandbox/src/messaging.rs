//! The fake messaging gateway: IM customer-service messages in the style of WeChat and SMS
//! in the style of Aliyun SMS, with customers' IM messages pushed to a webhook.
//!
//! API (`Authorization: Bearer sk_sandbox_messaging`, else HTTP 401 `unauthorized`):
//! - `POST /v1/im/messages` `{"touser","msgtype","text"|"image"|"file"|"template":{…}}` →
//!   `{"errcode":0,"errmsg":"ok","msgid"}`; failures are HTTP 200 with WeChat's `errcode`
//!   (see [`im`]).
//! - `POST /v1/sms/messages` `{"phone","text"?,"template_id"?,"params"?,"sign_name"?}` →
//!   `{"code":"OK","message":"OK","message_id","segments"}`; failures are HTTP 200 with
//!   Aliyun's `isv.*` code (see [`sms`]).
//!
//! Control routes (no key): `POST /__sandbox/im/inbound` plays a customer writing (pushed
//! as [`inbound`] describes to the URL set with `PUT /__sandbox/webhook`), `GET
//! /__sandbox/im/messages?to=` and `GET /__sandbox/sms/messages?phone=` show what customers
//! received, `GET|PUT /__sandbox/sms/account` `{"balance_exhausted"}` drains or tops up the
//! SMS balance. This module owns the routes; the checks live in the submodules.

mod im;
mod inbound;
mod sms;
mod templates;

use std::sync::Arc;
use std::time::Instant;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Query, State,
        rejection::{BytesRejection, QueryRejection},
    },
    http::HeaderMap,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::MESSAGING_API_KEY;
use crate::auth::require_bearer;
use crate::error::ApiError;
use crate::upstream::parse_json_body;
use crate::webhook::{self, WebhookTarget};

/// What the messaging routes share.
#[derive(Debug)]
struct Gateway {
    im: im::Outbox,
    sms: sms::Gateway,
    /// Where customers' IM messages are pushed.
    webhook: Arc<WebhookTarget>,
}

/// The provider's routes; faults, counting and the shared control routes are added by
/// `upstream`.
pub(crate) fn routes() -> Router {
    let webhook = Arc::new(WebhookTarget::default());
    let gateway = Arc::new(Gateway {
        im: im::Outbox::default(),
        sms: sms::Gateway::default(),
        webhook: Arc::clone(&webhook),
    });
    Router::new()
        .route("/v1/im/messages", post(send_im))
        .route("/v1/sms/messages", post(send_sms))
        .route("/__sandbox/im/inbound", post(push_inbound))
        .route("/__sandbox/im/messages", get(list_im))
        .route("/__sandbox/sms/messages", get(list_sms))
        .route("/__sandbox/sms/account", get(get_account).put(put_account))
        .with_state(gateway)
        .merge(webhook::control_routes(webhook))
}

/// Unix seconds now.
/// Seconds since the Unix epoch.
fn now() -> u64 {
    crate::clock::now_s()
}

async fn send_im(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_bearer(&headers, MESSAGING_API_KEY)?;
    let reply = match im::parse(&body?) {
        Ok(message) => {
            let msgid = gateway.im.deliver(message, now());
            json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })
        }
        Err(error) => json!(error),
    };
    Ok(Json(reply))
}

async fn send_sms(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    require_bearer(&headers, MESSAGING_API_KEY)?;
    let sent = sms::parse(&body?).and_then(|sms| gateway.sms.send(sms, Instant::now(), now()));
    let reply = match sent {
        Ok(received) => json!({
            "code": "OK",
            "message": "OK",
            "message_id": received.message_id,
            "segments": received.segments,
        }),
        Err(error) => json!(error),
    };
    Ok(Json(reply))
}

async fn push_inbound(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let pushed = inbound::push(&gateway.webhook, parse_json_body(body)?).await?;
    Ok(Json(json!(pushed)))
}

/// `?to=<openid>` of `GET /__sandbox/im/messages`.
#[derive(Deserialize)]
struct ImFilter {
    #[serde(default)]
    to: Option<String>,
}

async fn list_im(
    State(gateway): State<Arc<Gateway>>,
    query: Result<Query<ImFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(filter) = query.map_err(query_error)?;
    Ok(Json(
        json!({ "messages": gateway.im.to(filter.to.as_deref()) }),
    ))
}

/// `?phone=<number>` of `GET /__sandbox/sms/messages`.
#[derive(Deserialize)]
struct SmsFilter {
    #[serde(default)]
    phone: Option<String>,
}

async fn list_sms(
    State(gateway): State<Arc<Gateway>>,
    query: Result<Query<SmsFilter>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(filter) = query.map_err(query_error)?;
    Ok(Json(
        json!({ "messages": gateway.sms.received(filter.phone.as_deref()) }),
    ))
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::invalid_request(format!(
        "the query string is not valid: {}",
        rejection.body_text()
    ))
}

/// The SMS account as `GET|PUT /__sandbox/sms/account` show and take it.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    balance_exhausted: bool,
}

async fn get_account(State(gateway): State<Arc<Gateway>>) -> Json<Account> {
    Json(Account {
        balance_exhausted: gateway.sms.balance_exhausted(),
    })
}

async fn put_account(
    State(gateway): State<Arc<Gateway>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Account>, ApiError> {
    let account: Account = parse_json_body(body)?;
    gateway.sms.set_balance_exhausted(account.balance_exhausted);
    Ok(Json(account))
}

#[cfg(test)]
mod tests;
