//! Helpers the crate's tests share: a fresh sandbox, and an HTTP client that only ever talks
//! to it.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::{Sandbox, SandboxConfig};

/// A sandbox on OS-chosen loopback ports.
pub(crate) async fn start() -> anyhow::Result<Sandbox> {
    Sandbox::start(SandboxConfig::ephemeral()).await
}

/// A client that ignores proxy settings, so traffic stays on loopback.
pub(crate) fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

/// Status and JSON body of a `GET`, with the bearer key if given.
pub(crate) async fn get_json(url: &str, key: Option<&str>) -> anyhow::Result<(u16, Value)> {
    send_json(Method::GET, url, key, None).await
}

/// Status and JSON body of a `POST` of `body`, with the bearer key if given.
pub(crate) async fn post_json(
    url: &str,
    key: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, Value)> {
    send_json(Method::POST, url, key, Some(body)).await
}

/// Status and JSON body of a `PUT` of `body` to a control route.
pub(crate) async fn put_json(url: &str, body: &str) -> anyhow::Result<(u16, Value)> {
    send_json(Method::PUT, url, None, Some(body)).await
}

async fn send_json(
    method: Method,
    url: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request: RequestBuilder = client()?.request(method, url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    read_json(request.send().await?).await
}

/// Status and JSON body of a response; a body that is not JSON is an error.
pub(crate) async fn read_json(response: Response) -> anyhow::Result<(u16, Value)> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    let body = serde_json::from_slice(&bytes).map_err(|error| {
        anyhow::anyhow!(
            "status {status}, body is not JSON ({error}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((status, body))
}
