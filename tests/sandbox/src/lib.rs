//! Fake upstream providers on loopback that behave like the real ones, for trying and testing
//! Switchboard connectors: parcel tracking (logistics), payment links (payment), Clink
//! outbound calls (clink), Ringostat call tracking (ringostat), Easemob customer service
//! (easemob), a CRM (crm), a ticket system (tickets), IM and SMS channels (messaging) and
//! an AI text analysis service (ai).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use switchboard_sandbox::{FaultConfig, Provider, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await?;
//! // Point a connector at sandbox.url(Provider::Logistics) with LOGISTICS_API_KEY …
//! sandbox.faults(Provider::Payment).set(FaultConfig { failure_rate: 0.5, ..FaultConfig::default() });
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Each provider also answers control routes that need no key and suffer no faults:
//! `GET|PUT|DELETE /__sandbox/faults` and `GET /__sandbox/stats`. This module owns starting
//! and stopping the servers; each provider's behaviour lives in its own module.

#![deny(missing_docs)]

mod ai;
mod auth;
mod clink;
mod clock;
mod crm;
mod easemob;
mod error;
mod faults;
mod logistics;
mod messaging;
mod payment;
mod ringostat;
mod subscriber;
mod tickets;
mod upstream;
mod webhook;

#[cfg(test)]
mod test_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;

pub use faults::{DEFAULT_FAILURE_STATUS, FaultConfig, Faults};
pub use subscriber::{Received, Subscriber};
use upstream::{Server, Upstream};

/// The API key the logistics provider accepts, sent as `Authorization: Bearer <key>`.
pub const LOGISTICS_API_KEY: &str = "sk_sandbox_logistics";
/// The API key the payment provider accepts, sent as `Authorization: Bearer <key>`.
pub const PAYMENT_API_KEY: &str = "sk_sandbox_payment";
/// The enterprise id the Clink provider knows.
pub const CLINK_ENTERPRISE_ID: &str = "7000001";
/// The login password of every Clink sandbox agent; requests carry its MD5 as `pwd`.
pub const CLINK_AGENT_PASSWORD: &str = "sandbox-clink";
/// The Easemob tenant the sandbox serves.
pub const EASEMOB_TENANT_ID: &str = "20080";
/// The Easemob `clientId` the sandbox accepts.
pub const EASEMOB_CLIENT_ID: &str = "8340a6d8-211f-4b81-9202-63ce46f27c02";
/// The Easemob `secretId` the sandbox accepts.
pub const EASEMOB_SECRET_ID: &str = "ca906984-80f1-41b0-a272-6000df3f76c4";
/// The API key the CRM accepts, sent as `Authorization: Bearer <key>`.
pub const CRM_API_KEY: &str = "sk_sandbox_crm";
/// The API token the ticket system accepts, sent as `Authorization: Bearer <key>`.
pub const TICKETS_API_KEY: &str = "sk_sandbox_tickets";
/// The API key the IM and SMS gateway accepts, sent as `Authorization: Bearer <key>`.
pub const MESSAGING_API_KEY: &str = "sk_sandbox_messaging";
/// The API key the AI analysis service accepts, sent as `Authorization: Bearer <key>`.
pub const AI_API_KEY: &str = "sk_sandbox_ai";

/// One fake provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Parcel tracking in the style of Chinese express carriers' open platforms.
    Logistics,
    /// Payment links in the style of Stripe.
    Payment,
    /// Clink (天润融通) outbound calls and call-end pushes.
    Clink,
    /// Ringostat call tracking: plays calls and sends their webhooks.
    Ringostat,
    /// Easemob (环信) customer service: tokens, business bindings, session routing.
    Easemob,
    /// A CRM with customers, tags, orders and tickets.
    Crm,
    /// A ticket system in the style of Zendesk, with status-change webhooks.
    Tickets,
    /// IM (WeChat-style) and SMS channels, with inbound-message webhooks.
    Messaging,
    /// Sentiment and intent analysis of texts and transcripts.
    Ai,
}

impl Provider {
    /// Every provider, in port order.
    pub const ALL: [Provider; 9] = [
        Provider::Logistics,
        Provider::Payment,
        Provider::Clink,
        Provider::Ringostat,
        Provider::Easemob,
        Provider::Crm,
        Provider::Tickets,
        Provider::Messaging,
        Provider::Ai,
    ];

    /// The provider's name, as in `--provider NAME=ADDR` and the logs.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Logistics => "logistics",
            Provider::Payment => "payment",
            Provider::Clink => "clink",
            Provider::Ringostat => "ringostat",
            Provider::Easemob => "easemob",
            Provider::Crm => "crm",
            Provider::Tickets => "tickets",
            Provider::Messaging => "messaging",
            Provider::Ai => "ai",
        }
    }

    /// The provider called `name`, if any.
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.name() == name)
    }

    /// The fixed loopback port people use (18083 is the webhook receiver's).
    pub fn default_port(self) -> u16 {
        match self {
            Provider::Logistics => 18081,
            Provider::Payment => 18082,
            Provider::Clink => 18084,
            Provider::Ringostat => 18085,
            Provider::Easemob => 18086,
            Provider::Crm => 18087,
            Provider::Tickets => 18088,
            Provider::Messaging => 18089,
            Provider::Ai => 18090,
        }
    }

    /// The path prefix of the provider's API: requests under it are counted and suffer
    /// faults; control routes and pages for people do not.
    fn api_prefix(self) -> &'static str {
        match self {
            Provider::Clink => "/interface/",
            Provider::Easemob => "/api/",
            Provider::Tickets => "/api/v2/",
            _ => "/v1/",
        }
    }

    /// The provider's own routes for a server reachable at `base_url`.
    fn routes(self, base_url: &str) -> Router {
        match self {
            Provider::Logistics => logistics::routes(),
            Provider::Payment => payment::routes(base_url),
            Provider::Clink => clink::routes(),
            Provider::Ringostat => ringostat::routes(),
            Provider::Easemob => easemob::routes(),
            Provider::Crm => crm::routes(),
            Provider::Tickets => tickets::routes(),
            Provider::Messaging => messaging::routes(),
            Provider::Ai => ai::routes(),
        }
    }
}

/// Where the providers listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    addrs: [SocketAddr; Provider::ALL.len()],
}

impl Default for SandboxConfig {
    /// Fixed ports for people on `127.0.0.1`: see [`Provider::default_port`].
    fn default() -> Self {
        Self {
            addrs: Provider::ALL
                .map(|provider| SocketAddr::from((Ipv4Addr::LOCALHOST, provider.default_port()))),
        }
    }
}

impl SandboxConfig {
    /// Ports chosen by the OS on `127.0.0.1`, so tests can run side by side.
    pub fn ephemeral() -> Self {
        Self {
            addrs: [SocketAddr::from((Ipv4Addr::LOCALHOST, 0)); Provider::ALL.len()],
        }
    }

    /// The same configuration with `provider` on `addr`.
    pub fn with(mut self, provider: Provider, addr: SocketAddr) -> Self {
        self.addrs[provider as usize] = addr;
        self
    }

    /// Where `provider` listens.
    pub fn addr(&self, provider: Provider) -> SocketAddr {
        self.addrs[provider as usize]
    }
}

/// Every fake provider, serving in background tokio tasks until [`Sandbox::shutdown`] or
/// drop.
#[derive(Debug)]
pub struct Sandbox {
    servers: Vec<Server>,
}

impl Sandbox {
    /// Binds every address, then serves each provider in a background task. Fails without
    /// serving anything if any address cannot be bound.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let mut listeners = Vec::with_capacity(Provider::ALL.len());
        for provider in Provider::ALL {
            listeners.push(bind(provider.name(), config.addr(provider)).await?);
        }
        let mut servers = Vec::with_capacity(listeners.len());
        for (provider, listener) in Provider::ALL.into_iter().zip(listeners) {
            let base_url = url_of(listener.local_addr()?);
            let upstream = Arc::new(Upstream::default());
            let app = upstream::app(
                provider.routes(&base_url),
                Arc::clone(&upstream),
                provider.api_prefix(),
            );
            servers.push(Server::spawn(provider.name(), listener, app, upstream)?);
        }
        Ok(Sandbox { servers })
    }

    fn server(&self, provider: Provider) -> &Server {
        &self.servers[provider as usize]
    }

    /// The provider's base URL, e.g. `http://127.0.0.1:18081`.
    pub fn url(&self, provider: Provider) -> String {
        url_of(self.server(provider).addr())
    }

    /// The provider's live fault settings.
    pub fn faults(&self, provider: Provider) -> &Faults {
        &self.server(provider).upstream().faults
    }

    /// How many API requests the provider has received, whatever their outcome.
    pub fn requests(&self, provider: Provider) -> u64 {
        self.server(provider).upstream().requests()
    }

    /// The logistics provider's base URL, e.g. `http://127.0.0.1:18081`.
    pub fn logistics_url(&self) -> String {
        self.url(Provider::Logistics)
    }

    /// The payment provider's base URL, e.g. `http://127.0.0.1:18082`.
    pub fn payment_url(&self) -> String {
        self.url(Provider::Payment)
    }

    /// The logistics provider's live fault settings.
    pub fn logistics_faults(&self) -> &Faults {
        self.faults(Provider::Logistics)
    }

    /// The payment provider's live fault settings.
    pub fn payment_faults(&self) -> &Faults {
        self.faults(Provider::Payment)
    }

    /// How many `/v1/*` requests the logistics provider has received, whatever their outcome.
    pub fn logistics_requests(&self) -> u64 {
        self.requests(Provider::Logistics)
    }

    /// How many `/v1/*` requests the payment provider has received, whatever their outcome.
    pub fn payment_requests(&self) -> u64 {
        self.requests(Provider::Payment)
    }

    /// Stops accepting connections and waits (a few seconds at most) for in-flight requests
    /// to finish.
    pub async fn shutdown(self) {
        futures::future::join_all(self.servers.into_iter().map(Server::shutdown)).await;
    }
}

async fn bind(provider: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the sandbox {provider} provider to {addr}"))
}

/// A URL clients can reach: a server bound to every interface is reached on loopback.
fn url_of(addr: SocketAddr) -> String {
    let mut reachable = addr;
    if addr.ip().is_unspecified() {
        reachable.set_ip(if addr.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    format!("http://{reachable}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{client, get_json, start};

    #[test]
    fn the_default_config_uses_the_documented_fixed_ports() {
        let config = SandboxConfig::default();
        assert_eq!(
            config.addr(Provider::Logistics).to_string(),
            "127.0.0.1:18081"
        );
        assert_eq!(
            config.addr(Provider::Payment).to_string(),
            "127.0.0.1:18082"
        );
        assert_eq!(config.addr(Provider::Ai).to_string(), "127.0.0.1:18090");
        for provider in Provider::ALL {
            assert_eq!(Provider::from_name(provider.name()), Some(provider));
        }
    }

    #[test]
    fn a_server_bound_to_every_interface_is_reached_on_loopback() {
        assert_eq!(
            url_of(SocketAddr::from(([0, 0, 0, 0], 80))),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            url_of(SocketAddr::from(([127, 0, 0, 1], 9))),
            "http://127.0.0.1:9"
        );
    }

    #[tokio::test]
    async fn an_ephemeral_sandbox_serves_every_provider_on_distinct_loopback_ports()
    -> anyhow::Result<()> {
        let sandbox = start().await?;
        let urls: std::collections::BTreeSet<String> =
            Provider::ALL.map(|provider| sandbox.url(provider)).into();
        assert_eq!(urls.len(), Provider::ALL.len());
        for url in urls {
            assert!(url.starts_with("http://127.0.0.1:"), "{url}");
            assert_eq!(
                get_json(&format!("{url}/__sandbox/stats"), None).await?.0,
                200
            );
        }
        sandbox.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn starting_on_a_taken_address_fails_and_names_it() -> anyhow::Result<()> {
        let first = start().await?;
        let taken: SocketAddr = first.payment_url().trim_start_matches("http://").parse()?;
        let second =
            Sandbox::start(SandboxConfig::ephemeral().with(Provider::Payment, taken)).await;
        let message = format!(
            "{:#}",
            second.err().context("the second start should fail")?
        );
        assert!(message.contains(&taken.to_string()), "{message}");
        first.shutdown().await;
        Ok(())
    }

    #[tokio::test]
    async fn after_shutdown_the_providers_refuse_connections() -> anyhow::Result<()> {
        let sandbox = start().await?;
        let url = format!("{}/__sandbox/stats", sandbox.logistics_url());
        assert_eq!(get_json(&url, None).await?.0, 200);
        sandbox.shutdown().await;
        assert!(client()?.get(&url).send().await.is_err());
        Ok(())
    }
}
