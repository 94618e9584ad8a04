//! The CLI as a client of a running host: `install` with progress, `invoke`,
//! and the error report every command prints for an API error.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;
use switchboard::registry::plugins_dir::read_package;

use super::explain::explain;

/// Upload chunk size; progress advances per chunk.
const UPLOAD_CHUNK: usize = 64 << 10;

/// A running host at a base URL.
pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// An error answer of the API, printed with a hint for its code.
#[derive(Debug)]
pub struct ApiFailure {
    status: u16,
    code: String,
    message: String,
    request_id: Option<String>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(hint) = explain(&self.code) {
            write!(f, "\n  hint: {hint}")?;
        }
        write!(f, "\n  HTTP {}", self.status)?;
        if let Some(id) = &self.request_id {
            write!(f, ", request id {id}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiFailure {}

/// The context of an invoke, sent as the API's context headers.
#[derive(Debug, Default, clap::Args)]
pub struct CallContextArgs {
    /// Tenant of the call (`X-Tenant`).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Agent acting (`X-Agent`).
    #[arg(long)]
    pub agent: Option<String>,
    /// Channel (`X-Channel`).
    #[arg(long)]
    pub channel: Option<String>,
    /// Customer concerned (`X-Customer`).
    #[arg(long)]
    pub customer: Option<String>,
    /// Makes retries of this call safe (`Idempotency-Key`).
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// Which host to talk to, and with what credential.
#[derive(clap::Args, Debug, Clone)]
pub struct HostArgs {
    /// The host's base URL.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key (`sbk_…`) or bearer token; the host printed an admin key at its first start.
    #[arg(long, env = "SWITCHBOARD_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl Client {
    /// A client of the host `host` names, sending its key on every request.
    pub fn new(host: &HostArgs) -> anyhow::Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = &host.key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| anyhow::anyhow!("the key holds characters a header cannot carry"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        Ok(Self {
            base: host.url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .map_err(|err| anyhow::anyhow!("cannot make an HTTP client: {err}"))?,
        })
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The underlying HTTP client, for requests built by the caller.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `request` and returns the answer's JSON (`Null` when empty), or
    /// the API's error as an [`ApiFailure`].
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .send()
            .await
            .with_context(|| format!("reaching the host at {}", self.base))?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        let error = &body["error"];
        Err(ApiFailure {
            status: status.as_u16(),
            code: error["code"].as_str().unwrap_or(status.as_str()).to_owned(),
            message: error["message"]
                .as_str()
                .unwrap_or("the host refused the request")
                .to_owned(),
            request_id: error["request_id"].as_str().map(str::to_owned),
        }
        .into())
    }

    /// Uploads the package in `dir`, showing the upload's progress and then
    /// the host's compile and check, and prints what was installed.
    pub async fn install(&self, dir: &Path, stage: bool) -> anyhow::Result<()> {
        let package = read_package(dir)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("reading the package in {}", dir.display()))?;
        let total = package.wasm.len() as u64;
        let progress = Progress::new(total);
        let bytes = bytes::Bytes::from(package.wasm);
        let sent = progress.sent.clone();
        let chunks: Vec<bytes::Bytes> = (0..bytes.len())
            .step_by(UPLOAD_CHUNK)
            .map(|start| bytes.slice(start..bytes.len().min(start + UPLOAD_CHUNK)))
            .collect();
        let stream = futures::stream::iter(chunks).map(move |chunk| {
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(chunk)
        });
        let component =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), total)
                .file_name("component.wasm");
        let mut form = reqwest::multipart::Form::new()
            .text("manifest", package.manifest)
            .part("component", component);
        if let Some(signature) = package.signature {
            form = form.text("signature", signature);
        }
        let request = self
            .http
            .post(self.url("/v1/connectors"))
            .query(&[("activate", (!stage).to_string())])
            .multipart(form);
        let answer = progress.watch(self.send(request)).await?;
        let active = answer["deployment"]["active"] == answer["version"];
        let state = match (answer["already_installed"] == true, active) {
            (true, true) => "already installed, active",
            (true, false) => "already installed, inactive",
            (false, true) => "installed and active",
            (false, false) => "installed, inactive",
        };
        println!(
            "{} {}: {state} (package {})",
            answer["name"].as_str().unwrap_or("?"),
            answer["version"].as_str().unwrap_or("?"),
            answer["package_hash"].as_str().unwrap_or("?"),
        );
        Ok(())
    }

    /// Calls `operation` of `connector` with `input` and prints the output.
    pub async fn invoke(
        &self,
        connector: &str,
        operation: &str,
        input: Value,
        context: &CallContextArgs,
    ) -> anyhow::Result<()> {
        let mut request = self
            .http
            .post(self.url(&format!(
                "/v1/connectors/{connector}/operations/{operation}"
            )))
            .json(&input);
        let headers = [
            ("x-tenant", &context.tenant),
            ("x-agent", &context.agent),
            ("x-channel", &context.channel),
            ("x-customer", &context.customer),
            ("idempotency-key", &context.idempotency_key),
        ];
        for (name, value) in headers {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        let output = self.send(request).await?;
        println!("{}", serde_json::to_string_pretty(&output)?);
        Ok(())
    }
}

/// Reads an invoke's input: inline JSON, `@file`, or `-` for stdin.
pub fn read_input(input: &str) -> anyhow::Result<Value> {
    let (text, from) = match input {
        "-" => (
            std::io::read_to_string(std::io::stdin()).context("reading the input from stdin")?,
            "stdin".to_owned(),
        ),
        _ => match input.strip_prefix('@') {
            Some(path) => (
                std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
                path.to_owned(),
            ),
            None => (input.to_owned(), "the argument".to_owned()),
        },
    };
    serde_json::from_str(&text).with_context(|| format!("the input in {from} is not JSON"))
}

/// Progress of an install on stderr: bytes uploaded, then the wait while the
/// host compiles and checks. Live on a terminal; one line per phase otherwise.
struct Progress {
    total: u64,
    sent: Arc<AtomicU64>,
    live: bool,
}

impl Progress {
    fn new(total: u64) -> Self {
        Self {
            total,
            sent: Arc::new(AtomicU64::new(0)),
            live: std::io::stderr().is_terminal(),
        }
    }

    /// Runs `answer` to completion while reporting progress.
    async fn watch<T>(&self, answer: impl std::future::Future<Output = T>) -> T {
        let started = Instant::now();
        let mut ticker =
            tokio::time::interval(Duration::from_millis(if self.live { 200 } else { 100 }));
        let mut uploaded_at = None;
        eprintln!("uploading {} KiB", self.total.div_ceil(1024));
        tokio::pin!(answer);
        loop {
            tokio::select! {
                result = &mut answer => {
                    if self.live {
                        eprint!("\r\x1b[2K");
                    }
                    let upload = uploaded_at.unwrap_or_else(|| started.elapsed());
                    eprintln!(
                        "uploaded in {:.1} s; the host compiled and checked it in {:.1} s",
                        upload.as_secs_f64(),
                        (started.elapsed() - upload).as_secs_f64()
                    );
                    return result;
                }
                _ = ticker.tick() => {
                    let sent = self.sent.load(Ordering::Relaxed).min(self.total);
                    if uploaded_at.is_none() && sent == self.total {
                        uploaded_at = Some(started.elapsed());
                        if !self.live {
                            eprintln!("uploaded; the host is compiling and checking the component");
                        }
                    }
                    if self.live {
                        let line = match uploaded_at {
                            None => format!(
                                "uploading {} / {} KiB ({}%)",
                                sent / 1024,
                                self.total.div_ceil(1024),
                                (sent * 100).checked_div(self.total).unwrap_or(100)
                            ),
                            Some(at) => format!(
                                "the host is compiling and checking the component ({:.0} s)",
                                (started.elapsed() - at).as_secs_f64()
                            ),
                        };
                        eprint!("\r\x1b[2K{line}");
                        let _ = std::io::stderr().flush();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_failure_shows_code_message_hint_and_request_id() {
        let failure = ApiFailure {
            status: 409,
            code: "version_conflict".into(),
            message: "echo 0.1.0 is installed with another package".into(),
            request_id: Some("r-1".into()),
        };
        assert_eq!(
            failure.to_string(),
            "version_conflict: echo 0.1.0 is installed with another package\n  \
             hint: this name and version are installed with a different package: bump `version` in Cargo.toml and connector.toml\n  \
             HTTP 409, request id r-1"
        );
    }

    #[test]
    fn input_is_inline_json_or_a_file_and_errors_say_where() {
        assert_eq!(
            read_input(r#"{"a": 1}"#).ok(),
            Some(serde_json::json!({"a": 1}))
        );
        let error = read_input("{oops").err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("the input in the argument is not JSON")
        );
        let error = read_input("@/nonexistent/input.json")
            .err()
            .map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("reading /nonexistent/input.json"));
    }
}
