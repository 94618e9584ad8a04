//! Reading Ringostat's parameters from a webhook request, however they came: a JSON object,
//! a form body, or the URL's query string (Ringostat's `GET` integrations). A parameter in
//! the body wins over one of the same name in the query string.

use serde_json::{Map, Value};
use switchboard_sdk::{Error, http};

/// The largest parameter value echoed in an error message, in characters.
const ECHO_CHARS: usize = 32;

/// The parameters of one webhook.
pub(crate) struct Payload<'a> {
    body: Body,
    query: &'a http::Request,
}

enum Body {
    Json(Map<String, Value>),
    /// A form body, held as a request whose query string is the form, to decode it alike.
    Form(http::Request),
    Empty,
}

impl<'a> Payload<'a> {
    /// The parameters of `request`; a body that is neither a form nor a JSON object is
    /// `payload_invalid`.
    pub(crate) fn parse(request: &'a http::Request) -> Result<Self, Error> {
        let body = if request.body.iter().all(u8::is_ascii_whitespace) {
            Body::Empty
        } else if is_form(request) {
            let form = String::from_utf8_lossy(&request.body);
            Body::Form(http::Request::new("POST", format!("form:?{}", form.trim())))
        } else {
            Body::Json(serde_json::from_slice(&request.body).map_err(|e| {
                payload_invalid(format!(
                    "the body is neither a JSON object nor a form (application/x-www-form-urlencoded): {e}"
                ))
            })?)
        };
        Ok(Self {
            body,
            query: request,
        })
    }

    /// The parameter `name` as text, trimmed; absent, empty, `null`, an object or an array
    /// count as not sent.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        let in_body = match &self.body {
            Body::Json(object) => object.get(name).and_then(scalar_text),
            Body::Form(form) => form.query_param(name),
            Body::Empty => None,
        };
        in_body
            .or_else(|| self.query.query_param(name))
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    }

    /// The parameter `name` as a whole number, if sent; anything else is `payload_invalid`.
    pub(crate) fn number(&self, name: &str) -> Result<Option<u64>, Error> {
        self.text(name)
            .map(|text| {
                text.parse().map_err(|_| {
                    let shown: String = text.chars().take(ECHO_CHARS).collect();
                    payload_invalid(format!(
                        "the `{name}` parameter must be a whole number, not `{shown}`"
                    ))
                })
            })
            .transpose()
    }
}

fn is_form(request: &http::Request) -> bool {
    request.header_value("content-type").is_some_and(|value| {
        value
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// `payload_invalid`: the webhook is authentic but cannot be read.
pub(crate) fn payload_invalid(message: impl Into<String>) -> Error {
    Error::new("payload_invalid", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str, content_type: Option<&str>, body: &str) -> http::Request {
        let request = http::Request::new("POST", url).body(body);
        match content_type {
            Some(value) => request.header("Content-Type", value),
            None => request,
        }
    }

    #[test]
    fn json_form_and_query_parameters_read_alike() -> Result<(), Error> {
        let json = request(
            "http://h/v1/hooks/ringostat/call?key=k&dst=%2B2",
            Some("application/json"),
            r#"{"caller":"+1","step":2,"utm_source":"","recording":null}"#,
        );
        let form = request(
            "http://h/v1/hooks/ringostat/call?key=k&dst=%2B2",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            "caller=%2B1&step=2&utm_source=",
        );
        let query = request(
            "http://h/v1/hooks/ringostat/call?key=k&dst=%2B2&caller=%2B1&step=2",
            None,
            "",
        );
        for request in [json, form, query] {
            let payload = Payload::parse(&request)?;
            assert_eq!(payload.text("caller").as_deref(), Some("+1"));
            assert_eq!(payload.text("dst").as_deref(), Some("+2"));
            assert_eq!(payload.number("step")?, Some(2));
            assert_eq!(payload.text("utm_source"), None);
            assert_eq!(payload.text("recording"), None);
        }
        Ok(())
    }

    #[test]
    fn unreadable_bodies_and_numbers_are_payload_invalid() -> Result<(), Error> {
        let not_json = request("http://h/x", Some("application/json"), "<xml/>");
        let error = Payload::parse(&not_json).err().map(|e| e.code);
        assert_eq!(error.as_deref(), Some("payload_invalid"));
        let array = request("http://h/x", None, "[1]");
        assert!(Payload::parse(&array).is_err());
        let bad_number = request("http://h/x", None, r#"{"billsec":"12s"}"#);
        let error = Payload::parse(&bad_number)?.number("billsec").err();
        assert_eq!(error.map(|e| e.code).as_deref(), Some("payload_invalid"));
        Ok(())
    }
}
