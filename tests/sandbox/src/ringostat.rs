//! The fake Ringostat: call tracking that plays calls and sends their webhooks.
//!
//! Ringostat is not called by connectors: it calls them. At five moments of a call it sends
//! a webhook to the integration's URL, with the integration's secret key appended as the
//! `key` query parameter. There is no `/v1/` API; the routes are:
//!
//! - `POST /__sandbox/ringostat/calls` plays one call: `{"caller", "number" (the tracked
//!   number dialled), "extensions": [names tried in order, 1-20], "answered_by": index or
//!   null (missed), "talk_s" (0-86400, answered only, default 0), "rating" (1-5 or null,
//!   answered only), "ring_s" (seconds each extension rings, 1-600, default 15), "busy"
//!   (a missed call found the lines busy, default false), "utm_source", "utm_medium",
//!   "utm_campaign" (optional), "encoding": "json" (default) | "form" | "query"}`. It sends,
//!   in order and each awaited before the next, `call_initiated`; one `forwarding_step` per
//!   extension tried (up to and including the one that answered, or all when missed);
//!   `call_answered` if answered; `call_completed`; `rating_done` if rated. It answers
//!   `200 {"call_id", "deliveries": [{"moment", "step" (forwarding steps), "url" (without
//!   the key), "status" (null if unreachable), "detail"}]}`, `deliveries` empty when no
//!   webhook URL is set; a bad body is `400 invalid_request` naming the field in `param`.
//! - `GET|PUT /__sandbox/webhook` `{"url", "secret"}` and `GET /__sandbox/webhook/sent`
//!   (see `webhook`): where the webhooks go and the key.
//! - `GET /recordings/{uniqueid}.mp3`: an answered call's recording (`audio/mpeg`), 404
//!   `not_found` otherwise.
//!
//! Every webhook carries `event` (the moment), `uniqueid` (`<unix seconds>.<sequence>`),
//! `caller`, `dst` (the tracked number), `calldate` (`YYYY-MM-DD HH:MM:SS`, UTC, the call's
//! start) and `call_type` (`in`), then by moment: `step` (1-based) and `employee` (the
//! extension rung) for `forwarding_step`; `step` and `employee` (who answered) for
//! `call_answered`; `disposition` (`ANSWERED`, `NO ANSWER`, `BUSY`), `duration` (every
//! extension's ringing plus the talk, seconds), `billsec` (the talk), and when answered
//! `employee` and `recording` (URL) for `call_completed`; `rating` and `employee` for
//! `rating_done`; and last the `utm_*` given. As JSON, numbers are numbers; as a form or
//! query every value is text. The call and its moments live in [`call`], the wire format in
//! [`send`].

mod call;
mod send;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{
        Path, State,
        rejection::{BytesRejection, PathRejection},
    },
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Serialize;

use crate::error::ApiError;
use crate::upstream::parse_json_body;
use crate::webhook::{self, Delivery, WebhookConfig, WebhookTarget};
use call::{Call, NewCall, Webhook};

/// Where recordings are served, followed by `<uniqueid>.mp3`.
const RECORDINGS_PATH: &str = "/recordings/";
/// The bytes of every recording: an empty ID3v2.4 tag, enough for a player to call it MP3.
const RECORDING_BYTES: &[u8] = b"ID3\x04\x00\x00\x00\x00\x00\x00";

/// What the Ringostat routes share.
#[derive(Debug)]
struct Ringostat {
    /// Where the webhooks go.
    webhook: Arc<WebhookTarget>,
    /// The sequence part of the next `uniqueid`.
    sequence: AtomicU64,
    /// The calls that were answered, so have a recording.
    recorded: Mutex<HashSet<String>>,
}

/// The provider's routes; faults, counting and the shared control routes are added by
/// `upstream`.
pub(crate) fn routes() -> Router {
    let webhook = Arc::new(WebhookTarget::default());
    let ringostat = Arc::new(Ringostat {
        webhook: Arc::clone(&webhook),
        // A random start keeps ids unique across sandbox restarts within one second.
        sequence: AtomicU64::new(rand::random::<u64>() % 1_000_000),
        recorded: Mutex::default(),
    });
    Router::new()
        .route("/__sandbox/ringostat/calls", post(play_call))
        .route("/recordings/{file}", get(recording))
        .with_state(ringostat)
        .merge(webhook::control_routes(webhook))
}

/// What became of one moment's webhook.
#[derive(Debug, Serialize)]
struct MomentDelivery {
    /// The `event` parameter, e.g. `forwarding_step`.
    moment: &'static str,
    /// The 1-based forwarding step, for `forwarding_step`.
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<usize>,
    /// Where it went (without the key), the receiver's status and answer.
    #[serde(flatten)]
    delivery: Delivery,
}

/// The answer to playing a call.
#[derive(Debug, Serialize)]
struct Played {
    /// The call's `uniqueid`.
    call_id: String,
    /// One entry per webhook sent, in order; empty when no webhook URL is set.
    deliveries: Vec<MomentDelivery>,
}

/// `POST /__sandbox/ringostat/calls`: plays a call and sends its webhooks.
async fn play_call(
    State(ringostat): State<Arc<Ringostat>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Played>, ApiError> {
    let new_call: NewCall = parse_json_body(body)?;
    let encoding = new_call.encoding;
    let started = now();
    let call = new_call.into_call(ringostat.next_id(started), started)?;
    if call.answered() {
        ringostat
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(call.id.clone());
    }
    let recording = recording_url(&headers, &call);
    let mut deliveries = Vec::new();
    if let WebhookConfig {
        url: Some(url),
        secret,
    } = ringostat.webhook.config()
    {
        for hook in call.webhooks(&recording) {
            deliveries.push(
                ringostat
                    .deliver(&url, secret.as_deref(), encoding, hook)
                    .await,
            );
        }
    }
    Ok(Json(Played {
        call_id: call.id,
        deliveries,
    }))
}

/// `GET /recordings/{uniqueid}.mp3`: an answered call's recording.
async fn recording(
    State(ringostat): State<Arc<Ringostat>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(file) = path?;
    let known = file.strip_suffix(".mp3").is_some_and(|id| {
        ringostat
            .recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    });
    if !known {
        return Err(ApiError::not_found(format!(
            "no recording `{file}`: only answered calls are recorded"
        )));
    }
    Ok(([(header::CONTENT_TYPE, "audio/mpeg")], RECORDING_BYTES).into_response())
}

impl Ringostat {
    /// `<unix seconds>.<sequence>`, the shape of Asterisk's `uniqueid`.
    fn next_id(&self, started: u64) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{started}.{sequence}")
    }

    /// Sends one moment's webhook and records how it went under the URL without its key.
    async fn deliver(
        &self,
        url: &str,
        secret: Option<&str>,
        encoding: send::Encoding,
        hook: Webhook,
    ) -> MomentDelivery {
        let request = send::request(url, secret, encoding, &hook.params);
        MomentDelivery {
            moment: hook.moment.as_str(),
            step: hook.step,
            delivery: self.webhook.send(url, request).await,
        }
    }
}

/// The recording's URL on this server, as the caller reached it.
fn recording_url(headers: &HeaderMap, call: &Call) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("127.0.0.1:18085");
    format!("http://{host}{RECORDINGS_PATH}{}.mp3", call.id)
}

fn now() -> u64 {
    crate::clock::now_s()
}

#[cfg(test)]
mod tests;
