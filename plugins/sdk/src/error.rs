//! The one error type connectors return and host capabilities report.

use std::fmt;

/// How much of an upstream body [`Error::upstream_status`] quotes.
const BODY_EXCERPT_CHARS: usize = 200;

/// A failure a connector reports to its caller, or a host capability reports to
/// the connector.
///
/// `code` is a stable `snake_case` identifier callers branch on; `message` is for
/// people and must never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Stable machine-readable identifier, such as `tracking_not_found`.
    pub code: String,
    /// Human-readable explanation, safe to show and to log.
    pub message: String,
    /// Whether the same call may succeed if it is tried again later.
    pub retryable: bool,
}

impl Error {
    /// A failure that trying again will not fix.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// A transient failure: the same call may succeed later.
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            ..Self::new(code, message)
        }
    }

    /// The caller's input is wrong (code `invalid_input`).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new("invalid_input", message)
    }

    /// An upstream answered with a status the connector does not handle itself.
    ///
    /// 401 and 403 map to `upstream_unauthorized`, 404 to `upstream_not_found`,
    /// 429 and 5xx to the retryable `upstream_unavailable`, anything else to
    /// `upstream_error`. The message quotes the start of `body`.
    pub fn upstream_status(status: u16, body: &[u8]) -> Self {
        let message = format!("upstream answered HTTP {status}: {}", excerpt(body));
        match status {
            401 | 403 => Self::new("upstream_unauthorized", message),
            404 => Self::new("upstream_not_found", message),
            429 | 500..=599 => Self::retryable("upstream_unavailable", message),
            _ => Self::new("upstream_error", message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// The first characters of `body` as text, marked when cut short.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut chars = text.chars();
    let mut excerpt: String = chars.by_ref().take(BODY_EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_status_maps_auth_failures_to_unauthorized() {
        for status in [401, 403] {
            let error = Error::upstream_status(status, b"{}");
            assert_eq!(error.code, "upstream_unauthorized");
            assert!(!error.retryable);
        }
    }

    #[test]
    fn upstream_status_maps_404_to_not_found() {
        let error = Error::upstream_status(404, b"");
        assert_eq!(error.code, "upstream_not_found");
        assert!(!error.retryable);
    }

    #[test]
    fn upstream_status_marks_throttling_and_server_errors_retryable() {
        for status in [429, 500, 502, 503, 599] {
            let error = Error::upstream_status(status, b"busy");
            assert_eq!(error.code, "upstream_unavailable", "status {status}");
            assert!(error.retryable, "status {status}");
        }
    }

    #[test]
    fn upstream_status_maps_other_statuses_to_upstream_error() {
        for status in [300, 400, 409, 418, 422] {
            let error = Error::upstream_status(status, b"nope");
            assert_eq!(error.code, "upstream_error", "status {status}");
            assert!(!error.retryable, "status {status}");
        }
    }

    #[test]
    fn upstream_status_quotes_a_bounded_excerpt_of_the_body() {
        let error = Error::upstream_status(500, "é".repeat(1000).as_bytes());
        assert!(error.message.starts_with("upstream answered HTTP 500: é"));
        assert!(error.message.ends_with('…'));
        assert!(error.message.chars().count() < BODY_EXCERPT_CHARS + 40);

        let error = Error::upstream_status(502, b"  \n");
        assert_eq!(error.message, "upstream answered HTTP 502: (empty body)");
    }

    #[test]
    fn display_shows_code_and_message() {
        let error = Error::invalid_input("`carrier` must not be empty");
        assert_eq!(
            error.to_string(),
            "invalid_input: `carrier` must not be empty"
        );
    }
}
