//! The `call` webhook: Ringostat's request at one moment of a call, authenticated by the
//! secret key in its URL, becomes one normalized `call.*` event.

use switchboard_sdk::{
    Error, Event, Serialize, WebhookOutcome, config, http, signature::verify_secret,
};

use crate::moment::Moment;
use crate::payload::{Payload, payload_invalid};

/// The secret Ringostat appends to the integration's URL as `key`.
pub(crate) const URL_KEY: &str = "url_key";
/// The longest call id taken, so that event ids stay within the host's limit.
const MAX_CALL_ID_CHARS: usize = 128;
/// The longest unknown moment name echoed in an error message.
const ECHO_CHARS: usize = 64;

/// Verifies the URL key, then reads the moment's parameters into an event.
pub(crate) fn receive(request: &http::Request) -> Result<WebhookOutcome, Error> {
    let key = config::require_secret(URL_KEY)?;
    verify_secret(&key, request.query_param("key").as_deref()).map_err(|error| Error {
        message: format!(
            "{}: Ringostat must call the hook's URL with `?key=<url_key>` appended",
            key_problem(&error.code)
        ),
        ..error
    })?;
    let event = event_of(&Payload::parse(request)?)?;
    Ok(WebhookOutcome {
        response: http::Response::new(200)
            .header("content-type", "application/json")
            .body(br#"{"ok":true}"#.to_vec()),
        events: vec![event],
    })
}

fn key_problem(code: &str) -> &'static str {
    if code == "signature_missing" {
        "the `key` query parameter is missing"
    } else {
        "the `key` query parameter does not match the secret `url_key`"
    }
}

/// The data of a `call.*` event; absent parameters are left out.
#[derive(Debug, Serialize)]
struct CallData {
    call_id: String,
    moment: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    called: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    talk_s: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recording_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rating: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    utm: Option<Utm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
}

/// Where the caller came from, as Ringostat tracked it.
#[derive(Debug, Serialize)]
struct Utm {
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign: Option<String>,
}

impl Utm {
    /// The UTM parameters, or none when Ringostat sent none of them.
    fn of(payload: &Payload<'_>) -> Option<Utm> {
        let utm = Utm {
            source: payload.text("utm_source"),
            medium: payload.text("utm_medium"),
            campaign: payload.text("utm_campaign"),
        };
        (utm.source.is_some() || utm.medium.is_some() || utm.campaign.is_some()).then_some(utm)
    }
}

/// The event of one webhook: `ringostat:<uniqueid>:<moment>[:<step>]`, about the call.
fn event_of(payload: &Payload<'_>) -> Result<Event, Error> {
    let moment = moment_of(payload)?;
    let call_id = call_id_of(payload)?;
    let step = payload.number("step")?;
    let id = match (moment, step) {
        (Moment::ForwardingStep, Some(step)) => {
            format!("ringostat:{call_id}:{}:{step}", moment.name())
        }
        (Moment::ForwardingStep, None) => {
            return Err(payload_invalid(
                "a `forwarding_step` webhook needs the `step` parameter",
            ));
        }
        _ => format!("ringostat:{call_id}:{}", moment.name()),
    };
    let data = CallData {
        call_id: call_id.clone(),
        moment: moment.name(),
        caller: payload.text("caller"),
        called: payload.text("dst"),
        direction: payload.text("call_type"),
        step,
        agent: payload.text("employee"),
        disposition: payload.text("disposition").map(|text| disposition(&text)),
        duration_s: payload.number("duration")?,
        talk_s: payload.number("billsec")?,
        recording_url: payload.text("recording"),
        rating: payload.number("rating")?,
        utm: Utm::of(payload),
        time: payload.text("calldate"),
    };
    let data = serde_json::to_string(&data)
        .map_err(|e| payload_invalid(format!("the call's data cannot be written as JSON: {e}")))?;
    Ok(Event {
        id,
        kind: moment.kind().to_owned(),
        subject: Some(call_id),
        time_ms: 0,
        data,
    })
}

fn moment_of(payload: &Payload<'_>) -> Result<Moment, Error> {
    let name = payload.text("event").ok_or_else(|| {
        payload_invalid("the `event` parameter (the moment, e.g. `call_completed`) is missing")
    })?;
    Moment::named(&name).ok_or_else(|| {
        let shown: String = name.chars().take(ECHO_CHARS).collect();
        Error::new(
            "moment_unknown",
            format!(
                "`{shown}` is not a Ringostat moment; expected one of {}",
                Moment::ALL.map(Moment::name).join(", ")
            ),
        )
    })
}

fn call_id_of(payload: &Payload<'_>) -> Result<String, Error> {
    let call_id = payload
        .text("uniqueid")
        .ok_or_else(|| payload_invalid("the `uniqueid` parameter (the call id) is missing"))?;
    if call_id.chars().count() > MAX_CALL_ID_CHARS {
        return Err(payload_invalid(format!(
            "the `uniqueid` parameter is longer than {MAX_CALL_ID_CHARS} characters"
        )));
    }
    Ok(call_id)
}

/// `ANSWERED`, `NO ANSWER`, `BUSY`, `FAILED` as `answered`, `no_answer`, `busy`, `failed`.
fn disposition(text: &str) -> String {
    text.to_lowercase().replace([' ', '-'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn event_from(body: Value) -> Result<Event, Error> {
        let request = http::Request::new("POST", "http://h/v1/hooks/ringostat/call?key=k")
            .body(body.to_string());
        event_of(&Payload::parse(&request)?)
    }

    #[test]
    fn a_completed_call_becomes_call_completed_with_normalized_fields() -> Result<(), Error> {
        let event = event_from(json!({
            "event": "call_completed", "uniqueid": "1700000000.7", "caller": "+380501234567",
            "dst": "+380441112233", "calldate": "2023-11-14 22:13:20", "call_type": "in",
            "employee": "petro", "disposition": "NO ANSWER", "duration": 30, "billsec": "0",
            "utm_source": "google"
        }))?;
        assert_eq!(event.id, "ringostat:1700000000.7:call_completed");
        assert_eq!(event.kind, "call.completed");
        assert_eq!(event.subject.as_deref(), Some("1700000000.7"));
        let data: Value = event.data_json()?;
        assert_eq!(
            data,
            json!({
                "call_id": "1700000000.7", "moment": "call_completed",
                "caller": "+380501234567", "called": "+380441112233", "direction": "in",
                "agent": "petro", "disposition": "no_answer", "duration_s": 30, "talk_s": 0,
                "utm": {"source": "google"}, "time": "2023-11-14 22:13:20"
            })
        );
        Ok(())
    }

    #[test]
    fn forwarding_steps_have_their_step_in_the_id() -> Result<(), Error> {
        let event = event_from(json!({"event": "forwarding_step", "uniqueid": "1.2", "step": 3}))?;
        assert_eq!(
            (event.id.as_str(), event.kind.as_str()),
            ("ringostat:1.2:forwarding_step:3", "call.forwarded")
        );
        let without_step = event_from(json!({"event": "forwarding_step", "uniqueid": "1.2"}));
        assert_eq!(
            without_step.err().map(|e| e.code).as_deref(),
            Some("payload_invalid")
        );
        Ok(())
    }

    #[test]
    fn unknown_moments_and_missing_ids_are_refused_with_their_codes() {
        let code = |body: Value| event_from(body).err().map(|e| e.code);
        assert_eq!(
            code(json!({"event": "call.completed", "uniqueid": "1"})).as_deref(),
            Some("moment_unknown")
        );
        assert_eq!(
            code(json!({"event": "call_completed"})).as_deref(),
            Some("payload_invalid")
        );
        assert_eq!(
            code(json!({"uniqueid": "1"})).as_deref(),
            Some("payload_invalid")
        );
        assert_eq!(
            code(json!({"event": "rating_done", "uniqueid": "1", "rating": "five"})).as_deref(),
            Some("payload_invalid")
        );
    }
}
