//! Texting phones through the gateway's Aliyun-style SMS API: `POST /v1/sms/messages`
//! `{"phone","text"|"template_id"+"params","sign_name"?}`, answered
//! `{"code","message","message_id","segments"}` with HTTP 200 even for failures.

use std::collections::BTreeMap;

use serde_json::json;
use switchboard_sdk::{Context, Deserialize, Error, JsonSchema, Serialize, config, http};

use crate::{answered, base_url};

/// A text message for a phone: `text`, or `template_id` with `params`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendSms {
    /// The phone number: digits, optionally after `+` (6 to 15 digits).
    phone: String,
    /// Free text; give either this or `template_id`.
    #[serde(default)]
    text: Option<String>,
    /// An approved template, such as `ticket_status`; give either this or `text`.
    #[serde(default)]
    template_id: Option<String>,
    /// The template's parameters, such as `{"ticket_id": "T-1", "status": "solved"}`.
    #[serde(default)]
    params: Option<BTreeMap<String, String>>,
}

/// A text message the gateway accepted.
#[derive(Serialize, JsonSchema)]
pub(crate) struct SmsSent {
    /// The gateway's id of the message.
    message_id: String,
    /// How many SMS segments it is billed as.
    segments: u32,
}

pub(crate) fn send_sms(_ctx: &Context, input: SendSms) -> Result<SmsSent, Error> {
    if !is_phone(&input.phone) {
        return Err(Error::new(
            "phone_invalid",
            "`phone` must be 6 to 15 digits, optionally after `+`",
        ));
    }
    let mut body = match (&input.text, &input.template_id, &input.params) {
        (Some(text), None, None) if text.trim().is_empty() => {
            return Err(Error::new("content_empty", "`text` must not be blank"));
        }
        (Some(text), None, None) => json!({"phone": input.phone, "text": text}),
        (None, Some(template_id), params) => json!({
            "phone": input.phone,
            "template_id": template_id,
            "params": params.clone().unwrap_or_default(),
        }),
        _ => {
            return Err(Error::invalid_input(
                "give either `text`, or `template_id` with `params`",
            ));
        }
    };
    if let Some(sign_name) = config::get("sms_sign_name").filter(|sign| !sign.is_empty()) {
        body["sign_name"] = json!(sign_name);
    }
    let response = http::post(format!("{}/v1/sms/messages", base_url()?))
        .bearer(&config::require_secret("api_key")?)
        .json(&body)?
        .send()?;
    read_reply(&response)
}

/// `+` (optional) and 6 to 15 digits.
fn is_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The gateway's answer.
#[derive(Deserialize)]
struct Reply {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    segments: Option<u32>,
}

fn read_reply(response: &http::Response) -> Result<SmsSent, Error> {
    let reply: Reply = answered(response)?;
    if reply.code != "OK" {
        return Err(aliyun_error(&reply.code, &reply.message));
    }
    match (reply.message_id, reply.segments) {
        (Some(message_id), Some(segments)) => Ok(SmsSent {
            message_id,
            segments,
        }),
        _ => Err(Error::new(
            "upstream_invalid_response",
            "the gateway accepted the message but returned no message_id or segments",
        )),
    }
}

/// The connector error for an Aliyun `code`.
fn aliyun_error(code: &str, message: &str) -> Error {
    let message = format!("the gateway refused the message: {code} {message}");
    match code {
        "isv.MOBILE_NUMBER_ILLEGAL" => Error::new("phone_invalid", message),
        "isv.SMS_TEMPLATE_ILLEGAL" => Error::new("template_unknown", message),
        "isv.TEMPLATE_MISSING_PARAMETERS" => Error::new("template_data_invalid", message),
        "isv.SMS_SIGNATURE_ILLEGAL" => Error::new("sign_name_invalid", message),
        "isv.AMOUNT_NOT_ENOUGH" => Error::new("sms_balance_exhausted", message),
        "isv.BUSINESS_LIMIT_CONTROL" => Error::retryable("sms_rate_limited", message),
        "isv.INVALID_PARAMETERS" => Error::new("request_invalid", message),
        _ => Error::new("upstream_error", message),
    }
}
