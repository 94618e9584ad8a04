//! Rules (triggers): when an event matches, do something with it.
//!
//! A rule matches on the event's kind, a keyword in a text field, and field
//! conditions, all of which must hold. Its action invokes a connector
//! operation with an input built from the event by a template, or sends the
//! event to an outbound subscription.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::kinds::{KindPattern, any_matches};
use super::template::{self, lookup};
use crate::names::ConnectorName;

/// A rule as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id.
    pub id: String,
    /// When it was created, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// What the operator gave.
    #[serde(flatten)]
    pub spec: RuleSpec,
}

/// What an operator says a rule is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for people.
    pub name: String,
    /// Whether it fires.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Only events of this tenant, when set.
    #[serde(default)]
    pub tenant: Option<String>,
    /// What the event must be.
    #[serde(rename = "match")]
    pub matcher: Matcher,
    /// What to do.
    pub action: Action,
}

fn yes() -> bool {
    true
}

/// Conditions an event must meet, all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// The kinds it applies to.
    pub kinds: Vec<KindPattern>,
    /// A word that must appear in a text field.
    #[serde(default)]
    pub keyword: Option<Keyword>,
    /// Conditions on fields.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Some words, one of which must appear in a text field (case-insensitively).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyword {
    /// The field's path, such as `data.text`.
    pub field: String,
    /// The words.
    pub any: Vec<String>,
}

/// A condition on one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field's path, such as `data.priority`.
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// What it is compared with (not used by `exists`).
    #[serde(default)]
    pub value: Value,
}

/// How a field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (JSON equality).
    Eq,
    /// Not equal (a missing field is not equal).
    Ne,
    /// Numerically greater.
    Gt,
    /// Numerically greater or equal.
    Gte,
    /// Numerically less.
    Lt,
    /// Numerically less or equal.
    Lte,
    /// The text contains the value, or the list contains it.
    Contains,
    /// The value (a list) contains the field.
    In,
    /// The field is present and not null.
    Exists,
}

/// What a rule does with a matching event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Invoke a connector operation.
    Invoke {
        /// The connector.
        connector: ConnectorName,
        /// Its operation.
        operation: String,
        /// The input, as a template over the event.
        input: Value,
    },
    /// Send the event to an outbound subscription.
    Notify {
        /// The subscription's id.
        subscription: String,
    },
}

impl RuleSpec {
    /// Checks what serde cannot: non-empty names, kinds and words; values
    /// fit for their comparison; templates that parse.
    pub fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err("`name` must be 1-200 characters".into());
        }
        if self.matcher.kinds.is_empty() {
            return Err("`match.kinds` must list at least one kind pattern".into());
        }
        if let Some(keyword) = &self.matcher.keyword
            && (keyword.any.is_empty() || keyword.any.iter().any(|w| w.trim().is_empty()))
        {
            return Err("`match.keyword.any` must list non-empty words".into());
        }
        for condition in &self.matcher.conditions {
            let fits = match condition.op {
                Op::Gt | Op::Gte | Op::Lt | Op::Lte => condition.value.is_number(),
                Op::In => condition.value.is_array(),
                Op::Exists => true,
                Op::Eq | Op::Ne | Op::Contains => !condition.value.is_null(),
            };
            if !fits || condition.field.is_empty() {
                return Err(format!(
                    "condition on `{}` with `{:?}` needs a field and a value that fits it (a number to compare, a list for `in`)",
                    condition.field, condition.op
                ));
            }
        }
        if let Action::Invoke {
            operation, input, ..
        } = &self.action
        {
            if operation.is_empty() {
                return Err("`action.invoke.operation` must not be empty".into());
            }
            template::check(input).map_err(|err| format!("`action.invoke.input`: {err}"))?;
        }
        Ok(())
    }

    /// Whether the event, seen as `view`, of `kind` and `tenant` matches.
    pub fn matches(&self, kind: &str, tenant: &str, view: &Value) -> bool {
        self.enabled
            && self.tenant.as_deref().is_none_or(|t| t == tenant)
            && any_matches(&self.matcher.kinds, kind)
            && self
                .matcher
                .keyword
                .as_ref()
                .is_none_or(|k| keyword_found(k, view))
            && self.matcher.conditions.iter().all(|c| holds(c, view))
    }
}

fn keyword_found(keyword: &Keyword, view: &Value) -> bool {
    let Some(Value::String(text)) = lookup(view, &keyword.field) else {
        return false;
    };
    let text = text.to_lowercase();
    keyword
        .any
        .iter()
        .any(|word| text.contains(&word.to_lowercase()))
}

fn holds(condition: &Condition, view: &Value) -> bool {
    let field = lookup(view, &condition.field);
    let expected = &condition.value;
    let compare = |ordering: fn(f64, f64) -> bool| matches!((field.and_then(Value::as_f64), expected.as_f64()), (Some(a), Some(b)) if ordering(a, b));
    match condition.op {
        Op::Eq => field == Some(expected),
        Op::Ne => field.is_some_and(|f| f != expected),
        Op::Gt => compare(|a, b| a > b),
        Op::Gte => compare(|a, b| a >= b),
        Op::Lt => compare(|a, b| a < b),
        Op::Lte => compare(|a, b| a <= b),
        Op::Contains => match (field, expected) {
            (Some(Value::String(text)), Value::String(part)) => text.contains(part.as_str()),
            (Some(Value::Array(items)), value) => items.contains(value),
            _ => false,
        },
        Op::In => matches!((field, expected), (Some(f), Value::Array(items)) if items.contains(f)),
        Op::Exists => field.is_some_and(|f| !f.is_null()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(matcher: Value) -> RuleSpec {
        serde_json::from_value(json!({
            "name": "refunds to tickets",
            "match": matcher,
            "action": {"invoke": {"connector": "tickets", "operation": "open", "input": {"title": "{{data.text}}"}}}
        }))
        .expect("rule")
    }

    fn message(text: &str, priority: i64) -> Value {
        json!({"kind": "im.message", "data": {"text": text, "priority": priority, "tags": ["vip"]}})
    }

    #[test]
    fn kind_keyword_and_conditions_must_all_hold() {
        let spec = rule(json!({
            "kinds": ["im.*"],
            "keyword": {"field": "data.text", "any": ["refund", "退款"]},
            "conditions": [
                {"field": "data.priority", "op": "gte", "value": 2},
                {"field": "data.tags", "op": "contains", "value": "vip"}
            ]
        }));
        spec.check().expect("valid");
        assert!(spec.matches("im.message", "t", &message("I want a REFUND", 3)));
        assert!(spec.matches("im.message", "t", &message("我要退款", 2)));
        assert!(!spec.matches("im.message", "t", &message("hello", 3)));
        assert!(!spec.matches("im.message", "t", &message("refund", 1)));
        assert!(!spec.matches("sms.message", "t", &message("refund", 3)));
    }

    #[test]
    fn every_operator_compares_as_documented() {
        let view = json!({"data": {"n": 5, "s": "abc", "none": null}});
        let check = |field: &str, op: Op, value: Value| {
            holds(
                &Condition {
                    field: field.into(),
                    op,
                    value,
                },
                &view,
            )
        };
        assert!(check("data.n", Op::Eq, json!(5)));
        assert!(check("data.n", Op::Ne, json!(4)));
        assert!(!check("data.missing", Op::Ne, json!(4)));
        assert!(check("data.n", Op::Gt, json!(4)) && !check("data.n", Op::Gt, json!(5)));
        assert!(check("data.n", Op::Lte, json!(5)) && check("data.n", Op::Lt, json!(6)));
        assert!(check("data.s", Op::Contains, json!("b")));
        assert!(check("data.s", Op::In, json!(["x", "abc"])));
        assert!(check("data.s", Op::Exists, Value::Null));
        assert!(!check("data.none", Op::Exists, Value::Null));
        assert!(!check("data.s", Op::Gt, json!(1)));
    }

    #[test]
    fn misfit_values_and_broken_templates_are_refused() {
        let mut spec = rule(
            json!({"kinds": ["x"], "conditions": [{"field": "data.n", "op": "gt", "value": "five"}]}),
        );
        assert!(spec.check().is_err());
        spec = rule(json!({"kinds": []}));
        assert!(spec.check().is_err());
        spec = rule(json!({"kinds": ["x"]}));
        spec.action = Action::Invoke {
            connector: ConnectorName::parse("tickets").expect("name"),
            operation: "open".into(),
            input: json!("{{data.text"),
        };
        assert!(spec.check().is_err());
    }
}
