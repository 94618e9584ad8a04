//! Reading create and update requests: every field is checked, and every field at fault is
//! reported at once in a 422's `details`, as Zendesk does.
//!
//! This module owns the checks; the shapes they produce live in `ticket`.

use serde_json::{Map, Value};

use super::error::{Details, TicketError};
use super::ticket::{Choice, CustomField, FieldKind, Priority, Status, TicketType, ticket_field};

/// The longest subject, in characters.
pub(crate) const MAX_SUBJECT_CHARS: usize = 150;
/// The longest subject derived from the description when none is given.
const DERIVED_SUBJECT_CHARS: usize = 80;
/// The longest name, e-mail, IM id, tag or external id, in characters.
pub(crate) const MAX_TEXT_CHARS: usize = 255;

/// A requester as a create request gives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewRequester {
    pub(crate) name: String,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) im_id: Option<String>,
}

/// A create request whose every field has been checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewTicket {
    pub(crate) subject: String,
    pub(crate) description: String,
    pub(crate) requester: NewRequester,
    pub(crate) priority: Option<Priority>,
    pub(crate) kind: Option<TicketType>,
    pub(crate) tags: Vec<String>,
    pub(crate) custom_fields: Vec<CustomField>,
    pub(crate) external_id: Option<String>,
}

/// A comment an update adds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewComment {
    pub(crate) body: String,
    /// Zendesk's default is public.
    pub(crate) public: bool,
    /// Who wrote it; none means the agent the token acts as.
    pub(crate) author_id: Option<u64>,
}

/// An update request whose every field has been checked; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TicketUpdate {
    pub(crate) status: Option<Status>,
    pub(crate) priority: Option<Priority>,
    pub(crate) comment: Option<NewComment>,
    pub(crate) tags: Option<Vec<String>>,
}

/// Collects what is wrong with a request, field by field.
#[derive(Debug, Default)]
struct Problems(Details);

impl Problems {
    fn add(&mut self, field: &'static str, description: impl Into<String>) {
        self.0.entry(field).or_default().push(description.into());
    }

    /// `value` if nothing was wrong, else the 422 listing everything that was.
    fn finish<T>(self, value: T) -> Result<T, TicketError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(TicketError::Invalid(self.0))
        }
    }
}

impl NewTicket {
    /// Checks `{"ticket": {...}}` of `POST /api/v2/tickets`.
    pub(crate) fn parse(body: &Value) -> Result<Self, TicketError> {
        let ticket = ticket_object(body)?;
        let mut problems = Problems::default();
        let description = comment(ticket, "description", &mut problems).map(|comment| comment.body);
        let subject = optional(ticket, "subject").and_then(|value| {
            bounded_text(value, MAX_SUBJECT_CHARS).or_else(|| {
                problems.add(
                    "subject",
                    format!("Subject: must be text of at most {MAX_SUBJECT_CHARS} characters"),
                );
                None
            })
        });
        let requester = requester(optional(ticket, "requester"), &mut problems);
        let parsed = Self {
            subject: subject
                .filter(|subject| !subject.trim().is_empty())
                .unwrap_or_else(|| derived_subject(description.as_deref().unwrap_or_default())),
            description: description.unwrap_or_default(),
            requester: requester.unwrap_or_else(|| NewRequester {
                name: String::new(),
                email: None,
                phone: None,
                im_id: None,
            }),
            priority: choice::<Priority>(ticket, "priority", "Priority", &mut problems),
            kind: choice::<TicketType>(ticket, "type", "Type", &mut problems),
            tags: optional(ticket, "tags")
                .map(|value| tags(value, &mut problems))
                .unwrap_or_default(),
            custom_fields: optional(ticket, "custom_fields")
                .map(|value| custom_fields(value, &mut problems))
                .unwrap_or_default(),
            external_id: optional(ticket, "external_id").and_then(|value| {
                let id = bounded_text(value, MAX_TEXT_CHARS);
                if id.is_none() {
                    problems.add(
                        "external_id",
                        format!("External ID: must be text of at most {MAX_TEXT_CHARS} characters"),
                    );
                }
                id
            }),
        };
        problems.finish(parsed)
    }
}

impl TicketUpdate {
    /// Checks `{"ticket": {...}}` of `PUT /api/v2/tickets/{id}`.
    pub(crate) fn parse(body: &Value) -> Result<Self, TicketError> {
        let ticket = ticket_object(body)?;
        let mut problems = Problems::default();
        let update = Self {
            status: choice::<Status>(ticket, "status", "Status", &mut problems),
            priority: choice::<Priority>(ticket, "priority", "Priority", &mut problems),
            comment: optional(ticket, "comment")
                .and_then(|_| comment(ticket, "comment", &mut problems)),
            tags: optional(ticket, "tags").map(|value| tags(value, &mut problems)),
        };
        problems.finish(update)
    }

    /// Checks `{"status": "..."}` of the control route that plays an agent in the ticket UI.
    pub(crate) fn status_only(body: &Value) -> Result<Self, TicketError> {
        let fields = body
            .as_object()
            .ok_or_else(|| TicketError::bad_request("the body must be {\"status\": \"...\"}"))?;
        let mut problems = Problems::default();
        let status = choice::<Status>(fields, "status", "Status", &mut problems);
        if status.is_none() && problems.0.is_empty() {
            problems.add("status", "Status: is required");
        }
        problems.finish(Self {
            status,
            ..Self::default()
        })
    }
}

/// The `ticket` object of a request body.
fn ticket_object(body: &Value) -> Result<&Map<String, Value>, TicketError> {
    body.get("ticket")
        .and_then(Value::as_object)
        .ok_or_else(|| TicketError::bad_request("the body must be {\"ticket\": {...}}"))
}

/// A field that is absent or `null` is not given.
fn optional<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|value| !value.is_null())
}

/// A string of at most `max_chars` characters.
fn bounded_text(value: &Value, max_chars: usize) -> Option<String> {
    value
        .as_str()
        .filter(|text| text.chars().count() <= max_chars)
        .map(str::to_owned)
}

/// A non-blank string of at most [`MAX_TEXT_CHARS`] characters.
fn short_text(value: &Value) -> Option<String> {
    bounded_text(value, MAX_TEXT_CHARS).filter(|text| !text.trim().is_empty())
}

/// The first line of the description, cut to [`DERIVED_SUBJECT_CHARS`], as Zendesk shows a
/// ticket without a subject.
fn derived_subject(description: &str) -> String {
    description
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default()
        .chars()
        .take(DERIVED_SUBJECT_CHARS)
        .collect()
}

/// One of a closed set of values, or a problem naming the values allowed.
fn choice<T: Choice>(
    fields: &Map<String, Value>,
    name: &'static str,
    label: &str,
    problems: &mut Problems,
) -> Option<T> {
    let value = optional(fields, name)?;
    let parsed = value.as_str().and_then(T::parse);
    if parsed.is_none() {
        problems.add(
            name,
            format!("{label}: {value} is not one of {}", T::listed()),
        );
    }
    parsed
}

/// The `comment` object: a non-blank `body`, `public` (default true) and an `author_id`. A
/// missing or blank comment is reported under `blank_field`: `description` on create,
/// `comment` on update.
fn comment(
    fields: &Map<String, Value>,
    blank_field: &'static str,
    problems: &mut Problems,
) -> Option<NewComment> {
    let comment = optional(fields, "comment").and_then(Value::as_object);
    let body = comment
        .and_then(|comment| optional(comment, "body"))
        .and_then(Value::as_str)
        .filter(|body| !body.trim().is_empty());
    let (Some(comment), Some(body)) = (comment, body) else {
        let label = if blank_field == "description" {
            "Description:"
        } else {
            "Comment: body"
        };
        problems.add(blank_field, format!("{label} cannot be blank"));
        return None;
    };
    let public = match optional(comment, "public") {
        None => Some(true),
        Some(value) => value.as_bool(),
    };
    let author_id = optional(comment, "author_id").map(Value::as_u64);
    match (public, author_id) {
        (None, _) => {
            problems.add("comment", "Comment: public must be true or false");
            None
        }
        (_, Some(None)) => {
            problems.add("comment", "Comment: author_id must be a user id");
            None
        }
        (Some(public), author_id) => Some(NewComment {
            body: body.to_owned(),
            public,
            author_id: author_id.flatten(),
        }),
    }
}

fn requester(value: Option<&Value>, problems: &mut Problems) -> Option<NewRequester> {
    let Some(fields) = value.and_then(Value::as_object) else {
        problems.add("requester", "Requester: is required, with a name");
        return None;
    };
    let name = optional(fields, "name").and_then(short_text);
    if name.is_none() {
        problems.add(
            "requester",
            format!("Requester: Name must be 1 to {MAX_TEXT_CHARS} characters"),
        );
    }
    let email = contact(
        fields.get("email"),
        |value| short_text(value).filter(|email| is_email(email)),
        "Requester: Email is not properly formatted",
        problems,
    );
    let phone = contact(
        fields.get("phone"),
        |value| {
            value
                .as_str()
                .filter(|phone| is_phone(phone))
                .map(str::to_owned)
        },
        "Requester: Phone must be 3 to 32 digits, spaces and + - ( )",
        problems,
    );
    let im_id = contact(
        fields.get("im_id"),
        short_text,
        "Requester: IM id must be 1 to 255 characters",
        problems,
    );
    Some(NewRequester {
        name: name?,
        email: email?,
        phone: phone?,
        im_id: im_id?,
    })
}

/// An optional contact detail of the requester: `Some(None)` when not given, `None` (and a
/// problem) when given but not readable by `read`.
fn contact(
    value: Option<&Value>,
    read: fn(&Value) -> Option<String>,
    description: &str,
    problems: &mut Problems,
) -> Option<Option<String>> {
    let Some(value) = value.filter(|value| !value.is_null()) else {
        return Some(None);
    };
    let read = read(value);
    if read.is_none() {
        problems.add("requester", description);
    }
    read.map(Some)
}

/// `local@domain` with no spaces.
fn is_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !text.contains(char::is_whitespace)
}

/// 3 to 32 characters of digits, spaces and `+ - ( )`, with at least 3 digits.
fn is_phone(text: &str) -> bool {
    (3..=32).contains(&text.chars().count())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')'))
        && text.chars().filter(char::is_ascii_digit).count() >= 3
}

/// Tags as Zendesk keeps them: lower case, whitespace runs turned into `_`, no duplicates.
fn tags(value: &Value, problems: &mut Problems) -> Vec<String> {
    let normalized: Option<Vec<String>> = value.as_array().and_then(|items| {
        items
            .iter()
            .map(|item| short_text(item).map(|tag| normalize_tag(&tag)))
            .collect()
    });
    let Some(normalized) = normalized else {
        problems.add(
            "tags",
            format!(
                "Tags: must be a list of non-blank texts of at most {MAX_TEXT_CHARS} characters"
            ),
        );
        return Vec::new();
    };
    let mut tags = Vec::with_capacity(normalized.len());
    for tag in normalized {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

fn normalize_tag(tag: &str) -> String {
    tag.split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}

/// `[{"id": <a field the account defines>, "value": <of the field's kind, or null>}]`.
fn custom_fields(value: &Value, problems: &mut Problems) -> Vec<CustomField> {
    let Some(items) = value.as_array() else {
        problems.add(
            "custom_fields",
            "Custom fields: must be a list of {id, value}",
        );
        return Vec::new();
    };
    let mut fields = Vec::with_capacity(items.len());
    for item in items {
        match custom_field(item) {
            Ok(field) => fields.push(field),
            Err(description) => problems.add("custom_fields", description),
        }
    }
    fields
}

fn custom_field(item: &Value) -> Result<CustomField, String> {
    let id = item
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("Custom fields: {item} has no numeric id"))?;
    let field = ticket_field(id).ok_or_else(|| format!("Custom field {id}: does not exist"))?;
    let value = item.get("value").cloned().unwrap_or(Value::Null);
    let fits = match field.kind {
        _ if value.is_null() => true,
        FieldKind::Text => value.is_string(),
        FieldKind::Integer => value.is_i64() || value.is_u64(),
    };
    if !fits {
        return Err(format!(
            "Custom field {id} ({}): {value} is not a valid {} value",
            field.key,
            field.kind.as_str()
        ));
    }
    Ok(CustomField { id, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({"ticket": {
            "subject": "Refund",
            "comment": {"body": "Please refund order 42"},
            "requester": {"name": "Li Lei", "phone": "+86 138 0000 0000"}
        }})
    }

    fn with(field: &str, value: Value) -> Value {
        let mut body = minimal();
        body["ticket"][field] = value;
        body
    }

    fn fields_at_fault(body: &Value) -> Vec<&'static str> {
        match NewTicket::parse(body) {
            Err(TicketError::Invalid(details)) => details.into_keys().collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_minimal_ticket_parses_and_a_missing_subject_comes_from_the_description()
    -> anyhow::Result<()> {
        let parsed = NewTicket::parse(&minimal())?;
        assert_eq!(parsed.subject, "Refund");
        assert_eq!(parsed.requester.phone.as_deref(), Some("+86 138 0000 0000"));
        let derived = NewTicket::parse(&with("subject", Value::Null))?;
        assert_eq!(derived.subject, "Please refund order 42");
        Ok(())
    }

    #[test]
    fn every_field_at_fault_is_reported_at_once() {
        let body = json!({"ticket": {
            "comment": {"body": "  "},
            "requester": {"email": "not-an-email"},
            "priority": "asap",
            "type": 3,
            "tags": ["ok", ""],
            "custom_fields": [{"id": 1, "value": "x"}],
            "external_id": 12
        }});
        assert_eq!(
            fields_at_fault(&body),
            vec![
                "custom_fields",
                "description",
                "external_id",
                "priority",
                "requester",
                "tags",
                "type"
            ]
        );
    }

    #[test]
    fn custom_fields_must_exist_and_hold_their_kind_of_value() -> anyhow::Result<()> {
        let ok = with(
            "custom_fields",
            json!([{"id": 360_000_001_001_u64, "value": "wechat"}, {"id": 360_000_001_005_u64, "value": 95}]),
        );
        assert_eq!(NewTicket::parse(&ok)?.custom_fields.len(), 2);
        for bad in [
            json!([{"id": 360_000_001_005_u64, "value": "95s"}]),
            json!([{"id": 360_000_001_001_u64, "value": 1}]),
            json!([{"id": 7, "value": "x"}]),
            json!({"channel": "wechat"}),
        ] {
            assert_eq!(
                fields_at_fault(&with("custom_fields", bad)),
                vec!["custom_fields"]
            );
        }
        Ok(())
    }

    #[test]
    fn tags_are_lower_cased_joined_with_underscores_and_deduplicated() -> anyhow::Result<()> {
        let parsed = NewTicket::parse(&with(
            "tags",
            json!(["VIP Customer", "vip  customer", "im"]),
        ))?;
        assert_eq!(parsed.tags, vec!["vip_customer", "im"]);
        Ok(())
    }

    #[test]
    fn an_update_reads_status_comment_and_defaults_comments_to_public() -> anyhow::Result<()> {
        let update = TicketUpdate::parse(
            &json!({"ticket": {"status": "pending", "comment": {"body": "On it"}}}),
        )?;
        assert_eq!(update.status, Some(Status::Pending));
        assert_eq!(update.comment.map(|comment| comment.public), Some(true));
        let bad = TicketUpdate::parse(
            &json!({"ticket": {"status": "done", "comment": {"public": false}}}),
        );
        let Err(TicketError::Invalid(details)) = bad else {
            anyhow::bail!("expected a 422, got {bad:?}");
        };
        assert_eq!(
            details.into_keys().collect::<Vec<_>>(),
            vec!["comment", "status"]
        );
        assert!(matches!(
            TicketUpdate::parse(&json!({"status": "open"})),
            Err(TicketError::Unreadable(..))
        ));
        Ok(())
    }
}
