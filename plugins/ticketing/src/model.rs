//! The connector's inputs and outputs, with the JSON Schemas `describe` publishes.
//!
//! This module owns only shapes; the provider's own JSON lives in `api`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;
use switchboard_sdk::{Deserialize, JsonSchema, Serialize};

/// The pattern a ticket id given as a string must match.
const TICKET_ID_PATTERN: &str = "^[0-9]{1,19}$";
/// What an attachment or media URL looks like.
const URL_PATTERN: &str = "^https?://[^\\s]+$";

/// A ticket id: digits, given as a string (as rules fill them from templates) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTicketId")]
pub(crate) struct TicketId(pub(crate) u64);

/// A ticket id as written in JSON.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawTicketId {
    Number(u64),
    Text(String),
}

impl TryFrom<RawTicketId> for TicketId {
    type Error = String;

    fn try_from(raw: RawTicketId) -> Result<Self, Self::Error> {
        match raw {
            RawTicketId::Number(id) => Ok(Self(id)),
            RawTicketId::Text(text) => TicketId::parse(&text),
        }
    }
}

impl TicketId {
    /// The id in `text`, which must be 1 to 19 digits.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let digits = text.trim();
        if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("a ticket id is 1 to 19 digits, not `{text}`"));
        }
        digits
            .parse()
            .map(Self)
            .map_err(|_| format!("ticket id `{text}` is too large"))
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl JsonSchema for TicketId {
    fn schema_name() -> Cow<'static, str> {
        "TicketId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The ticket's id: a string of digits such as \"42\", or the number 42.",
            "anyOf": [
                {"type": "string", "pattern": TICKET_ID_PATTERN},
                {"type": "integer", "minimum": 0},
            ],
        })
    }
}

/// Where a ticket is in its life; `closed` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    // No doc comments on the variants: with them the schema becomes a `oneOf`.
    New,
    Open,
    Pending,
    Hold,
    Solved,
    Closed,
}

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

/// What kind of request a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TicketType {
    Problem,
    Incident,
    Question,
    Task,
}

/// Who writes a comment: the agent the API token acts as, or the ticket's requester (a
/// customer's follow-up message; always public).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Author {
    #[default]
    Agent,
    Requester,
}

/// The customer who asked for help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub(crate) struct Requester {
    /// The customer's name as shown to agents.
    #[schemars(length(min = 1, max = 255))]
    pub(crate) name: String,
    /// Phone number, digits with optional `+ - ( )` and spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 32))]
    pub(crate) phone: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255))]
    pub(crate) email: Option<String>,
    /// The customer's id in the IM channel (such as a WeChat open id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub(crate) im_id: Option<String>,
}

/// A file the customer sent, by URL (uploaded to storage by the IM side).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub(crate) struct Attachment {
    /// Where the file can be fetched: `http://` or `https://`.
    #[schemars(pattern(URL_PATTERN), length(max = 2048))]
    pub(crate) url: String,
    /// A name to show, such as `photo.jpg`.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub(crate) name: Option<String>,
}

/// When a conversation message was written.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum MessageTime {
    /// Unix seconds.
    UnixSeconds(u64),
    /// As the IM side writes it.
    Text(#[schemars(length(max = 64))] String),
}

impl MessageTime {
    /// The time as shown in the ticket: text as given, seconds in RFC 3339.
    pub(crate) fn shown(&self) -> String {
        match self {
            MessageTime::UnixSeconds(seconds) => crate::time::rfc3339(*seconds),
            MessageTime::Text(text) => text.trim().to_owned(),
        }
    }
}

/// One message of the IM conversation the ticket comes from.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
pub(crate) struct ContextMessage {
    /// Who wrote it, such as the customer's or the agent's name.
    #[schemars(length(min = 1, max = 255))]
    pub(crate) from: String,
    /// What was written.
    pub(crate) text: String,
    /// When: text as the IM side writes it (such as `2024-05-01T08:30:00Z`), or Unix
    /// seconds, which are shown in RFC 3339 (UTC).
    #[serde(default)]
    pub(crate) time: Option<MessageTime>,
    /// A picture, voice message or video sent with the message, by URL.
    #[serde(default)]
    #[schemars(pattern(URL_PATTERN), length(max = 2048))]
    pub(crate) media_url: Option<String>,
}

/// A ticket to open from an IM conversation, a call or an API trigger.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct CreateTicketInput {
    /// The ticket's title.
    #[schemars(length(min = 1, max = 150))]
    pub(crate) subject: String,
    /// What the customer needs; becomes the first (public) comment, followed by the
    /// attachments and the conversation.
    #[schemars(length(min = 1))]
    pub(crate) description: String,
    /// Who asked; the same e-mail, phone or IM id maps to the same provider user.
    pub(crate) requester: Requester,
    /// How urgent it is.
    #[serde(default)]
    pub(crate) priority: Option<Priority>,
    /// What kind of request it is.
    #[serde(default, rename = "type")]
    pub(crate) ticket_type: Option<TicketType>,
    /// Labels; the provider lower-cases them and turns spaces into `_`.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub(crate) tags: Vec<String>,
    /// Custom ticket fields by name (see the `custom_fields` config key) or by numeric field
    /// id, such as `{"channel": "wechat", "order_id": "A-42"}`.
    #[serde(default)]
    pub(crate) fields: BTreeMap<String, Value>,
    /// Your id for what the ticket is about (such as the IM conversation id); a second
    /// create with the same external id returns the first ticket with `created: false`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 100))]
    pub(crate) external_id: Option<String>,
    /// The conversation so far, oldest first; rendered under a `Conversation` heading.
    #[serde(default)]
    #[schemars(length(max = 200))]
    pub(crate) context: Vec<ContextMessage>,
    /// Files the customer sent, by URL; listed under an `Attachments` heading.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub(crate) attachments: Vec<Attachment>,
}

/// The ticket to read.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct GetTicketInput {
    /// The ticket's id.
    pub(crate) ticket_id: TicketId,
}

/// Changes to a ticket; fields left out stay as they are.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct UpdateTicketInput {
    /// The ticket's id.
    pub(crate) ticket_id: TicketId,
    /// The new status; a ticket cannot go back to `new`, and a `closed` one takes no update.
    #[serde(default)]
    pub(crate) status: Option<Status>,
    /// The new priority.
    #[serde(default)]
    pub(crate) priority: Option<Priority>,
    /// A comment to add with the change, by the agent.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub(crate) comment: Option<String>,
    /// Whether the customer sees `comment`; by default it is an internal note.
    #[serde(default)]
    pub(crate) public: bool,
    /// Replaces the ticket's tags.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub(crate) tags: Option<Vec<String>>,
}

/// A comment to add to a ticket.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct AddCommentInput {
    /// The ticket's id.
    pub(crate) ticket_id: TicketId,
    /// The comment's text.
    #[schemars(length(min = 1))]
    pub(crate) body: String,
    /// Whether the customer sees it; by default an agent's comment is an internal note.
    /// A requester's comment is always public.
    #[serde(default)]
    pub(crate) public: bool,
    /// Who writes it: `agent` (default) or `requester` (a customer's follow-up message).
    #[serde(default)]
    pub(crate) author: Author,
    /// Files sent with it, by URL; listed under an `Attachments` heading.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub(crate) attachments: Vec<Attachment>,
}

/// A ticket as the connector reports it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct TicketView {
    /// The ticket's id, as a string of digits.
    pub(crate) ticket_id: String,
    /// `new`, `open`, `pending`, `hold`, `solved` or `closed`.
    pub(crate) status: String,
    /// The ticket's title.
    pub(crate) subject: String,
    /// The first comment: the description, attachments and conversation as created.
    pub(crate) description: String,
    /// `low`, `normal`, `high` or `urgent`, when set.
    pub(crate) priority: Option<String>,
    /// `problem`, `incident`, `question` or `task`, when set.
    #[serde(rename = "type")]
    pub(crate) ticket_type: Option<String>,
    /// Who asked, when the provider says.
    pub(crate) requester: Option<Requester>,
    /// Labels, as the provider normalized them.
    pub(crate) tags: Vec<String>,
    /// Custom field values by name (ids without a configured name appear as digits).
    pub(crate) fields: BTreeMap<String, Value>,
    /// Your id for what the ticket is about.
    pub(crate) external_id: Option<String>,
    /// When it was created, as the provider writes it (RFC 3339).
    pub(crate) created_at: Option<String>,
    /// When it last changed (RFC 3339).
    pub(crate) updated_at: Option<String>,
}

/// The ticket `create-ticket` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CreateTicketOutput {
    /// The ticket.
    #[serde(flatten)]
    pub(crate) ticket: TicketView,
    /// Whether this call created it; `false` when the external id already had a ticket.
    pub(crate) created: bool,
}

/// One comment on a ticket.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CommentView {
    /// The comment's id, as a string of digits.
    pub(crate) comment_id: String,
    /// Its text.
    pub(crate) body: String,
    /// Whether the customer sees it.
    pub(crate) public: bool,
    /// `requester` when the ticket's requester wrote it, else `agent`.
    pub(crate) author: Author,
    /// The provider's user id of the author, as a string of digits.
    pub(crate) author_id: String,
    /// When it was written (RFC 3339).
    pub(crate) created_at: Option<String>,
}

/// A ticket with its comments.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TicketWithComments {
    /// The ticket.
    #[serde(flatten)]
    pub(crate) ticket: TicketView,
    /// Every comment, oldest first; the first is the description.
    pub(crate) comments: Vec<CommentView>,
}
