//! SMS in the style of Aliyun SMS (`SendSms`): the request and its checks, segment counting,
//! the account balance, the per-number flow control, and the messages each phone received.
//!
//! Failures keep HTTP 200 and carry Aliyun's `code` (`isv.*`) and `message`, as Aliyun does;
//! only a missing or wrong API key is an HTTP 401 (the sandbox's shared error shape).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use super::templates;

/// How many messages one number may receive within [`RATE_WINDOW`].
pub(super) const RATE_LIMIT: usize = 5;
/// The sliding window of the per-number flow control.
pub(super) const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Characters per segment of text that needs UCS-2 (Chinese, emoji, …).
pub(super) const UCS2_SEGMENT_CHARS: usize = 70;
/// Septets per segment of text written only in the GSM 7-bit alphabet.
pub(super) const GSM_SEGMENT_SEPTETS: usize = 160;
/// The longest signature, in characters.
pub(super) const MAX_SIGN_NAME_CHARS: usize = 12;

/// GSM 03.38's basic alphabet: one septet each.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡\
ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38's extension table: two septets each (an escape and the character).
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Aliyun's answer when a request fails: a `code` such as `isv.MOBILE_NUMBER_ILLEGAL` and
/// its `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct AliyunError {
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl AliyunError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new("isv.INVALID_PARAMETERS", message)
    }
}

impl std::fmt::Display for AliyunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AliyunError {}

/// How many segments `text` is sent in: ⌈septets / 160⌉ when every character is in the GSM
/// 7-bit alphabet (extension characters count two), otherwise ⌈characters / 70⌉.
pub(super) fn segments(text: &str) -> usize {
    let septets: Option<usize> = text
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .sum();
    match septets {
        Some(septets) => septets.div_ceil(GSM_SEGMENT_SEPTETS).max(1),
        None => text.chars().count().div_ceil(UCS2_SEGMENT_CHARS).max(1),
    }
}

/// The number a message goes to, in the form the gateway files it under: 11 digits for a
/// mainland mobile (written bare, with `86` or with `+86`), `+` and 8 to 15 digits for any
/// other country. Anything else cannot be delivered.
pub(super) fn normalize_phone(raw: &str) -> Option<String> {
    let (plus, digits) = match raw.strip_prefix('+') {
        Some(digits) => (true, digits),
        None => (false, raw),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let national = digits
        .strip_prefix("86")
        .filter(|national| national.len() == 11)
        .unwrap_or(digits);
    if is_mainland_mobile(national) {
        return Some(national.to_owned());
    }
    let international = plus && !digits.starts_with("86") && (8..=15).contains(&digits.len());
    international.then(|| format!("+{digits}"))
}

/// `1`, then `3`–`9`, then nine more digits.
fn is_mainland_mobile(number: &str) -> bool {
    number.len() == 11
        && number.starts_with('1')
        && number
            .as_bytes()
            .get(1)
            .is_some_and(|b| (b'3'..=b'9').contains(b))
}

/// A send request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NewSms {
    phone: String,
    /// The text as the phone shows it, signature included.
    text: String,
    template_id: Option<String>,
    sign_name: Option<String>,
}

/// Checks a send request body, answering the first fault with its Aliyun code.
pub(super) fn parse(body: &[u8]) -> Result<NewSms, AliyunError> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(AliyunError::invalid("the body must be a JSON object"));
    };
    let phone = fields
        .get("phone")
        .and_then(Value::as_str)
        .and_then(normalize_phone)
        .ok_or_else(|| {
            AliyunError::new(
                "isv.MOBILE_NUMBER_ILLEGAL",
                "phone must be a mainland mobile number (1[3-9] and 9 digits, optionally \
                 with 86 or +86) or + and 8 to 15 digits",
            )
        })?;
    let sign_name = sign_name(fields.get("sign_name"))?;
    let (body, template_id) = content(&fields)?;
    let text = match &sign_name {
        Some(sign) => format!("【{sign}】{body}"),
        None => body,
    };
    Ok(NewSms {
        phone,
        text,
        template_id,
        sign_name,
    })
}

fn sign_name(value: Option<&Value>) -> Result<Option<String>, AliyunError> {
    let Some(value) = value.filter(|value| !value.is_null()) else {
        return Ok(None);
    };
    value
        .as_str()
        .filter(|sign| !sign.trim().is_empty() && sign.chars().count() <= MAX_SIGN_NAME_CHARS)
        .map(|sign| Some(sign.to_owned()))
        .ok_or_else(|| {
            AliyunError::new(
                "isv.SMS_SIGNATURE_ILLEGAL",
                format!("sign_name must be 1 to {MAX_SIGN_NAME_CHARS} characters"),
            )
        })
}

/// The message body and the template it came from: either `text`, or `template_id` with
/// its `params`.
fn content(fields: &Map<String, Value>) -> Result<(String, Option<String>), AliyunError> {
    let given = |name: &str| fields.get(name).filter(|value| !value.is_null());
    match (given("text"), given("template_id")) {
        (Some(text), None) => text
            .as_str()
            .filter(|text| !text.trim().is_empty())
            .map(|text| (text.to_owned(), None))
            .ok_or_else(|| AliyunError::invalid("text must be a non-blank string")),
        (None, Some(id)) => {
            let id = id.as_str().unwrap_or("");
            let template = templates::find(id).ok_or_else(|| {
                AliyunError::new(
                    "isv.SMS_TEMPLATE_ILLEGAL",
                    format!(
                        "unknown template_id {id:?}; known: {}",
                        templates::known_ids()
                    ),
                )
            })?;
            let params = params(given("params"))?;
            if let Some(field) = template.missing_field(&params) {
                return Err(AliyunError::new(
                    "isv.TEMPLATE_MISSING_PARAMETERS",
                    format!("template {id} needs params.{field}"),
                ));
            }
            Ok((template.render(&params), Some(template.id.to_owned())))
        }
        _ => Err(AliyunError::invalid(
            "give either text or template_id (with params), not both",
        )),
    }
}

fn params(value: Option<&Value>) -> Result<BTreeMap<String, String>, AliyunError> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let invalid = || AliyunError::invalid("params must be an object of string values");
    value
        .as_object()
        .ok_or_else(invalid)?
        .iter()
        .map(|(name, value)| Ok((name.clone(), value.as_str().ok_or_else(invalid)?.to_owned())))
        .collect()
}

/// One message as the phone received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Received {
    pub(super) message_id: String,
    pub(super) phone: String,
    pub(super) text: String,
    pub(super) segments: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sign_name: Option<String>,
    /// Unix seconds.
    pub(super) time: u64,
}

/// The gateway's memory: what was delivered, recent sends per number, and the balance.
#[derive(Debug, Default)]
pub(super) struct Gateway {
    inner: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    delivered: Vec<Received>,
    recent: HashMap<String, VecDeque<Instant>>,
    balance_exhausted: bool,
}

impl Gateway {
    /// Delivers `sms` unless the balance is exhausted or its number already received
    /// [`RATE_LIMIT`] messages in the [`RATE_WINDOW`] before `at`.
    pub(super) fn send(
        &self,
        sms: NewSms,
        at: Instant,
        time: u64,
    ) -> Result<Received, AliyunError> {
        let mut state = self.lock();
        if state.balance_exhausted {
            return Err(AliyunError::new(
                "isv.AMOUNT_NOT_ENOUGH",
                "the account balance is not enough to send this message",
            ));
        }
        let recent = state.recent.entry(sms.phone.clone()).or_default();
        while recent
            .front()
            .is_some_and(|sent| at.saturating_duration_since(*sent) >= RATE_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= RATE_LIMIT {
            return Err(AliyunError::new(
                "isv.BUSINESS_LIMIT_CONTROL",
                format!(
                    "flow control: at most {RATE_LIMIT} messages to one number per {} s",
                    RATE_WINDOW.as_secs()
                ),
            ));
        }
        recent.push_back(at);
        let received = Received {
            message_id: format!(
                "{:018}^0",
                rand::random::<u64>() % 1_000_000_000_000_000_000
            ),
            segments: segments(&sms.text),
            phone: sms.phone,
            text: sms.text,
            template_id: sms.template_id,
            sign_name: sms.sign_name,
            time,
        };
        state.delivered.push(received.clone());
        Ok(received)
    }

    /// What the number `phone` received (written in any accepted form), or every message
    /// when `phone` is none.
    pub(super) fn received(&self, phone: Option<&str>) -> Vec<Received> {
        let phone = phone.map(|raw| normalize_phone(raw).unwrap_or_else(|| raw.to_owned()));
        self.lock()
            .delivered
            .iter()
            .filter(|received| phone.as_deref().is_none_or(|phone| received.phone == phone))
            .cloned()
            .collect()
    }

    /// Whether sends fail with `isv.AMOUNT_NOT_ENOUGH`.
    pub(super) fn balance_exhausted(&self) -> bool {
        self.lock().balance_exhausted
    }

    /// Makes sends fail with `isv.AMOUNT_NOT_ENOUGH` (or succeed again).
    pub(super) fn set_balance_exhausted(&self, exhausted: bool) {
        self.lock().balance_exhausted = exhausted;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(body: Value) -> Option<&'static str> {
        parse(body.to_string().as_bytes()).err().map(|e| e.code)
    }

    #[test]
    fn gsm_text_counts_160_septets_per_segment_and_other_text_70_characters() {
        assert_eq!(segments("hi"), 1);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"字".repeat(70)), 1);
        assert_eq!(segments(&"字".repeat(71)), 2);
        assert_eq!(segments(&format!("{}字", "a".repeat(69))), 1);
        assert_eq!(segments(&format!("{}字", "a".repeat(70))), 2);
    }

    #[test]
    fn mainland_numbers_are_filed_as_eleven_digits_and_others_with_a_plus() {
        for raw in ["13800138000", "8613800138000", "+8613800138000"] {
            assert_eq!(
                normalize_phone(raw).as_deref(),
                Some("13800138000"),
                "{raw}"
            );
        }
        assert_eq!(
            normalize_phone("+79161234567").as_deref(),
            Some("+79161234567")
        );
        for refused in [
            "12345678901",
            "+8612345678901",
            "1380013800",
            "79161234567",
            "+7916",
            "+",
            "",
            "138-0013-8000",
        ] {
            assert_eq!(normalize_phone(refused), None, "{refused}");
        }
    }

    #[test]
    fn each_fault_has_its_aliyun_code() {
        let phone = "13800138000";
        assert_eq!(code(json!("text")), Some("isv.INVALID_PARAMETERS"));
        assert_eq!(
            code(json!({"phone": "123", "text": "x"})),
            Some("isv.MOBILE_NUMBER_ILLEGAL")
        );
        assert_eq!(
            code(json!({"phone": phone})),
            Some("isv.INVALID_PARAMETERS")
        );
        assert_eq!(
            code(json!({"phone": phone, "text": " "})),
            Some("isv.INVALID_PARAMETERS")
        );
        assert_eq!(
            code(json!({"phone": phone, "text": "x", "template_id": "ticket_status"})),
            Some("isv.INVALID_PARAMETERS")
        );
        assert_eq!(
            code(json!({"phone": phone, "template_id": "x"})),
            Some("isv.SMS_TEMPLATE_ILLEGAL")
        );
        assert_eq!(
            code(
                json!({"phone": phone, "template_id": "ticket_status", "params": {"ticket_id": "T-1"}})
            ),
            Some("isv.TEMPLATE_MISSING_PARAMETERS")
        );
        assert_eq!(
            code(
                json!({"phone": phone, "template_id": "ticket_status", "params": {"ticket_id": 1}})
            ),
            Some("isv.INVALID_PARAMETERS")
        );
        assert_eq!(
            code(json!({"phone": phone, "text": "x", "sign_name": "a".repeat(13)})),
            Some("isv.SMS_SIGNATURE_ILLEGAL")
        );
        assert_eq!(
            code(json!({"phone": phone, "text": "x", "sign_name": "a".repeat(12)})),
            None
        );
    }

    #[test]
    fn a_signature_is_prepended_in_brackets() {
        let sms = parse(
            json!({"phone": "13800138000", "text": "hi", "sign_name": "Acme"})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(sms.map(|sms| sms.text), Ok("【Acme】hi".to_owned()));
    }

    #[test]
    fn the_sixth_message_to_a_number_within_a_minute_is_flow_controlled() -> anyhow::Result<()> {
        let gateway = Gateway::default();
        let sms = |phone: &str| parse(json!({"phone": phone, "text": "hi"}).to_string().as_bytes());
        let start = Instant::now();
        for second in 0..5 {
            gateway.send(sms("13800138000")?, start + Duration::from_secs(second), 0)?;
        }
        let limited = gateway.send(sms("+8613800138000")?, start + Duration::from_secs(59), 0);
        assert_eq!(
            limited.err().map(|e| e.code),
            Some("isv.BUSINESS_LIMIT_CONTROL")
        );
        gateway.send(sms("13900139000")?, start + Duration::from_secs(59), 0)?;
        gateway.send(sms("13800138000")?, start + Duration::from_secs(60), 0)?;
        assert_eq!(gateway.received(Some("13800138000")).len(), 6);
        Ok(())
    }

    #[test]
    fn an_exhausted_balance_refuses_every_send_until_topped_up() -> anyhow::Result<()> {
        let gateway = Gateway::default();
        let sms = parse(
            json!({"phone": "13800138000", "text": "hi"})
                .to_string()
                .as_bytes(),
        )?;
        gateway.set_balance_exhausted(true);
        let refused = gateway.send(sms.clone(), Instant::now(), 0);
        assert_eq!(refused.err().map(|e| e.code), Some("isv.AMOUNT_NOT_ENOUGH"));
        gateway.set_balance_exhausted(false);
        assert_eq!(gateway.send(sms, Instant::now(), 0)?.segments, 1);
        Ok(())
    }
}
