//! What a manifest grants, read as the host reads it: allowed hosts, declared
//! configuration keys and secrets, and configuration defaults.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::Error;

/// The grants of a `connector.toml`; other sections are the host's business.
#[derive(Debug, Default)]
pub(super) struct Grants {
    allowed_hosts: Vec<AllowedHost>,
    pub(super) config: Vec<String>,
    pub(super) secrets: Vec<String>,
    pub(super) config_defaults: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ManifestGrants {
    #[serde(default)]
    capabilities: Capabilities,
    #[serde(default)]
    config_defaults: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct Capabilities {
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    config: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

impl Grants {
    /// Reads the grants of `connector_toml`; fails with `manifest_invalid`.
    pub(super) fn parse(connector_toml: &str) -> Result<Self, Error> {
        let manifest: ManifestGrants = toml::from_str(connector_toml)
            .map_err(|e| Error::new("manifest_invalid", format!("connector.toml: {e}")))?;
        let allowed_hosts = manifest
            .capabilities
            .allowed_hosts
            .iter()
            .map(|entry| AllowedHost::parse(entry))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            allowed_hosts,
            config: manifest.capabilities.config,
            secrets: manifest.capabilities.secrets,
            config_defaults: manifest.config_defaults,
        })
    }

    /// Whether the manifest lets the connector request `url`.
    pub(super) fn allows_url(&self, url: &str) -> bool {
        let Some((host, port)) = host_and_port(url) else {
            return false;
        };
        self.allowed_hosts
            .iter()
            .any(|allowed| allowed.matches(&host, port))
    }
}

/// One `allowed_hosts` entry: a host or `*.domain`, with an optional port.
#[derive(Debug)]
struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::new(
                "manifest_invalid",
                format!("allowed_hosts entry `{entry}` is not a host, `*.domain` or host:port"),
            )
        };
        let (host, port) = split_host_port(entry).ok_or_else(invalid)?;
        if host.is_empty() || host.contains('/') {
            return Err(invalid());
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_matches = match self.host.strip_prefix('*') {
            Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            None => host == self.host,
        };
        host_matches && self.port.is_none_or(|allowed| allowed == port)
    }
}

/// `host[:port]` of an absolute URL, without user info.
pub(super) fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host),
    )
}

/// The lower-case host and the port (or the scheme's default) of `url`.
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    let (host, port) = split_host_port(authority(url)?)?;
    let port = match (port, scheme.as_str()) {
        (Some(port), _) => port,
        (None, "http") => 80,
        (None, "https") => 443,
        _ => return None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// `host` and its port from `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(hosts: &[&str]) -> Grants {
        let list = hosts
            .iter()
            .map(|host| format!("{host:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Grants::parse(&format!("[capabilities]\nallowed_hosts = [{list}]\n"))
            .expect("a valid manifest")
    }

    #[test]
    fn a_host_without_port_allows_every_port_of_that_host_only() {
        let grants = grants(&["127.0.0.1"]);
        assert!(grants.allows_url("http://127.0.0.1:18081/v1"));
        assert!(grants.allows_url("https://127.0.0.1/"));
        assert!(!grants.allows_url("http://127.0.0.2/"));
        assert!(!grants.allows_url("http://user@evil.example/@127.0.0.1"));
    }

    #[test]
    fn a_port_restricts_to_that_port_and_defaults_follow_the_scheme() {
        let grants = grants(&["api.example.com:443", "[::1]:8080"]);
        assert!(grants.allows_url("https://API.example.com/track"));
        assert!(!grants.allows_url("http://api.example.com/track"));
        assert!(grants.allows_url("http://[::1]:8080/"));
        assert!(!grants.allows_url("http://[::1]/"));
    }

    #[test]
    fn a_wildcard_matches_subdomains_but_not_the_bare_domain_or_lookalikes() {
        let grants = grants(&["*.example.com"]);
        assert!(grants.allows_url("https://eu.api.example.com/"));
        assert!(!grants.allows_url("https://example.com/"));
        assert!(!grants.allows_url("https://badexample.com/"));
    }

    #[test]
    fn a_malformed_manifest_or_entry_is_manifest_invalid() {
        for manifest in [
            "[capabilities",
            "[capabilities]\nallowed_hosts = [\"a:b\"]\n",
        ] {
            let error = Grants::parse(manifest).err().map(|e| e.code);
            assert_eq!(error.as_deref(), Some("manifest_invalid"), "{manifest}");
        }
    }
}
