//! Clink's call-end push (挂机推送): authenticated by the token in the URL the operator
//! gave Clink, it ends the agent's in-call mark and becomes `call.ended`.

use switchboard_sdk::{
    Deserialize, Error, Event, Serialize, WebhookOutcome, config, http, signature,
};

use crate::marks;

/// The event a call-end push becomes.
pub(crate) const ENDED: &str = "call.ended";

/// The push as Clink sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallEndPush {
    cno: String,
    unique_id: String,
    customer_number: String,
    #[serde(default)]
    user_field: Option<String>,
    start_time: u64,
    end_time: u64,
    status: String,
    hangup_side: String,
}

/// The data of `call.ended`.
#[derive(Serialize)]
struct CallEnded {
    unique_id: String,
    cno: String,
    customer_number: String,
    user_field: Option<String>,
    status: String,
    hangup_side: String,
    start_time: u64,
    end_time: u64,
}

/// Verifies the `token` query parameter against the secret `push_token`, clears the
/// agent's in-call mark and answers `{"res":0}` with one `call.ended` event.
pub(crate) fn call_end(request: &http::Request) -> Result<WebhookOutcome, Error> {
    let token = config::require_secret("push_token")?;
    signature::verify_secret(&token, request.query_param("token").as_deref())?;
    let push: CallEndPush = serde_json::from_slice(&request.body).map_err(|e| {
        Error::new(
            "payload_invalid",
            format!("the body is not a Clink call-end push: {e}"),
        )
    })?;
    if push.unique_id.is_empty() || push.cno.is_empty() {
        return Err(Error::new(
            "payload_invalid",
            "the call-end push has an empty uniqueId or cno",
        ));
    }
    marks::end_call(&push.cno, &push.unique_id)?;
    let event = ended_event(push)?;
    Ok(WebhookOutcome {
        response: http::Response::new(200)
            .header("Content-Type", "application/json")
            .body(br#"{"res":0}"#.to_vec()),
        events: vec![event],
    })
}

/// `call.ended` about the call, with an id Clink's resends share.
fn ended_event(push: CallEndPush) -> Result<Event, Error> {
    let ended = CallEnded {
        unique_id: push.unique_id,
        cno: push.cno,
        customer_number: push.customer_number,
        user_field: push.user_field.filter(|text| !text.is_empty()),
        status: push.status,
        hangup_side: push.hangup_side,
        start_time: push.start_time,
        end_time: push.end_time,
    };
    let data = serde_json::to_string(&ended)
        .map_err(|e| Error::new("payload_invalid", format!("cannot encode the call: {e}")))?;
    Ok(Event {
        id: format!("clink:{}:end", ended.unique_id),
        kind: ENDED.to_owned(),
        subject: Some(ended.unique_id),
        time_ms: ended.end_time.saturating_mul(1000),
        data,
    })
}
