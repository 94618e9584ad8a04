//! Messaging: IM customer-service messages and SMS for agents, and customers' IM messages in.
//!
//! `send-text`, `send-template` and `send-media` send to an IM customer (an openid) through the
//! gateway's WeChat-style API and append what was sent to the customer's conversation
//! context; `send-sms` texts a phone through its Aliyun-style API; `get-context` reads a
//! conversation. The `im` hook verifies WeChat's signature on the gateway's push, appends
//! the customer's message to the context and emits `im.message_received` carrying it.

mod conversation;
mod hook;
mod im;
mod sms;

use switchboard_sdk::{
    Connector, Context, Error, JsonSchema, Operation, WebhookOutcome, config, export_connector,
    http,
};

use conversation::Conversation;

/// The event a customer's IM message becomes.
const MESSAGE_RECEIVED: &str = "im.message_received";

struct Messaging;

impl Connector for Messaging {
    const NAME: &'static str = "messaging";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Sends IM customer-service messages (text, template, \
        image or file by URL) and SMS through the messaging gateway, keeps each IM \
        conversation's recent context, and turns customers' IM messages, pushed with \
        WeChat's signature, into im.message_received.";
    const EMITS: &'static [&'static str] = &[MESSAGE_RECEIVED];

    fn operations() -> Vec<Operation> {
        vec![
            Operation::new(
                "send-text",
                "Sends a text message to an IM customer and adds it to the conversation.",
                im::send_text,
            ),
            Operation::new(
                "send-template",
                "Sends an approved template message to an IM customer and adds it to the conversation.",
                im::send_template,
            ),
            Operation::new(
                "send-media",
                "Sends an image or a file, given by URL, to an IM customer and adds it to the conversation.",
                im::send_media,
            ),
            Operation::new(
                "send-sms",
                "Texts a phone, with free text or an approved template and its parameters.",
                sms::send_sms,
            ),
            Operation::new(
                "get-context",
                "Returns the recent messages of an IM conversation, oldest first.",
                get_context,
            )
            .idempotent(),
        ]
    }

    fn handle_webhook(
        _ctx: &Context,
        hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        match hook {
            "im" => hook::receive(&request),
            other => Err(Error::new(
                "webhook_not_supported",
                format!("connector `messaging` has no webhook `{other}`; it takes `im`"),
            )),
        }
    }
}

export_connector!(Messaging);

/// The conversation to read.
#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetContextInput {
    /// The customer's openid.
    openid: String,
}

fn get_context(_ctx: &Context, input: GetContextInput) -> Result<Conversation, Error> {
    conversation::read(&input.openid)
}

/// The gateway's base URL, without a trailing `/`.
fn base_url() -> Result<String, Error> {
    Ok(config::require("base_url")?
        .trim_end_matches('/')
        .to_owned())
}

/// The gateway's JSON answer; a refused API key is `authentication_failed`, another
/// failing HTTP status the SDK's `upstream_*` error. The gateway reports refused messages
/// with HTTP 200 and a code in the body, which the caller reads.
fn answered<T: serde::de::DeserializeOwned>(response: &http::Response) -> Result<T, Error> {
    if matches!(response.status, 401 | 403) {
        return Err(Error::new(
            "authentication_failed",
            format!(
                "the gateway refused the API key (HTTP {}); check the secret `api_key`",
                response.status
            ),
        ));
    }
    if !response.is_success() {
        return Err(Error::upstream_status(response.status, &response.body));
    }
    response.json()
}

/// Unix seconds now.
fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
