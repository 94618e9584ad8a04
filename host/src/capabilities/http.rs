//! `http`: outbound requests to the hosts a manifest allows, and nowhere else.
//!
//! Every refusal is a `connector-error` the guest can handle, never a trap:
//! `host_not_allowed`, `invalid_request`, `http_timeout`,
//! `http_response_too_large`, `http_failed`, `circuit_open`. Redirects are
//! not followed, so a granted host cannot bounce a request to one that is
//! not granted. Error messages name the host but never the full URL, which
//! may carry secrets. Each upstream `host:port` has a circuit breaker, and
//! an upstream's `Retry-After` is noted for the call pipeline's retries.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use reqwest::Url;
use serde::{Deserialize, Deserializer};

use super::CallCapabilities;
use crate::model::{ConnectorError, HttpRequest, HttpResponse};
use crate::pipeline::breaker::{BreakerPolicy, BreakerView, CircuitBreaker, Outcome};
use crate::pipeline::retry::parse_retry_after;

/// One entry of a manifest's `allowed_hosts`: `host`, `host:port`, `*.domain`
/// or `*.domain:port`. Without a port, any port is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    any_subdomain: bool,
    port: Option<u16>,
}

impl FromStr for AllowedHost {
    type Err = String;

    fn from_str(entry: &str) -> Result<Self, Self::Err> {
        let (any_subdomain, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let invalid = || format!("`{entry}` is not a host, host:port or *.domain");
        // A non-special scheme keeps an explicit port even when it is 80 or 443.
        let url = Url::parse(&format!("allowed://{rest}")).map_err(|_| invalid())?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(invalid)?;
        if url.path() != ""
            || url.query().is_some()
            || !url.username().is_empty()
            || rest.contains('/')
        {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            any_subdomain,
            port: url.port(),
        })
    }
}

impl<'de> Deserialize<'de> for AllowedHost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any_subdomain {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl AllowedHost {
    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.any_subdomain {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|prefix| prefix.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The hosts one connector may call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowlist(Vec<AllowedHost>);

impl HostAllowlist {
    /// An allowlist of exactly these entries; empty allows nothing.
    pub fn new(entries: Vec<AllowedHost>) -> Self {
        Self(entries)
    }

    /// Whether `url` may be requested.
    pub fn allows(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|entry| entry.matches(&host, port))
    }

    /// The entries, as written in a manifest.
    pub fn entries(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// Sends `request` on behalf of the calling connector.
pub async fn send(
    caps: &CallCapabilities,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let url = Url::parse(&request.url).map_err(|err| {
        ConnectorError::permanent("invalid_request", format!("the URL is not valid: {err}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConnectorError::permanent(
            "invalid_request",
            format!(
                "scheme `{}` is not supported; use http or https",
                url.scheme()
            ),
        ));
    }
    let target = host_and_port(&url);
    if !caps.grants.allowed_hosts.allows(&url) {
        return Err(ConnectorError::permanent(
            "host_not_allowed",
            format!("`{target}` is not in this connector's allowed_hosts"),
        ));
    }
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|_| {
        ConnectorError::permanent(
            "invalid_request",
            format!("`{}` is not an HTTP method", request.method),
        )
    })?;
    let mut builder = caps.services.http.request(method, url);
    for (name, value) in &request.headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ConnectorError::permanent(
                "invalid_request",
                format!("`{name}` is not a valid header name"),
            )
        })?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            ConnectorError::permanent(
                "invalid_request",
                format!("the value of header `{name}` is not valid"),
            )
        })?;
        builder = builder.header(name, value);
    }
    let breaker = caps.services.upstreams.of(&target);
    let permit = breaker.acquire(Instant::now()).map_err(|open| {
        ConnectorError::transient(
            "circuit_open",
            format!(
                "`{target}` failed repeatedly, so the host stopped calling it; retry after {} ms",
                open.retry_after.as_millis()
            ),
        )
    })?;
    // The call's deadline bounds this request too, so a hung upstream times
    // out here (and counts against its breaker) rather than in the runtime.
    let budget = caps.grants.limits.http_timeout.min(caps.remaining());
    let cap = caps.grants.limits.http_response_bytes;
    let started = Instant::now();
    let exchange = async {
        let response = builder.body(request.body).send().await?;
        read_response(response, cap, &target).await
    };
    let result = match tokio::time::timeout(budget, exchange).await {
        Ok(result) => result,
        Err(_) => Err(ConnectorError::transient(
            "http_timeout",
            format!("`{target}` did not answer within {} ms", budget.as_millis()),
        )),
    };
    let unhealthy = match &result {
        Ok(response) => response.status >= 500,
        Err(err) => err.retryable,
    };
    let outcome = Outcome {
        failed: unhealthy,
        latency: started.elapsed(),
    };
    breaker.record(permit, Instant::now(), outcome);
    if let Ok(response) = &result {
        let retry_after = response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, value)| parse_retry_after(value, SystemTime::now()));
        caps.upstream.record(retry_after);
    }
    result
}

/// One circuit breaker per upstream `host:port`, shared by every connector
/// on this host: an upstream that keeps failing (5xx, timeouts, refused
/// connections) is not called for a while, and calls to it fail at once
/// with the retryable `circuit_open`.
pub struct UpstreamBreakers {
    policy: BreakerPolicy,
    breakers: Mutex<HashMap<String, Arc<CircuitBreaker>>>,
}

impl UpstreamBreakers {
    /// Breakers under `policy`, created as upstreams are first called.
    pub fn new(policy: BreakerPolicy) -> Self {
        Self {
            policy,
            breakers: Mutex::default(),
        }
    }

    fn of(&self, target: &str) -> Arc<CircuitBreaker> {
        let mut breakers = self.breakers.lock().unwrap_or_else(|p| p.into_inner());
        breakers
            .entry(target.to_owned())
            .or_insert_with(|| Arc::new(CircuitBreaker::new(self.policy.clone())))
            .clone()
    }

    /// Every upstream's breaker, by `host:port`.
    pub fn view(&self) -> BTreeMap<String, BreakerView> {
        let now = Instant::now();
        self.breakers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(target, breaker)| (target.clone(), breaker.state(now)))
            .collect()
    }
}

impl From<reqwest::Error> for ConnectorError {
    fn from(err: reqwest::Error) -> Self {
        let err = err.without_url();
        if err.is_timeout() {
            ConnectorError::transient("http_timeout", err.to_string())
        } else {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            ConnectorError::transient("http_failed", message)
        }
    }
}

async fn read_response(
    mut response: reqwest::Response,
    cap: usize,
    target: &str,
) -> Result<HttpResponse, ConnectorError> {
    let too_large = || {
        ConnectorError::permanent(
            "http_response_too_large",
            format!("the response from `{target}` is larger than {cap} bytes"),
        )
    };
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(too_large());
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn host_and_port(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        _ => "(no host)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowlist(entries: &[&str]) -> HostAllowlist {
        HostAllowlist::new(
            entries
                .iter()
                .map(|e| e.parse().expect("valid entry"))
                .collect(),
        )
    }

    fn allows(list: &HostAllowlist, url: &str) -> bool {
        list.allows(&Url::parse(url).expect("url"))
    }

    #[test]
    fn a_host_without_port_allows_every_port() {
        let list = allowlist(&["127.0.0.1"]);
        assert!(allows(&list, "http://127.0.0.1:18081/v1"));
        assert!(allows(&list, "https://127.0.0.1/"));
        assert!(!allows(&list, "http://127.0.0.2/"));
        assert!(!allows(&list, "http://[::1]:9/"));
    }

    #[test]
    fn a_port_restricts_to_exactly_that_port_even_the_default_one() {
        let list = allowlist(&["api.example.com:443"]);
        assert!(allows(&list, "https://API.example.com/track"));
        assert!(!allows(&list, "http://api.example.com/track"));
        let list = allowlist(&["api.example.com:80"]);
        assert!(allows(&list, "http://api.example.com/"));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_bare_domain_or_lookalikes() {
        let list = allowlist(&["*.example.com"]);
        assert!(allows(&list, "https://eu.api.example.com/"));
        assert!(!allows(&list, "https://example.com/"));
        assert!(!allows(&list, "https://badexample.com/"));
    }

    #[test]
    fn ipv6_entries_match_bracketed_hosts() {
        let list = allowlist(&["[::1]:8080"]);
        assert!(allows(&list, "http://[::1]:8080/"));
        assert!(!allows(&list, "http://[::1]:8081/"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["", "http://x.com", "x.com/path", "*.", "user@x.com"] {
            assert!(
                bad.parse::<AllowedHost>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn entries_print_as_written() {
        assert_eq!(
            allowlist(&["*.Example.com:8443", "127.0.0.1"]).entries(),
            ["*.example.com:8443", "127.0.0.1"]
        );
    }
}
