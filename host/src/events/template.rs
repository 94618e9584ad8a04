//! Reading event fields by path and building documents from templates.
//!
//! An event is seen as one JSON document, its [`view`]: `id`, `sequence`,
//! `source`, `tenant`, `kind`, `subject`, `time_ms` and the parsed `data`.
//! A path such as `data.caller.phone` or `data.items.0.sku` reads a field.
//! A template is any JSON document whose strings may hold `{{path}}`
//! placeholders: a string that is exactly one placeholder becomes the field's
//! value with its type; placeholders inside longer text are replaced by the
//! field's text.

use serde_json::{Map, Value};

use crate::store::StoredEvent;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A placeholder names a field the event does not have.
    #[error("the event has no field `{0}`")]
    MissingField(String),
    /// A placeholder is not closed.
    #[error("unclosed placeholder in `{0}`")]
    Unclosed(String),
}

/// The document paths and templates read.
pub fn view(sequence: u64, event: &StoredEvent) -> Value {
    let data = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    serde_json::json!({
        "id": event.id,
        "sequence": sequence,
        "source": event.connector,
        "tenant": event.tenant,
        "kind": event.kind,
        "subject": event.subject,
        "time_ms": event.time_ms,
        "data": data,
    })
}

/// The field at the dotted `path`, if present.
pub fn lookup<'a>(view: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(view, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// A field's value as text: strings as they are, anything else as JSON.
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Checks that every placeholder in `template` is closed.
pub fn check(template: &Value) -> Result<(), TemplateError> {
    match template {
        Value::String(text) => placeholders(text).map(drop),
        Value::Array(items) => items.iter().try_for_each(check),
        Value::Object(map) => map.values().try_for_each(check),
        _ => Ok(()),
    }
}

/// Renders `template` against an event's `view`.
pub fn render(template: &Value, view: &Value) -> Result<Value, TemplateError> {
    Ok(match template {
        Value::String(text) => render_text(text, view)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| render(item, view))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| Ok((key.clone(), render(value, view)?)))
                .collect::<Result<Map<_, _>, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// One piece of a template string.
enum Piece<'a> {
    Text(&'a str),
    Field(&'a str),
}

fn placeholders(text: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            pieces.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Unclosed(text.to_owned()))?;
        pieces.push(Piece::Field(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

fn render_text(text: &str, view: &Value) -> Result<Value, TemplateError> {
    let field =
        |path: &str| lookup(view, path).ok_or_else(|| TemplateError::MissingField(path.to_owned()));
    match placeholders(text)?.as_slice() {
        [Piece::Field(path)] => field(path).cloned(),
        pieces => {
            let mut out = String::with_capacity(text.len());
            for piece in pieces {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Field(path) => out.push_str(&as_text(field(path)?)),
                }
            }
            Ok(Value::String(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        let event = StoredEvent {
            id: "m-1".into(),
            connector: "im".into(),
            tenant: "acme".into(),
            kind: "im.message".into(),
            subject: Some("conv-9".into()),
            time_ms: 5,
            data: r#"{"text":"where is my refund","user":{"phone":"+8613800000000","vip":true},"items":[{"sku":"A"}]}"#.into(),
        };
        view(42, &event)
    }

    #[test]
    fn a_lone_placeholder_keeps_the_fields_type_and_text_interpolates() {
        let template = json!({
            "phone": "{{data.user.phone}}",
            "vip": "{{ data.user.vip }}",
            "title": "IM {{subject}}: {{data.text}}",
            "first": ["{{data.items.0.sku}}", 7],
            "seq": "{{sequence}}"
        });
        assert_eq!(
            render(&template, &sample()).expect("render"),
            json!({
                "phone": "+8613800000000",
                "vip": true,
                "title": "IM conv-9: where is my refund",
                "first": ["A", 7],
                "seq": 42
            })
        );
    }

    #[test]
    fn a_missing_field_or_an_unclosed_placeholder_is_an_error() {
        assert_eq!(
            render(&json!("{{data.nope}}"), &sample()),
            Err(TemplateError::MissingField("data.nope".into()))
        );
        assert!(matches!(
            check(&json!({"a": ["x {{data.text"]})),
            Err(TemplateError::Unclosed(_))
        ));
        assert_eq!(lookup(&sample(), "data.items.1"), None);
    }
}
