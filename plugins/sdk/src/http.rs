//! Outbound HTTP through the host, restricted to the hosts the manifest allows,
//! and the request and response types webhooks use.
//!
//! ```no_run
//! # fn run() -> Result<(), switchboard_sdk::Error> {
//! use switchboard_sdk::http;
//!
//! let response = http::post("http://127.0.0.1:18082/v1/things")
//!     .bearer("token")
//!     .header("Idempotency-Key", "order-42")
//!     .json(&serde_json::json!({ "name": "thing" }))?
//!     .send()?;
//! if response.is_success() {
//!     let created: serde_json::Value = response.json()?;
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt::Write as _;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::host;

/// An HTTP request, sent by a connector or received by a webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Method in upper case, such as `GET` or `POST`.
    pub method: String,
    /// Absolute URL, including the query string.
    pub url: String,
    /// Header names and values, in order; names are case-insensitive.
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as sent or received.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            ..Self::default()
        }
    }

    /// Adds a header, keeping any already present under the same name.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    #[must_use]
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// Sets the raw body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets `body` as the JSON body, with `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(body).map_err(|e| {
            Error::new(
                "invalid_request",
                format!("request body cannot be written as JSON: {e}"),
            )
        })?;
        Ok(self.header("Content-Type", "application/json").body(body))
    }

    /// The first value of the header `name`, compared case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The first value of the query parameter `name`, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.url.split_once('?')?.1;
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| percent_decode(key) == name)
            .map(|(_, value)| percent_decode(value))
    }

    /// Sends the request; see [`send`].
    pub fn send(self) -> Result<Response, Error> {
        send(self)
    }
}

/// An HTTP response, received from an upstream or returned to a webhook's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header, keeping any already present under the same name.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the raw body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON; fails with `upstream_invalid_response` when it
    /// does not parse as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                "upstream_invalid_response",
                format!(
                    "upstream answered HTTP {} with unexpected JSON: {e}",
                    self.status
                ),
            )
        })
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of the header `name`, compared case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A `GET` request to `url`, to finish with [`Request::send`].
pub fn get(url: impl Into<String>) -> Request {
    Request::new("GET", url)
}

/// A `POST` request to `url`, to finish with [`Request::send`].
pub fn post(url: impl Into<String>) -> Request {
    Request::new("POST", url)
}

/// Sends `request` and returns the upstream's response, whatever its status.
///
/// Fails with `host_not_allowed` when the URL's host is not granted in the
/// manifest, `invalid_request` for a malformed URL, method or header,
/// `http_timeout` when the manifest's HTTP timeout passes, `http_response_too_large`
/// when the body exceeds the manifest's cap, and `http_failed` for connection errors.
/// If the call's own deadline passes first, the host ends the whole call.
pub fn send(request: Request) -> Result<Response, Error> {
    host::http_send(request)
}

/// `value` percent-encoded for use as one URL path segment, so that `/`, `?`,
/// `#` and the like in caller input cannot change which resource is addressed.
///
/// Fails with `invalid_input` for an empty value, `.` or `..`, which no encoding
/// keeps from being read as "this" or "the parent" directory.
pub fn path_segment(value: &str) -> Result<String, Error> {
    if matches!(value, "" | "." | "..") {
        return Err(Error::invalid_input(format!(
            "`{value}` cannot be a URL path segment"
        )));
    }
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    Ok(encoded)
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_collects_method_url_headers_and_json_body() {
        let request = post("http://127.0.0.1:1/v1/x")
            .bearer("t0k3n")
            .header("Idempotency-Key", "order-1")
            .json(&serde_json::json!({"a": 1}))
            .expect("a JSON value serializes");
        assert_eq!(request.method, "POST");
        assert_eq!(request.url, "http://127.0.0.1:1/v1/x");
        assert_eq!(request.header_value("authorization"), Some("Bearer t0k3n"));
        assert_eq!(request.header_value("IDEMPOTENCY-KEY"), Some("order-1"));
        assert_eq!(
            request.header_value("content-type"),
            Some("application/json")
        );
        assert_eq!(request.body, br#"{"a":1}"#);
    }

    #[test]
    fn response_json_failure_is_upstream_invalid_response() {
        let response = Response::new(200).body("<html>");
        let error = response
            .json::<serde_json::Value>()
            .expect_err("HTML is not JSON");
        assert_eq!(error.code, "upstream_invalid_response");
        assert!(response.is_success());
        assert!(!Response::new(302).is_success());
    }

    #[test]
    fn path_segment_encodes_everything_but_unreserved_characters() {
        assert_eq!(path_segment("SF-123_4.5~x"), Ok("SF-123_4.5~x".to_owned()));
        assert_eq!(path_segment("a/b?c#d"), Ok("a%2Fb%3Fc%23d".to_owned()));
        assert_eq!(path_segment("顺丰"), Ok("%E9%A1%BA%E4%B8%B0".to_owned()));
        assert_eq!(path_segment("a b%"), Ok("a%20b%25".to_owned()));
    }

    #[test]
    fn path_segment_rejects_segments_that_navigate() {
        for value in ["", ".", ".."] {
            let error = path_segment(value).expect_err("navigating segment");
            assert_eq!(error.code, "invalid_input");
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes stay as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod query_tests {
    use super::*;

    #[test]
    fn query_parameters_are_found_and_decoded() {
        let request = Request::new("POST", "http://h/v1/hooks/c/h?key=a%2Bb%3D&x=1+2&flag#frag");
        assert_eq!(request.query_param("key").as_deref(), Some("a+b="));
        assert_eq!(request.query_param("x").as_deref(), Some("1 2"));
        assert_eq!(request.query_param("flag").as_deref(), Some(""));
        assert_eq!(request.query_param("none"), None);
        assert_eq!(percent_decode("100%"), "100%");
    }
}
