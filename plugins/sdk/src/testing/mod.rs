//! Run a connector in-process from a plain `cargo test`, without a host.
//!
//! Built natively (any target but `wasm32`), the SDK's capabilities are
//! answered by a [`TestHost`]: configuration and secrets you set, a key-value
//! store in memory, events and log lines it keeps for you to inspect, and
//! outbound HTTP answered by recorded responses or by a live upstream such as
//! the sandbox (`switchboard sandbox`). The connector's code is the same code
//! the component runs; only the host is different.
//!
//! ```no_run
//! # use switchboard_sdk::{Connector, Operation};
//! # struct Weather;
//! # impl Connector for Weather {
//! #     const NAME: &'static str = "weather";
//! #     const VERSION: &'static str = "0.1.0";
//! #     const DESCRIPTION: &'static str = "";
//! #     fn operations() -> Vec<Operation> { Vec::new() }
//! # }
//! use serde_json::json;
//! use switchboard_sdk::http::Response;
//! use switchboard_sdk::testing::TestHost;
//!
//! // In a connector crate: TestHost::from_manifest(include_str!("../connector.toml"))
//! let manifest = r#"
//!     name = "weather"
//!     version = "0.1.0"
//!     [capabilities]
//!     allowed_hosts = ["127.0.0.1"]
//!     config = ["base_url"]
//!     secrets = ["api_key"]
//!     [config_defaults]
//!     base_url = "http://127.0.0.1:18081"
//! "#;
//! let host = TestHost::from_manifest(manifest)
//!     .unwrap()
//!     .with_secret("api_key", "sk_test")
//!     .respond(
//!         "GET",
//!         "http://127.0.0.1:18081/v1/weather/Shanghai",
//!         Response::new(200).body(r#"{"temperature": 21.5}"#),
//!     );
//! let report = host.invoke::<Weather>("current", &json!({"name": "Shanghai"})).unwrap();
//! assert_eq!(report["temperature"], 21.5);
//! assert_eq!(host.requests()[0].header_value("authorization"), Some("Bearer sk_test"));
//! ```
//!
//! What the harness does not do that a host does: check input against the
//! published schema, enforce deadlines and memory limits, run the call
//! pipeline (retries, cache, breaker), or store events durably. The
//! end-to-end tests against a real host cover those.

pub(crate) mod imports;
mod manifest;
#[cfg(test)]
mod tests;
mod upstream;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::bindings::Guest;
use crate::bindings::switchboard::connector::types as wit;
use crate::log::Level;
use crate::wire::Exports;
use crate::{Connector, Context, Error, Event, WebhookOutcome, http};

pub use upstream::Exchange;

use manifest::Grants;
use upstream::Upstream;

/// An in-memory host for one connector under test. Each call runs the
/// connector on the calling thread with this host answering its imports.
///
/// Cloning gives another handle to the same host (same kv, same records).
#[derive(Clone)]
pub struct TestHost {
    state: Rc<RefCell<State>>,
}

/// Everything a [`TestHost`] holds; the imports read and write it during a call.
pub(crate) struct State {
    grants: Option<Grants>,
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    kv: BTreeMap<String, StoredValue>,
    upstream: Upstream,
    context: Context,
    exchanges: Vec<Exchange>,
    events: Vec<EmittedEvent>,
    logs: Vec<(Level, String)>,
    calls: u64,
}

struct StoredValue {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl StoredValue {
    fn is_live(&self) -> bool {
        self.expires.is_none_or(|expires| Instant::now() < expires)
    }
}

/// An event the connector emitted through [`events::emit`](crate::events::emit).
#[derive(Debug, Clone, PartialEq)]
pub struct EmittedEvent {
    /// The id the host returned, `evt-<n>` in order of emission.
    pub id: String,
    /// Dotted kind such as `payment.link_created`.
    pub kind: String,
    /// What the event is about, when the connector said.
    pub subject: Option<String>,
    /// The payload.
    pub data: Value,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// A host that grants everything: any configuration key and secret may be
    /// read, any URL requested. Outbound HTTP is answered only by responses
    /// added with [`respond`](Self::respond) until [`live`](Self::live) is called.
    pub fn new() -> Self {
        Self {
            state: Rc::new(RefCell::new(State {
                grants: None,
                config: BTreeMap::new(),
                secrets: BTreeMap::new(),
                kv: BTreeMap::new(),
                upstream: Upstream::default(),
                context: Context {
                    request_id: String::new(),
                    tenant: "default".to_owned(),
                    agent: None,
                    channel: None,
                    customer: None,
                    deadline_ms: 30_000,
                },
                exchanges: Vec::new(),
                events: Vec::new(),
                logs: Vec::new(),
                calls: 0,
            })),
        }
    }

    /// A host that grants what the manifest `connector_toml` grants, as a real
    /// host would: only the declared configuration keys and secrets are
    /// visible, `config_defaults` apply, and a URL outside `allowed_hosts`
    /// fails with `host_not_allowed`. Pass `include_str!("../connector.toml")`.
    ///
    /// Fails with `manifest_invalid` when the manifest does not parse.
    pub fn from_manifest(connector_toml: &str) -> Result<Self, Error> {
        let grants = Grants::parse(connector_toml)?;
        let host = Self::new();
        {
            let mut state = host.state.borrow_mut();
            state.config.clone_from(&grants.config_defaults);
            state.grants = Some(grants);
        }
        Ok(host)
    }

    /// Sets the configuration key `key`.
    #[must_use]
    pub fn with_config(self, key: &str, value: &str) -> Self {
        self.state
            .borrow_mut()
            .config
            .insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the secret `name`. Recordings saved with
    /// [`save_exchanges`](Self::save_exchanges) never contain its value.
    #[must_use]
    pub fn with_secret(self, name: &str, value: &str) -> Self {
        self.state
            .borrow_mut()
            .secrets
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sets the call context of the calls that follow; the request id is
    /// filled in per call when left empty.
    #[must_use]
    pub fn with_context(self, context: Context) -> Self {
        self.state.borrow_mut().context = context;
        self
    }

    /// Answers the next `method` request to exactly `url` (query included)
    /// with `response`. Responses for one request are used in the order they
    /// were added, each once; a request without one fails with `http_failed`.
    #[must_use]
    pub fn respond(self, method: &str, url: &str, response: http::Response) -> Self {
        self.state
            .borrow_mut()
            .upstream
            .add(Exchange::new(http::Request::new(method, url), response));
        self
    }

    /// Answers requests with the exchanges recorded in the JSON file at `path`
    /// (as [`save_exchanges`](Self::save_exchanges) writes them), in order.
    ///
    /// Fails with `recording_invalid` when the file cannot be read or parsed.
    pub fn replay_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        for exchange in upstream::load(path.as_ref())? {
            self.state.borrow_mut().upstream.add(exchange);
        }
        Ok(self)
    }

    /// Sends requests without a recorded response to the network, such as a
    /// sandbox provider on loopback. Plain `http` only.
    #[must_use]
    pub fn live(self) -> Self {
        self.state.borrow_mut().upstream.go_live();
        self
    }

    /// Runs `operation` with `input` as a call would, and returns its output.
    ///
    /// Fails with the connector's own error, or with `invalid_json` when
    /// `input` cannot be written as JSON.
    pub fn invoke<C: Connector>(
        &self,
        operation: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Result<Value, Error> {
        let input = serde_json::to_string(input)
            .map_err(|e| Error::new("invalid_json", format!("input is not JSON: {e}")))?;
        let output = self.run(|ctx| Exports::<C>::invoke(ctx, operation.to_owned(), input))?;
        serde_json::from_str(&output).map_err(|e| {
            Error::new(
                "invalid_output",
                format!("`{operation}` returned something that is not JSON: {e}"),
            )
        })
    }

    /// Delivers `request` to the connector's webhook `hook`.
    pub fn webhook<C: Connector>(
        &self,
        hook: &str,
        request: http::Request,
    ) -> Result<WebhookOutcome, Error> {
        let outcome =
            self.run(|ctx| Exports::<C>::handle_webhook(ctx, hook.to_owned(), request.into()))?;
        Ok(WebhookOutcome {
            response: outcome.response.into(),
            events: outcome.events.into_iter().map(Into::into).collect(),
        })
    }

    /// Delivers `event` to the connector's event handler.
    pub fn on_event<C: Connector>(&self, event: Event) -> Result<(), Error> {
        self.run(|ctx| Exports::<C>::on_event(ctx, event.into()))
    }

    /// Every request the connector sent, in order, as it sent it.
    pub fn requests(&self) -> Vec<http::Request> {
        self.state
            .borrow()
            .exchanges
            .iter()
            .map(|exchange| exchange.request.clone())
            .collect()
    }

    /// Every request the connector sent with the response it got, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.borrow().exchanges.clone()
    }

    /// Writes [`exchanges`](Self::exchanges) to `path` as JSON for
    /// [`replay_file`](Self::replay_file), with every secret value replaced by
    /// `<secret:NAME>`. Record once against the sandbox, replay offline.
    ///
    /// Fails with `recording_invalid` when the file cannot be written.
    pub fn save_exchanges(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let state = self.state.borrow();
        upstream::save(path.as_ref(), &state.exchanges, &state.secrets)
    }

    /// Every event the connector emitted, in order.
    pub fn events(&self) -> Vec<EmittedEvent> {
        self.state.borrow().events.clone()
    }

    /// Every line the connector logged, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.state.borrow().logs.clone()
    }

    /// The live value stored under `key`.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        let state = self.state.borrow();
        let stored = state.kv.get(key)?;
        stored.is_live().then(|| stored.value.clone())
    }

    /// Stores `value` under `key`, as if an earlier call had.
    #[must_use]
    pub fn with_kv(self, key: &str, value: &[u8], ttl: Option<Duration>) -> Self {
        self.state.borrow_mut().kv.insert(
            key.to_owned(),
            StoredValue {
                value: value.to_vec(),
                expires: ttl.map(|ttl| Instant::now() + ttl),
            },
        );
        self
    }

    /// Runs `call` with this host answering the imports, on this thread.
    fn run<T>(
        &self,
        call: impl FnOnce(wit::CallContext) -> Result<T, wit::ConnectorError>,
    ) -> Result<T, Error> {
        let ctx = {
            let mut state = self.state.borrow_mut();
            state.calls += 1;
            let mut ctx = state.context.clone();
            if ctx.request_id.is_empty() {
                ctx.request_id = format!("test-{}", state.calls);
            }
            wit::CallContext::from(ctx)
        };
        let _active = imports::activate(self.state.clone());
        call(ctx).map_err(Error::from)
    }
}
