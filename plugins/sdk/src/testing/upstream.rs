//! Where a [`TestHost`](super::TestHost)'s outbound requests are answered:
//! recorded exchanges first, then, when live, the network.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::{Error, http};

/// Longest a live request may take: the host's default HTTP timeout (3 s).
const LIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest live response body read.
const LIVE_BODY_LIMIT: u64 = 16 << 20;

/// A request the connector sent and the response it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request, as the connector sent it.
    pub request: http::Request,
    /// The response it got.
    pub response: http::Response,
}

impl Exchange {
    /// An exchange of `request` for `response`.
    pub fn new(request: http::Request, response: http::Response) -> Self {
        Self { request, response }
    }
}

/// Recorded answers waiting to be used, and the live client once enabled.
#[derive(Default)]
pub(super) struct Upstream {
    recorded: Vec<Exchange>,
    live: Option<ureq::Agent>,
}

impl Upstream {
    pub(super) fn add(&mut self, exchange: Exchange) {
        self.recorded.push(exchange);
    }

    pub(super) fn go_live(&mut self) {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(LIVE_TIMEOUT))
            .build();
        self.live = Some(config.into());
    }

    pub(super) fn live_agent(&self) -> Option<ureq::Agent> {
        self.live.clone()
    }

    /// The first unused recorded response to `request`'s method and URL; a
    /// recorded URL may carry `<secret:NAME>` where the request has the secret.
    pub(super) fn take(
        &mut self,
        request: &http::Request,
        secrets: &BTreeMap<String, String>,
    ) -> Option<http::Response> {
        let redacted_url = redact(&request.url, secrets);
        let position = self.recorded.iter().position(|recorded| {
            recorded
                .request
                .method
                .eq_ignore_ascii_case(&request.method)
                && (recorded.request.url == request.url || recorded.request.url == redacted_url)
        })?;
        Some(self.recorded.remove(position).response)
    }
}

/// Sends `request` over the network; failures are `http_failed`, `http_timeout`
/// or `http_response_too_large`, as on the host.
pub(super) fn send(agent: &ureq::Agent, request: &http::Request) -> Result<http::Response, Error> {
    let mut builder = ureq::http::Request::builder()
        .method(request.method.as_str())
        .uri(request.url.as_str());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let outgoing = builder
        .body(request.body.clone())
        .map_err(|e| Error::new("invalid_request", format!("the request is not valid: {e}")))?;
    let mut incoming = agent.run(outgoing).map_err(|e| match e {
        ureq::Error::Timeout(_) => {
            Error::retryable("http_timeout", format!("no answer in {LIVE_TIMEOUT:?}"))
        }
        other => Error::retryable(
            "http_failed",
            format!("{} {}: {other}", request.method, request.url),
        ),
    })?;
    let headers = incoming
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let status = incoming.status().as_u16();
    let body = incoming
        .body_mut()
        .with_config()
        .limit(LIVE_BODY_LIMIT)
        .read_to_vec()
        .map_err(|e| Error::new("http_response_too_large", format!("reading the body: {e}")))?;
    Ok(http::Response {
        status,
        headers,
        body,
    })
}

/// An exchange as a recording file stores it.
#[derive(Serialize, Deserialize)]
struct RecordedExchange {
    request: RecordedMessage,
    response: RecordedMessage,
}

/// A request (method and URL) or a response (status), headers and body.
#[derive(Serialize, Deserialize)]
struct RecordedMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Body::is_empty")]
    body: Body,
}

/// A body as text when it is UTF-8, as base64 otherwise.
#[derive(Default, Serialize, Deserialize)]
#[serde(untagged)]
enum Body {
    #[default]
    Empty,
    Text(String),
    Binary {
        base64: String,
    },
}

impl Body {
    fn is_empty(&self) -> bool {
        matches!(self, Self::Empty)
    }

    fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok("") => Self::Empty,
            Ok(text) => Self::Text(text.to_owned()),
            Err(_) => Self::Binary {
                base64: BASE64.encode(bytes),
            },
        }
    }

    fn into_bytes(self) -> Result<Vec<u8>, String> {
        match self {
            Self::Empty => Ok(Vec::new()),
            Self::Text(text) => Ok(text.into_bytes()),
            Self::Binary { base64 } => BASE64.decode(base64).map_err(|e| e.to_string()),
        }
    }
}

fn recording_invalid(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::new(
        "recording_invalid",
        format!("recording {}: {detail}", path.display()),
    )
}

/// The exchanges recorded in the file at `path`.
pub(super) fn load(path: &Path) -> Result<Vec<Exchange>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| recording_invalid(path, e))?;
    let recorded: Vec<RecordedExchange> =
        serde_json::from_str(&text).map_err(|e| recording_invalid(path, e))?;
    recorded
        .into_iter()
        .enumerate()
        .map(|(index, exchange)| {
            let at = |what: &str| recording_invalid(path, format!("exchange {index}: {what}"));
            let request = exchange.request;
            let response = exchange.response;
            Ok(Exchange {
                request: http::Request {
                    method: request
                        .method
                        .ok_or_else(|| at("the request has no method"))?,
                    url: request.url.ok_or_else(|| at("the request has no url"))?,
                    headers: request.headers,
                    body: request.body.into_bytes().map_err(|e| at(&e))?,
                },
                response: http::Response {
                    status: response
                        .status
                        .ok_or_else(|| at("the response has no status"))?,
                    headers: response.headers,
                    body: response.body.into_bytes().map_err(|e| at(&e))?,
                },
            })
        })
        .collect()
}

/// `text` with every value in `secrets` replaced by `<secret:NAME>`.
fn redact(text: &str, secrets: &BTreeMap<String, String>) -> String {
    secrets
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .fold(text.to_owned(), |text, (name, value)| {
            text.replace(value.as_str(), &format!("<secret:{name}>"))
        })
}

/// Writes `exchanges` to `path`, every value in `secrets` replaced by `<secret:NAME>`.
pub(super) fn save(
    path: &Path,
    exchanges: &[Exchange],
    secrets: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let redact = |text: &str| redact(text, secrets);
    let redact_headers = |headers: &[(String, String)]| {
        headers
            .iter()
            .map(|(name, value)| (name.clone(), redact(value)))
            .collect()
    };
    let redact_body = |body: &[u8]| match Body::of(body) {
        Body::Text(text) => Body::Text(redact(&text)),
        other => other,
    };
    let recorded: Vec<RecordedExchange> = exchanges
        .iter()
        .map(|exchange| RecordedExchange {
            request: RecordedMessage {
                method: Some(exchange.request.method.clone()),
                url: Some(redact(&exchange.request.url)),
                status: None,
                headers: redact_headers(&exchange.request.headers),
                body: redact_body(&exchange.request.body),
            },
            response: RecordedMessage {
                method: None,
                url: None,
                status: Some(exchange.response.status),
                headers: redact_headers(&exchange.response.headers),
                body: redact_body(&exchange.response.body),
            },
        })
        .collect();
    let text = serde_json::to_string_pretty(&recorded).map_err(|e| recording_invalid(path, e))?;
    std::fs::write(path, text + "\n").map_err(|e| recording_invalid(path, e))
}
