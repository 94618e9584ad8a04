//! Fake upstream providers on loopback that behave like real ones, for trying and testing
//! Switchboard connectors: a parcel-tracking API (logistics) and a payment-link API
//! (payment).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use switchboard_sandbox::{FaultConfig, Sandbox, SandboxConfig};
//!
//! let sandbox = Sandbox::start(SandboxConfig::ephemeral()).await?;
//! // Point a connector at sandbox.logistics_url() with LOGISTICS_API_KEY …
//! sandbox.payment_faults().set(FaultConfig { failure_rate: 0.5, ..FaultConfig::default() });
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Each provider also answers control routes that need no key and suffer no faults:
//! `GET|PUT|DELETE /__sandbox/faults` and `GET /__sandbox/stats`. This module owns starting
//! and stopping the two servers; each provider's behaviour lives in its own module.

#![deny(missing_docs)]

mod auth;
mod error;
mod faults;
mod logistics;
mod payment;
mod subscriber;
mod upstream;

#[cfg(test)]
mod test_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

pub use faults::{DEFAULT_FAILURE_STATUS, FaultConfig, Faults};
pub use subscriber::{Received, Subscriber};
use upstream::{Server, Upstream};

/// The API key the logistics provider accepts, sent as `Authorization: Bearer <key>`.
pub const LOGISTICS_API_KEY: &str = "sk_sandbox_logistics";
/// The API key the payment provider accepts, sent as `Authorization: Bearer <key>`.
pub const PAYMENT_API_KEY: &str = "sk_sandbox_payment";

/// Where the providers listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The logistics provider's address.
    pub logistics_addr: SocketAddr,
    /// The payment provider's address.
    pub payment_addr: SocketAddr,
}

impl Default for SandboxConfig {
    /// Fixed ports for people: logistics on `127.0.0.1:18081`, payment on `127.0.0.1:18082`.
    fn default() -> Self {
        Self {
            logistics_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 18081)),
            payment_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 18082)),
        }
    }
}

impl SandboxConfig {
    /// Ports chosen by the OS on `127.0.0.1`, so tests can run side by side.
    pub fn ephemeral() -> Self {
        let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            logistics_addr: any_port,
            payment_addr: any_port,
        }
    }
}

/// Both fake providers, serving in background tokio tasks until [`Sandbox::shutdown`] or
/// drop.
#[derive(Debug)]
pub struct Sandbox {
    logistics: Server,
    payment: Server,
}

impl Sandbox {
    /// Binds both addresses, then serves each provider in a background task. Fails without
    /// serving anything if either address cannot be bound.
    pub async fn start(config: SandboxConfig) -> anyhow::Result<Sandbox> {
        let logistics = bind("logistics", config.logistics_addr).await?;
        let payment = bind("payment", config.payment_addr).await?;
        let payment_url = url_of(payment.local_addr()?);

        let logistics_upstream = Arc::new(Upstream::default());
        let logistics_app = upstream::app(logistics::routes(), Arc::clone(&logistics_upstream));
        let payment_upstream = Arc::new(Upstream::default());
        let payment_app =
            upstream::app(payment::routes(&payment_url), Arc::clone(&payment_upstream));

        Ok(Sandbox {
            logistics: Server::spawn("logistics", logistics, logistics_app, logistics_upstream)?,
            payment: Server::spawn("payment", payment, payment_app, payment_upstream)?,
        })
    }

    /// The logistics provider's base URL, e.g. `http://127.0.0.1:18081`.
    pub fn logistics_url(&self) -> String {
        url_of(self.logistics.addr())
    }

    /// The payment provider's base URL, e.g. `http://127.0.0.1:18082`.
    pub fn payment_url(&self) -> String {
        url_of(self.payment.addr())
    }

    /// The logistics provider's live fault settings.
    pub fn logistics_faults(&self) -> &Faults {
        &self.logistics.upstream().faults
    }

    /// The payment provider's live fault settings.
    pub fn payment_faults(&self) -> &Faults {
        &self.payment.upstream().faults
    }

    /// How many `/v1/*` requests the logistics provider has received, whatever their outcome.
    pub fn logistics_requests(&self) -> u64 {
        self.logistics.upstream().requests()
    }

    /// How many `/v1/*` requests the payment provider has received, whatever their outcome.
    pub fn payment_requests(&self) -> u64 {
        self.payment.upstream().requests()
    }

    /// Stops accepting connections and waits (a few seconds at most) for in-flight requests
    /// to finish.
    pub async fn shutdown(self) {
        tokio::join!(self.logistics.shutdown(), self.payment.shutdown());
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
        assert_eq!(config.logistics_addr.to_string(), "127.0.0.1:18081");
        assert_eq!(config.payment_addr.to_string(), "127.0.0.1:18082");
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
    async fn an_ephemeral_sandbox_serves_both_providers_on_distinct_loopback_ports()
    -> anyhow::Result<()> {
        let sandbox = start().await?;
        assert!(sandbox.logistics_url().starts_with("http://127.0.0.1:"));
        assert!(sandbox.payment_url().starts_with("http://127.0.0.1:"));
        assert_ne!(sandbox.logistics_url(), sandbox.payment_url());
        for url in [sandbox.logistics_url(), sandbox.payment_url()] {
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
        let second = Sandbox::start(SandboxConfig {
            payment_addr: taken,
            ..SandboxConfig::ephemeral()
        })
        .await;
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
