//! Switchboard: a host for contact-center integrations run as sandboxed
//! WebAssembly components ("connectors").
//!
//! The folders tell the architecture: [`runtime`] knows wasmtime,
//! [`capabilities`] is the host side of each WIT import, [`registry`] knows
//! manifests and installed connectors, [`api`] knows HTTP, and [`store`] is the
//! only place that touches sled. [`app`] wires them together.
#![deny(missing_docs)]

pub mod alerts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod capabilities;
pub mod events;
pub mod invoke;
pub mod masking;
pub mod metrics;
pub mod model;
pub mod names;
pub mod pipeline;
pub mod registry;
pub mod runtime;
pub mod sealing;
pub mod store;
pub mod tls;
