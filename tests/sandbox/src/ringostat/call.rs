//! One call a test plays, and the webhooks Ringostat sends for it.
//!
//! This module owns the rules of a call (who is tried, who answers, how long it lasts) and
//! the parameters of each moment's webhook; sending them is the parent's job.

use serde::Deserialize;
use serde_json::{Value, json};

use super::send::{Encoding, calldate};
use crate::error::ApiError;

/// Most extensions one call may try.
const MAX_EXTENSIONS: usize = 20;
/// Longest talk time the sandbox plays, in seconds (a day).
const MAX_TALK_S: u64 = 86_400;
/// Longest an extension may ring before the next is tried, in seconds.
const MAX_RING_S: u64 = 600;
/// How long each extension rings when the request does not say, in seconds.
const DEFAULT_RING_S: u64 = 15;
/// Longest phone number or tracked number, in characters.
const MAX_NUMBER_CHARS: usize = 32;
/// Longest extension name or UTM value, in characters.
const MAX_TEXT_CHARS: usize = 200;

/// The five moments Ringostat sends a webhook at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// The call reached the tracked number.
    CallInitiated,
    /// One step of the forwarding scheme: an extension is rung.
    ForwardingStep,
    /// An extension picked up.
    CallAnswered,
    /// The call ended, answered or not.
    CallCompleted,
    /// The caller finished the rating menu after the talk.
    RatingDone,
}

impl Moment {
    /// The value of the `event` parameter.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Moment::CallInitiated => "call_initiated",
            Moment::ForwardingStep => "forwarding_step",
            Moment::CallAnswered => "call_answered",
            Moment::CallCompleted => "call_completed",
            Moment::RatingDone => "rating_done",
        }
    }
}

/// The body of `POST /__sandbox/ringostat/calls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCall {
    caller: String,
    number: String,
    extensions: Vec<String>,
    #[serde(default)]
    answered_by: Option<u64>,
    #[serde(default)]
    talk_s: u64,
    #[serde(default = "default_ring_s")]
    ring_s: u64,
    #[serde(default)]
    rating: Option<u64>,
    #[serde(default)]
    busy: bool,
    #[serde(default)]
    utm_source: Option<String>,
    #[serde(default)]
    utm_medium: Option<String>,
    #[serde(default)]
    utm_campaign: Option<String>,
    #[serde(default)]
    pub(crate) encoding: Encoding,
}

fn default_ring_s() -> u64 {
    DEFAULT_RING_S
}

/// A checked call, ready to play.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Ringostat's `uniqueid`: `<unix seconds>.<sequence>`, as Asterisk writes it.
    pub(crate) id: String,
    caller: String,
    number: String,
    extensions: Vec<String>,
    answered: Option<usize>,
    talk_s: u64,
    ring_s: u64,
    rating: Option<u64>,
    busy: bool,
    utm: Vec<(&'static str, String)>,
    started: u64,
}

/// One webhook of a call: its moment, its forwarding step and its parameters in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Webhook {
    pub(crate) moment: Moment,
    pub(crate) step: Option<usize>,
    pub(crate) params: Vec<(&'static str, Value)>,
}

impl NewCall {
    /// Checks the request and makes it the call `id`, started at `started` (Unix seconds).
    pub(crate) fn into_call(self, id: String, started: u64) -> Result<Call, ApiError> {
        text("caller", &self.caller, MAX_NUMBER_CHARS)?;
        text("number", &self.number, MAX_NUMBER_CHARS)?;
        self.check_extensions()?;
        let answered = self.answered_index()?;
        self.check_outcome(answered.is_some())?;
        let utm = [
            ("utm_source", self.utm_source),
            ("utm_medium", self.utm_medium),
            ("utm_campaign", self.utm_campaign),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .map(|(name, value)| text(name, &value, MAX_TEXT_CHARS).map(|()| (name, value)))
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Call {
            id,
            caller: self.caller,
            number: self.number,
            extensions: self.extensions,
            answered,
            talk_s: self.talk_s,
            ring_s: self.ring_s,
            rating: self.rating,
            busy: self.busy,
            utm,
            started,
        })
    }

    fn check_extensions(&self) -> Result<(), ApiError> {
        if self.extensions.is_empty() || self.extensions.len() > MAX_EXTENSIONS {
            return Err(ApiError::invalid_param(
                "extensions",
                format!("a call tries 1-{MAX_EXTENSIONS} extensions"),
            ));
        }
        self.extensions
            .iter()
            .try_for_each(|extension| text("extensions", extension, MAX_TEXT_CHARS))
    }

    fn answered_index(&self) -> Result<Option<usize>, ApiError> {
        let Some(index) = self.answered_by else {
            return Ok(None);
        };
        usize::try_from(index)
            .ok()
            .filter(|index| *index < self.extensions.len())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid_param(
                    "answered_by",
                    format!(
                        "`answered_by` is an index into `extensions` (0-{})",
                        self.extensions.len().saturating_sub(1)
                    ),
                )
            })
    }

    fn check_outcome(&self, answered: bool) -> Result<(), ApiError> {
        if self.talk_s > MAX_TALK_S || (!answered && self.talk_s > 0) {
            return Err(ApiError::invalid_param(
                "talk_s",
                format!("an answered call talks 0-{MAX_TALK_S} s; a missed call does not talk"),
            ));
        }
        if !(1..=MAX_RING_S).contains(&self.ring_s) {
            return Err(ApiError::invalid_param(
                "ring_s",
                format!("an extension rings 1-{MAX_RING_S} s"),
            ));
        }
        if self.rating.is_some_and(|rating| !(1..=5).contains(&rating))
            || (!answered && self.rating.is_some())
        {
            return Err(ApiError::invalid_param(
                "rating",
                "a rating is 1-5, and only an answered call reaches the rating menu",
            ));
        }
        if answered && self.busy {
            return Err(ApiError::invalid_param(
                "busy",
                "only a missed call can have found the lines busy",
            ));
        }
        Ok(())
    }
}

/// `value` when it is 1 to `max` characters and not only whitespace.
fn text(param: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid_param(
            param,
            format!("`{param}` must be 1-{max} characters, not blank"),
        ));
    }
    Ok(())
}

impl Call {
    /// Whether someone picked up, so the talk was recorded.
    pub(crate) fn answered(&self) -> bool {
        self.answered.is_some()
    }

    /// Every webhook of the call, in the order Ringostat sends them; `recording` is the URL
    /// of the talk's recording.
    pub(crate) fn webhooks(&self, recording: &str) -> Vec<Webhook> {
        let tried = self
            .answered
            .map_or(self.extensions.len(), |index| index + 1);
        let mut webhooks = vec![self.webhook(Moment::CallInitiated, None, Vec::new())];
        for step in 1..=tried {
            webhooks.push(self.webhook(Moment::ForwardingStep, Some(step), Vec::new()));
        }
        if self.answered.is_some() {
            webhooks.push(self.webhook(Moment::CallAnswered, Some(tried), Vec::new()));
        }
        webhooks.push(self.webhook(
            Moment::CallCompleted,
            None,
            self.completion(tried, recording),
        ));
        if let Some(rating) = self.rating {
            webhooks.push(self.webhook(Moment::RatingDone, None, vec![("rating", json!(rating))]));
        }
        webhooks
    }

    /// What `call_completed` adds: the outcome, the times and the recording.
    fn completion(&self, tried: usize, recording: &str) -> Vec<(&'static str, Value)> {
        let rung = self
            .ring_s
            .saturating_mul(u64::try_from(tried).unwrap_or(u64::MAX));
        let disposition = match (self.answered.is_some(), self.busy) {
            (true, _) => "ANSWERED",
            (false, true) => "BUSY",
            (false, false) => "NO ANSWER",
        };
        let mut params = vec![
            ("disposition", json!(disposition)),
            ("duration", json!(rung.saturating_add(self.talk_s))),
            ("billsec", json!(self.talk_s)),
        ];
        if self.answered.is_some() {
            params.push(("recording", json!(recording)));
        }
        params
    }

    /// A moment's webhook: the parameters every moment carries, the step's extension (or the
    /// one who answered), then `extra`.
    fn webhook(
        &self,
        moment: Moment,
        step: Option<usize>,
        extra: Vec<(&'static str, Value)>,
    ) -> Webhook {
        let mut params = vec![
            ("event", json!(moment.as_str())),
            ("uniqueid", json!(self.id)),
            ("caller", json!(self.caller)),
            ("dst", json!(self.number)),
            ("calldate", json!(calldate(self.started))),
            ("call_type", json!("in")),
        ];
        if let Some(step) = step {
            params.push(("step", json!(step)));
        }
        let employee = match (moment, step) {
            (Moment::ForwardingStep, Some(step)) => step
                .checked_sub(1)
                .and_then(|index| self.extensions.get(index)),
            (Moment::CallInitiated | Moment::ForwardingStep, _) => None,
            _ => self.answered.and_then(|index| self.extensions.get(index)),
        };
        if let Some(employee) = employee {
            params.push(("employee", json!(employee)));
        }
        params.extend(extra);
        params.extend(
            self.utm
                .iter()
                .map(|(name, value)| (*name, Value::String(value.clone()))),
        );
        Webhook {
            moment,
            step: (moment == Moment::ForwardingStep).then_some(step).flatten(),
            params,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_call(body: Value) -> anyhow::Result<NewCall> {
        Ok(serde_json::from_value(body)?)
    }

    fn moments(webhooks: &[Webhook]) -> Vec<(&'static str, Option<usize>)> {
        webhooks
            .iter()
            .map(|w| (w.moment.as_str(), w.step))
            .collect()
    }

    fn param<'a>(webhook: &'a Webhook, name: &str) -> Option<&'a Value> {
        webhook
            .params
            .iter()
            .find(|(candidate, _)| *candidate == name)
            .map(|(_, value)| value)
    }

    #[test]
    fn an_answered_and_rated_call_sends_every_moment_up_to_the_answering_step() -> anyhow::Result<()>
    {
        let call = new_call(json!({
            "caller": "+380501234567", "number": "+380441112233",
            "extensions": ["anna", "petro", "olena"], "answered_by": 1,
            "talk_s": 95, "ring_s": 10, "rating": 5, "utm_source": "google"
        }))?
        .into_call("1700000000.7".into(), 1_700_000_000)?;
        let webhooks = call.webhooks("http://r/1.mp3");
        assert_eq!(
            moments(&webhooks),
            vec![
                ("call_initiated", None),
                ("forwarding_step", Some(1)),
                ("forwarding_step", Some(2)),
                ("call_answered", None),
                ("call_completed", None),
                ("rating_done", None),
            ]
        );
        assert_eq!(param(&webhooks[1], "employee"), Some(&json!("anna")));
        assert_eq!(param(&webhooks[3], "employee"), Some(&json!("petro")));
        assert_eq!(param(&webhooks[3], "step"), Some(&json!(2)));
        let completed = &webhooks[4];
        assert_eq!(param(completed, "disposition"), Some(&json!("ANSWERED")));
        assert_eq!(param(completed, "duration"), Some(&json!(115)));
        assert_eq!(param(completed, "billsec"), Some(&json!(95)));
        assert_eq!(
            param(completed, "recording"),
            Some(&json!("http://r/1.mp3"))
        );
        assert_eq!(
            param(completed, "calldate"),
            Some(&json!("2023-11-14 22:13:20"))
        );
        assert_eq!(param(&webhooks[5], "rating"), Some(&json!(5)));
        assert_eq!(param(&webhooks[5], "employee"), Some(&json!("petro")));
        assert!(
            webhooks
                .iter()
                .all(|w| param(w, "utm_source") == Some(&json!("google")))
        );
        assert!(webhooks.iter().all(|w| param(w, "utm_medium").is_none()));
        Ok(())
    }

    #[test]
    fn a_missed_call_tries_every_extension_and_has_no_answer_or_recording() -> anyhow::Result<()> {
        let call = new_call(json!({
            "caller": "+380501234567", "number": "+380441112233",
            "extensions": ["anna", "petro"], "busy": true
        }))?
        .into_call("1.1".into(), 0)?;
        let webhooks = call.webhooks("http://r/1.mp3");
        assert_eq!(
            moments(&webhooks),
            vec![
                ("call_initiated", None),
                ("forwarding_step", Some(1)),
                ("forwarding_step", Some(2)),
                ("call_completed", None),
            ]
        );
        let completed = &webhooks[3];
        assert_eq!(param(completed, "disposition"), Some(&json!("BUSY")));
        assert_eq!(param(completed, "duration"), Some(&json!(30)));
        assert_eq!(param(completed, "billsec"), Some(&json!(0)));
        assert!(param(completed, "recording").is_none());
        assert!(param(completed, "employee").is_none());
        Ok(())
    }

    #[test]
    fn impossible_calls_are_refused_naming_the_field() -> anyhow::Result<()> {
        let base = json!({"caller": "+1", "number": "+2", "extensions": ["a"], "answered_by": 0});
        let cases = [
            ("caller", json!(" ")),
            ("number", json!("x".repeat(33))),
            ("extensions", json!([])),
            ("extensions", json!(["a", ""])),
            ("answered_by", json!(1)),
            ("talk_s", json!(86_401)),
            ("ring_s", json!(0)),
            ("rating", json!(6)),
            ("busy", json!(true)),
            ("utm_source", json!("")),
        ];
        for (field, value) in cases {
            let mut body = base.clone();
            body[field] = value;
            let error = new_call(body)?
                .into_call("1.1".into(), 0)
                .err()
                .ok_or_else(|| anyhow::anyhow!("{field} should be refused"))?;
            assert_eq!(
                (error.kind(), error.param()),
                ("invalid_request", Some(field))
            );
        }
        for (field, value) in [("rating", json!(3)), ("talk_s", json!(10))] {
            let mut missed = base.clone();
            missed["answered_by"] = Value::Null;
            missed[field] = value;
            let error = new_call(missed)?.into_call("1.1".into(), 0).err();
            assert_eq!(
                error.and_then(|e| e.param().map(str::to_owned)).as_deref(),
                Some(field)
            );
        }
        Ok(())
    }
}
