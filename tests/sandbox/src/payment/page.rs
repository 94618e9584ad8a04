//! The page a customer opens from a payment link, with a button that pays it.
//!
//! This module owns only the HTML; the routes that serve it and act on the button live in
//! the parent module.

use super::link::{LinkStatus, PaymentLink};

/// The checkout page for a link.
pub(crate) fn checkout(link: &PaymentLink) -> String {
    let description = link
        .description
        .as_deref()
        .map(|text| format!("<p>{}</p>", escape(text)))
        .unwrap_or_default();
    let action = match link.status {
        LinkStatus::Pending => format!(
            r#"<form method="post" action="/pay/{}"><button type="submit">Pay (sandbox)</button></form>"#,
            escape(&link.id)
        ),
        LinkStatus::Paid => "<p>Thank you, this order is paid.</p>".to_owned(),
        LinkStatus::Expired => "<p>This link has expired.</p>".to_owned(),
    };
    document(
        &format!("Pay {} {}", link.display_amount(), link.currency.code()),
        &format!(
            "<p>Order {order}</p>{description}<p><strong>{amount} {currency}</strong></p>\
             <p>Status: {status}</p>{action}",
            order = escape(&link.order_id),
            amount = link.display_amount(),
            currency = link.currency.code(),
            status = link.status.as_str(),
        ),
    )
}

/// The page for a link id the provider never issued.
pub(crate) fn unknown() -> String {
    document(
        "Payment link not found",
        "<p>This payment link does not exist.</p>",
    )
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\
         <body><main><p><em>Switchboard sandbox: no real money moves.</em></p>\
         <h1>{title}</h1>{body}</main></body></html>\n"
    )
}

/// Makes untrusted text safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape(r#"<b onclick='x'>"&"</b>"#),
            "&lt;b onclick=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/b&gt;"
        );
    }
}
