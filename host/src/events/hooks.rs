//! What the host checks before a connector sees an inbound webhook.
//!
//! Each hook a connector takes is declared in its manifest (`[hooks.<name>]`)
//! with an IP allowlist and a body limit; an operator may replace both
//! through the API. The host refuses a request from an address outside the
//! allowlist, or with a larger body, before the guest runs.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::names::TenantId;

/// Default largest webhook body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Largest body limit a hook may have, in bytes.
pub const MAX_BODY_BYTES_CEILING: usize = 16 << 20;

/// Whether `name` is a valid hook name: 1–64 of `a-z`, `0-9`, `_`, `-`.
pub fn is_valid_hook_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

/// The checks on one hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookPolicy {
    /// Addresses allowed to call it, as CIDR blocks or single addresses;
    /// empty allows every address.
    #[serde(default)]
    pub allow_ips: Vec<Cidr>,
    /// Largest body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The tenant its events belong to (`default` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

impl Default for HookPolicy {
    fn default() -> Self {
        Self {
            allow_ips: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            tenant: None,
        }
    }
}

impl HookPolicy {
    /// Checks the body limit against the ceiling.
    pub fn check(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_BYTES_CEILING {
            return Err(format!(
                "`max_body_bytes` must be 1-{MAX_BODY_BYTES_CEILING}"
            ));
        }
        Ok(())
    }

    /// Whether a request from `peer` may reach the hook. With an allowlist,
    /// an unknown peer is refused.
    pub fn allows(&self, peer: Option<IpAddr>) -> bool {
        if self.allow_ips.is_empty() {
            return true;
        }
        peer.map(|ip| ip.to_canonical())
            .is_some_and(|ip| self.allow_ips.iter().any(|cidr| cidr.0.contains(&ip)))
    }
}

/// A CIDR block; a bare address means that one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = if text.contains('/') {
            text.parse::<IpNet>().map(|net| Self(net.trunc())).ok()
        } else {
            text.parse::<IpAddr>()
                .map(|ip| Self(IpNet::from(ip.to_canonical())))
                .ok()
        };
        parsed.ok_or_else(|| format!("`{text}` is not an IP address or CIDR block"))
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(blocks: &[&str]) -> HookPolicy {
        HookPolicy {
            allow_ips: blocks.iter().map(|b| b.parse().expect("cidr")).collect(),
            ..HookPolicy::default()
        }
    }

    #[test]
    fn the_allowlist_matches_blocks_single_addresses_and_mapped_ipv4() {
        let p = policy(&["10.1.0.0/16", "127.0.0.1", "2001:db8::/32"]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert!(p.allows(ip("10.1.200.3")));
        assert!(p.allows(ip("127.0.0.1")));
        assert!(p.allows(ip("::ffff:127.0.0.1")));
        assert!(p.allows(ip("2001:db8::1")));
        assert!(!p.allows(ip("10.2.0.1")));
        assert!(!p.allows(ip("127.0.0.2")));
        assert!(!p.allows(None));
        assert!(policy(&[]).allows(None));
    }

    #[test]
    fn bad_blocks_names_and_limits_are_refused() {
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("localhost".parse::<Cidr>().is_err());
        assert_eq!(
            "10.1.2.3/16".parse::<Cidr>().expect("cidr").0.to_string(),
            "10.1.0.0/16"
        );
        assert!(is_valid_hook_name("call-moments") && !is_valid_hook_name("Calls"));
        let too_big = HookPolicy {
            max_body_bytes: MAX_BODY_BYTES_CEILING + 1,
            ..HookPolicy::default()
        };
        assert!(too_big.check().is_err());
    }
}
