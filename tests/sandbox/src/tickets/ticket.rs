//! A ticket, its comments and the ticket fields the account defines, as the API shows them.
//!
//! This module owns the JSON shapes and the closed sets of values (statuses, priorities,
//! types); reading requests lives in `request`, memory in `store`.

use serde::{Serialize, Serializer};
use serde_json::Value;

/// A closed set of values written as lower-case strings in JSON.
pub(crate) trait Choice: Copy + 'static {
    /// Every value, in the provider's order.
    const ALL: &'static [Self];

    /// The value as it appears in JSON.
    fn as_str(self) -> &'static str;

    /// The value written `text`, if any.
    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.as_str() == text)
    }

    /// Every value as written, comma-separated, for error descriptions.
    fn listed() -> String {
        Self::ALL
            .iter()
            .map(|value| value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Declares a [`Choice`] enum.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            $($variant),+
        }

        impl Choice for $name {
            const ALL: &'static [$name] = &[$($name::$variant),+];

            fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}

choice! {
    /// Where a ticket is in its life; `closed` is final.
    Status {
        New => "new",
        Open => "open",
        Pending => "pending",
        Hold => "hold",
        Solved => "solved",
        Closed => "closed",
    }
}

choice! {
    /// How urgent a ticket is.
    Priority {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
}

choice! {
    /// What kind of request a ticket is.
    TicketType {
        Problem => "problem",
        Incident => "incident",
        Question => "question",
        Task => "task",
    }
}

choice! {
    /// What a custom ticket field holds.
    FieldKind {
        Text => "text",
        Integer => "integer",
    }
}

/// The user id of the one agent the token acts as; comments made through the API without an
/// `author_id` are this agent's.
pub(crate) const AGENT_ID: u64 = 10_000_000;

/// The person who asked for help, as embedded in a ticket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Requester {
    /// The requester's user id (the same person gets the same id).
    pub(crate) id: u64,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) phone: Option<String>,
    /// The requester's id in the IM channel the ticket came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) im_id: Option<String>,
}

/// One value of a custom ticket field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CustomField {
    pub(crate) id: u64,
    pub(crate) value: Value,
}

/// A ticket as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Ticket {
    pub(crate) id: u64,
    pub(crate) external_id: Option<String>,
    #[serde(rename = "type")]
    pub(crate) kind: Option<TicketType>,
    pub(crate) subject: String,
    /// The first comment's body.
    pub(crate) description: String,
    pub(crate) priority: Option<Priority>,
    pub(crate) status: Status,
    pub(crate) requester_id: u64,
    pub(crate) requester: Requester,
    pub(crate) tags: Vec<String>,
    pub(crate) custom_fields: Vec<CustomField>,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

/// A comment on a ticket; the first one is the ticket's description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Comment {
    pub(crate) id: u64,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) body: String,
    /// Whether the requester sees it; an internal note is not public.
    pub(crate) public: bool,
    pub(crate) author_id: u64,
    pub(crate) created_at: String,
}

impl Comment {
    /// A comment with the next `id`.
    pub(crate) fn new(id: u64, body: String, public: bool, author_id: u64, now: &str) -> Self {
        Self {
            id,
            kind: "Comment",
            body,
            public,
            author_id,
            created_at: now.to_owned(),
        }
    }
}

/// A custom ticket field the account defines; tickets carry values for them in
/// `custom_fields`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct TicketField {
    pub(crate) id: u64,
    #[serde(rename = "type")]
    pub(crate) kind: FieldKind,
    /// The field's stable key, as an integrator names it.
    pub(crate) key: &'static str,
    pub(crate) title: &'static str,
    pub(crate) active: bool,
}

const fn field(id: u64, kind: FieldKind, key: &'static str, title: &'static str) -> TicketField {
    TicketField {
        id,
        kind,
        key,
        title,
        active: true,
    }
}

/// The account's custom ticket fields: what an IM conversation or a call brings along.
pub(crate) const TICKET_FIELDS: [TicketField; 5] = [
    field(360_000_001_001, FieldKind::Text, "channel", "Channel"),
    field(
        360_000_001_002,
        FieldKind::Text,
        "conversation_id",
        "Conversation ID",
    ),
    field(360_000_001_003, FieldKind::Text, "order_id", "Order number"),
    field(360_000_001_004, FieldKind::Text, "category", "Category"),
    field(
        360_000_001_005,
        FieldKind::Integer,
        "call_duration_s",
        "Call duration (s)",
    ),
];

/// The custom field with `id`, if the account defines it.
pub(crate) fn ticket_field(id: u64) -> Option<&'static TicketField> {
    TICKET_FIELDS.iter().find(|field| field.id == id)
}
