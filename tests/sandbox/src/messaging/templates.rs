//! The message templates the gateway has approved, shared by the IM template messages and
//! templated SMS: which fields each needs, and the text the customer sees.

use std::collections::BTreeMap;

/// An approved template: its id, the fields it needs and its text, where `{field}` stands for
/// a field's value.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Template {
    pub(super) id: &'static str,
    pub(super) fields: &'static [&'static str],
    text: &'static str,
}

/// Every template the gateway knows.
pub(super) const TEMPLATES: [Template; 2] = [
    Template {
        id: "ticket_status",
        fields: &["ticket_id", "status"],
        text: "Your ticket {ticket_id} is now {status}.",
    },
    Template {
        id: "payment_reminder",
        fields: &["order_id", "amount", "url"],
        text: "Please pay {amount} for order {order_id}: {url}",
    },
];

/// The template called `id`, if the gateway knows it.
pub(super) fn find(id: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|template| template.id == id)
}

/// The ids of every template, for error messages.
pub(super) fn known_ids() -> String {
    TEMPLATES.map(|template| template.id).join(", ")
}

impl Template {
    /// The first field the template needs that `values` lacks.
    pub(super) fn missing_field(&self, values: &BTreeMap<String, String>) -> Option<&'static str> {
        self.fields
            .iter()
            .copied()
            .find(|field| !values.contains_key(*field))
    }

    /// The text with each `{field}` replaced by its value, in one pass so that a value which
    /// itself looks like `{field}` stays as written.
    pub(super) fn render(&self, values: &BTreeMap<String, String>) -> String {
        let mut rendered = String::with_capacity(self.text.len());
        let mut rest = self.text;
        while let Some(open) = rest.find('{') {
            rendered.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    match values.get(name) {
                        Some(value) => rendered.push_str(value),
                        None => rendered.push_str(&rest[open..=open + close + 1]),
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    rendered.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        rendered.push_str(rest);
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_template_renders_each_field_once_even_when_a_value_looks_like_a_placeholder() {
        let template = find("ticket_status");
        let rendered =
            template.map(|t| t.render(&values(&[("ticket_id", "{status}"), ("status", "solved")])));
        assert_eq!(
            rendered.as_deref(),
            Some("Your ticket {status} is now solved.")
        );
    }

    #[test]
    fn the_first_missing_field_is_named_and_unknown_templates_are_none() {
        let template = find("payment_reminder");
        let missing = template.and_then(|t| t.missing_field(&values(&[("order_id", "A-1")])));
        assert_eq!(missing, Some("amount"));
        assert!(find("welcome").is_none());
        assert_eq!(known_ids(), "ticket_status, payment_reminder");
    }
}
