//! Write a Switchboard connector in one short file.
//!
//! A connector is a WebAssembly component that integrates one third-party system
//! (a carrier, a payment provider, a CRM, ...) with the Switchboard host. This crate
//! hides the WIT bindings: you implement [`Connector`], list your typed
//! [`Operation`]s, and call [`export_connector!`]. Inputs and outputs are plain Rust
//! types; their JSON Schemas are derived with [`JsonSchema`] and published by
//! `describe`. The host capabilities are in [`http`], [`kv`], [`config`], [`log`]
//! and [`events`]; [`signature`] verifies what webhook providers send.
//!
//! Test without a host: built natively, a plain `cargo test` runs the connector
//! in-process against a [`testing::TestHost`] with configuration, secrets and
//! kv in memory and upstream HTTP answered by recordings or the sandbox.
//!
//! Build with `cargo build --target wasm32-wasip2` (the workspace's `guest` profile
//! keeps the component small) and ship the `.wasm` with its `connector.toml`.
//!
//! ```no_run
//! use switchboard_sdk::{
//!     Connector, Context, Deserialize, Error, JsonSchema, Operation, Serialize, config,
//!     export_connector, http,
//! };
//!
//! struct Weather;
//!
//! impl Connector for Weather {
//!     const NAME: &'static str = "weather";
//!     const VERSION: &'static str = "0.1.0";
//!     const DESCRIPTION: &'static str = "Current weather for a city.";
//!
//!     fn operations() -> Vec<Operation> {
//!         vec![Operation::new("current", "Current weather in a city.", current).idempotent()]
//!     }
//! }
//!
//! /// A city to look up.
//! #[derive(Deserialize, JsonSchema)]
//! struct City {
//!     /// City name, such as `Shanghai`.
//!     name: String,
//! }
//!
//! /// The weather right now.
//! #[derive(Serialize, Deserialize, JsonSchema)]
//! struct Report {
//!     /// Temperature in degrees Celsius.
//!     temperature: f64,
//! }
//!
//! fn current(_ctx: &Context, city: City) -> Result<Report, Error> {
//!     let base_url = config::require("base_url")?;
//!     let url = format!("{base_url}/v1/weather/{}", http::path_segment(&city.name)?);
//!     let response = http::get(url)
//!         .bearer(&config::require_secret("api_key")?)
//!         .send()?;
//!     if !response.is_success() {
//!         return Err(Error::upstream_status(response.status, &response.body));
//!     }
//!     response.json()
//! }
//!
//! export_connector!(Weather);
//! ```
#![deny(missing_docs)]

mod connector;
mod context;
mod error;
mod host;
mod operation;
mod wire;

pub mod config;
pub mod events;
pub mod http;
pub mod kv;
pub mod log;
pub mod signature;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use connector::{Connector, WebhookOutcome};
pub use context::Context;
pub use error::Error;
pub use events::Event;
pub use operation::Operation;
pub use schemars::JsonSchema;
pub use serde::{Deserialize, Serialize};

/// The WIT bindings generated from `wit/connector.wit`; used by [`export_connector!`].
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "__export_connector_world",
        default_bindings_module: "::switchboard_sdk::bindings",
    });
}

/// Implementation details of [`export_connector!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::wire::Exports;
}

/// Exports a type implementing [`Connector`] as this crate's component.
///
/// Invoke it once, at the top level of the connector's `lib.rs`, as in
/// `export_connector!(MyConnector);` (see the [crate example](crate)). It exports
/// the component's `describe`, `invoke`, `handle-webhook` and `on-event`.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        const _: () = {
            type __SwitchboardExports = $crate::__private::Exports<$connector>;
            $crate::bindings::__export_connector_world!(
                __SwitchboardExports with_types_in $crate::bindings
            );
        };
    };
}
