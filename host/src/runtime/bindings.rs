//! The generated WIT bindings, quarantined.
//!
//! `bindgen!` output stays in this module. Imports are implemented here by
//! delegating to `crate::capabilities`; exports are called through the thin
//! functions at the bottom. Everything crossing this module's boundary is a
//! host type from `crate::model`.

use std::time::Duration;

use wasmtime::component::HasSelf;

use super::call::CallState;
use super::limits::millis;
use crate::capabilities::{self, log::Level, log::Source};
use crate::model;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "switchboard:connector/connector",
    imports: { default: async | trappable },
    exports: { default: async },
});

use self::switchboard::connector::{config, events, http, kv, log, types};

pub use self::ConnectorPre as ConnectorBindingsPre;

/// Adds the connector imports to `linker`.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<CallState>) -> wasmtime::Result<()> {
    Connector::add_to_linker::<CallState, HasSelf<CallState>>(linker, |state| state)
}

impl From<model::ConnectorError> for types::ConnectorError {
    fn from(err: model::ConnectorError) -> Self {
        Self {
            code: err.code,
            message: err.message,
            retryable: err.retryable,
        }
    }
}

impl From<types::ConnectorError> for model::ConnectorError {
    fn from(err: types::ConnectorError) -> Self {
        Self {
            code: err.code,
            message: err.message,
            retryable: err.retryable,
        }
    }
}

impl From<types::HttpRequest> for model::HttpRequest {
    fn from(r: types::HttpRequest) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<model::HttpResponse> for types::HttpResponse {
    fn from(r: model::HttpResponse) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<types::HttpResponse> for model::HttpResponse {
    fn from(r: types::HttpResponse) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<model::HttpRequest> for types::HttpRequest {
    fn from(r: model::HttpRequest) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<types::Event> for model::Event {
    fn from(e: types::Event) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            subject: e.subject,
            time_ms: e.time_ms,
            data: e.data,
        }
    }
}

impl From<model::Event> for types::Event {
    fn from(e: model::Event) -> Self {
        Self {
            id: e.id,
            kind: e.kind,
            subject: e.subject,
            time_ms: e.time_ms,
            data: e.data,
        }
    }
}

impl From<types::Info> for model::ConnectorInfo {
    fn from(info: types::Info) -> Self {
        Self {
            name: info.name,
            version: info.version,
            description: info.description,
            operations: info
                .operations
                .into_iter()
                .map(|op| model::OperationInfo {
                    name: op.name,
                    description: op.description,
                    input_schema: op.input_schema,
                    output_schema: op.output_schema,
                    idempotent: op.idempotent,
                })
                .collect(),
            emits: info.emits,
        }
    }
}

fn call_context(state: &CallState) -> types::CallContext {
    let context = &state.caps.context;
    types::CallContext {
        request_id: context.request_id.clone(),
        tenant: context.tenant.to_string(),
        agent: context.agent.clone(),
        channel: context.channel.clone(),
        customer: context.customer.clone(),
        deadline_ms: millis(state.caps.remaining()),
    }
}

impl types::Host for CallState {}

impl http::Host for CallState {
    async fn send(
        &mut self,
        req: types::HttpRequest,
    ) -> wasmtime::Result<Result<types::HttpResponse, types::ConnectorError>> {
        Ok(capabilities::http::send(&self.caps, req.into())
            .await
            .map(Into::into)
            .map_err(Into::into))
    }
}

impl kv::Host for CallState {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, types::ConnectorError>> {
        Ok(capabilities::kv::get(&self.caps, &key).map_err(Into::into))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<(), types::ConnectorError>> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(capabilities::kv::set(&self.caps, &key, &value, ttl).map_err(Into::into))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), types::ConnectorError>> {
        Ok(capabilities::kv::delete(&self.caps, &key).map_err(Into::into))
    }

    async fn set_if_absent(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<bool, types::ConnectorError>> {
        let ttl = ttl_ms.map(Duration::from_millis);
        Ok(capabilities::kv::set_if_absent(&self.caps, &key, &value, ttl).map_err(Into::into))
    }
}

impl config::Host for CallState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.caps.grants.settings.config(&key))
    }

    async fn secret(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.caps.grants.settings.secret(&key))
    }
}

impl log::Host for CallState {
    async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => Level::Trace,
            log::Level::Debug => Level::Debug,
            log::Level::Info => Level::Info,
            log::Level::Warn => Level::Warn,
            log::Level::Error => Level::Error,
        };
        capabilities::log::write(&self.caps, Source::Log, level, &message);
        Ok(())
    }
}

impl events::Host for CallState {
    async fn emit(
        &mut self,
        kind: String,
        subject: Option<String>,
        data: String,
    ) -> wasmtime::Result<Result<String, types::ConnectorError>> {
        Ok(capabilities::events::emit(&self.caps, kind, subject, data)
            .await
            .map_err(Into::into))
    }
}

/// Calls the `describe` export of a fresh instance.
pub async fn describe(
    pre: &ConnectorPre<CallState>,
    store: &mut wasmtime::Store<CallState>,
) -> wasmtime::Result<model::ConnectorInfo> {
    let instance = pre.instantiate_async(&mut *store).await?;
    Ok(instance.call_describe(store).await?.into())
}

/// Calls the `invoke` export of a fresh instance.
pub async fn invoke(
    pre: &ConnectorPre<CallState>,
    store: &mut wasmtime::Store<CallState>,
    operation: &str,
    input: &str,
) -> wasmtime::Result<Result<String, model::ConnectorError>> {
    let context = call_context(store.data());
    let instance = pre.instantiate_async(&mut *store).await?;
    Ok(instance
        .call_invoke(store, &context, operation, input)
        .await?
        .map_err(Into::into))
}

/// Calls the `handle-webhook` export of a fresh instance.
pub async fn handle_webhook(
    pre: &ConnectorPre<CallState>,
    store: &mut wasmtime::Store<CallState>,
    hook: &str,
    request: model::HttpRequest,
) -> wasmtime::Result<Result<model::WebhookOutcome, model::ConnectorError>> {
    let context = call_context(store.data());
    let instance = pre.instantiate_async(&mut *store).await?;
    Ok(instance
        .call_handle_webhook(store, &context, hook, &request.into())
        .await?
        .map(|outcome| model::WebhookOutcome {
            response: outcome.response.into(),
            events: outcome.events.into_iter().map(Into::into).collect(),
        })
        .map_err(Into::into))
}

/// Calls the `on-event` export of a fresh instance.
pub async fn on_event(
    pre: &ConnectorPre<CallState>,
    store: &mut wasmtime::Store<CallState>,
    event: model::Event,
) -> wasmtime::Result<Result<(), model::ConnectorError>> {
    let context = call_context(store.data());
    let instance = pre.instantiate_async(&mut *store).await?;
    Ok(instance
        .call_on_event(store, &context, &event.into())
        .await?
        .map_err(Into::into))
}

/// Names of the functions the world requires a component to export.
pub const REQUIRED_EXPORTS: [&str; 4] = ["describe", "invoke", "handle-webhook", "on-event"];

/// The world's full name, for error messages.
pub const WORLD: &str = "switchboard:connector/connector@0.1.1";
