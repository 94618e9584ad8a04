//! `connector.toml`: what a connector is and what it is granted.
//!
//! Parsed once, strictly: unknown keys are errors, names are validated, and
//! limits are resolved against the host's defaults and ceilings.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::capabilities::http::{AllowedHost, HostAllowlist};
use crate::events::hooks::{HookPolicy, is_valid_hook_name};
use crate::events::kinds::KindPattern;
use crate::names::{ConnectorName, SettingKey};
use crate::pipeline::policy::PipelinePolicy;
use crate::runtime::limits::{LimitCeilings, LimitOverrides, Limits};

/// A parsed, validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The connector's name.
    pub name: ConnectorName,
    /// Its semantic version.
    pub version: semver::Version,
    /// What it does, for operators.
    pub description: String,
    /// Hosts its HTTP requests may reach.
    pub allowed_hosts: HostAllowlist,
    /// Config keys it may read, with their defaults.
    pub config: BTreeMap<SettingKey, Option<String>>,
    /// Secrets it may read.
    pub secrets: Vec<SettingKey>,
    /// The limits its calls run under.
    pub limits: Limits,
    /// Rate limits, retries, breaker, cache and fallbacks (`[pipeline]`).
    pub pipeline: Arc<PipelinePolicy>,
    /// The inbound webhooks it takes (`[hooks.<name>]`), with their checks.
    pub hooks: BTreeMap<String, HookPolicy>,
    /// The event kinds its `on-event` receives (`[events] subscribes`).
    pub subscribes: Vec<KindPattern>,
    /// The manifest text as written, kept for the store.
    pub source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: ConnectorName,
    version: semver::Version,
    description: String,
    #[serde(default)]
    capabilities: RawCapabilities,
    #[serde(default)]
    config_defaults: BTreeMap<SettingKey, String>,
    #[serde(default)]
    limits: LimitOverrides,
    #[serde(default)]
    pipeline: PipelinePolicy,
    #[serde(default)]
    hooks: BTreeMap<String, HookPolicy>,
    #[serde(default)]
    events: RawEvents,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    #[serde(default)]
    subscribes: Vec<KindPattern>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    allowed_hosts: Vec<AllowedHost>,
    #[serde(default)]
    config: Vec<SettingKey>,
    #[serde(default)]
    secrets: Vec<SettingKey>,
}

/// Names no connector may take: the sources of injected and host events.
const RESERVED_NAMES: [&str; 2] = [crate::events::API_SOURCE, crate::events::HOST_SOURCE];

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid connector.toml: {0}")]
pub struct ManifestError(pub String);

impl Manifest {
    /// Parses `text`, resolving limits against `defaults` and `ceilings`.
    pub fn parse(
        text: &str,
        defaults: &Limits,
        ceilings: &LimitCeilings,
    ) -> Result<Self, ManifestError> {
        let raw: RawManifest =
            toml::from_str(text).map_err(|err| ManifestError(describe_toml_error(text, &err)))?;
        if RESERVED_NAMES.contains(&raw.name.as_str()) {
            return Err(ManifestError(format!(
                "the name `{}` is reserved: it marks events the API or the host itself made",
                raw.name.as_str()
            )));
        }
        if raw.description.trim().is_empty() {
            return Err(ManifestError("`description` must not be empty".into()));
        }
        let mut config: BTreeMap<SettingKey, Option<String>> = raw
            .capabilities
            .config
            .into_iter()
            .map(|key| (key, None))
            .collect();
        for (key, value) in raw.config_defaults {
            match config.get_mut(&key) {
                Some(slot) => *slot = Some(value),
                None => {
                    return Err(ManifestError(format!(
                        "config_defaults.{key} is not declared in capabilities.config"
                    )));
                }
            }
        }
        if let Some(dup) = raw
            .capabilities
            .secrets
            .iter()
            .find(|s| config.contains_key(*s))
        {
            return Err(ManifestError(format!(
                "`{dup}` is declared both as a config key and as a secret"
            )));
        }
        for (hook, policy) in &raw.hooks {
            if !is_valid_hook_name(hook) {
                return Err(ManifestError(format!(
                    "hooks.{hook}: a hook name is 1-64 of a-z, 0-9, `_` and `-`"
                )));
            }
            policy
                .check()
                .map_err(|err| ManifestError(format!("hooks.{hook}: {err}")))?;
        }
        let limits = raw
            .limits
            .resolve(defaults, ceilings)
            .map_err(|err| ManifestError(err.to_string()))?;
        Ok(Self {
            name: raw.name,
            version: raw.version,
            description: raw.description,
            allowed_hosts: HostAllowlist::new(raw.capabilities.allowed_hosts),
            config,
            secrets: raw.capabilities.secrets,
            limits,
            pipeline: Arc::new(raw.pipeline),
            hooks: raw.hooks,
            subscribes: raw.events.subscribes,
            source: text.to_owned(),
        })
    }
}

/// One line: the TOML error with its line and column.
fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
name = "logistics-tracking"
version = "0.1.0"
description = "Tracks parcels."

[capabilities]
allowed_hosts = ["127.0.0.1", "api.example.com:443"]
config = ["base_url"]
secrets = ["api_key"]

[config_defaults]
base_url = "http://127.0.0.1:18081"

[limits]
deadline_ms = 3000
"#;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, &Limits::default(), &LimitCeilings::default())
    }

    #[test]
    fn a_complete_manifest_parses_with_its_grants_and_limits() {
        let manifest = parse(VALID).expect("valid");
        assert_eq!(manifest.name.as_str(), "logistics-tracking");
        assert_eq!(manifest.version, semver::Version::new(0, 1, 0));
        assert_eq!(manifest.limits.deadline.as_millis(), 3000);
        assert_eq!(manifest.secrets.len(), 1);
        let base_url = SettingKey::parse("base_url").expect("key");
        assert_eq!(
            manifest.config[&base_url].as_deref(),
            Some("http://127.0.0.1:18081")
        );
    }

    #[test]
    fn an_unknown_field_is_an_error_with_its_line_and_column() {
        let text = "name = \"a\"\nversion = \"1.0.0\"\ndescription = \"d\"\nmemory = 5\n";
        let err = parse(text).expect_err("unknown field");
        assert_eq!(
            err.to_string(),
            "invalid connector.toml: line 4, column 1: unknown field `memory`, expected one of `name`, `version`, `description`, `capabilities`, `config_defaults`, `limits`, `pipeline`, `hooks`, `events`"
        );
    }

    #[test]
    fn a_bad_name_says_which_rule_it_breaks() {
        let err = parse("name = \"Bad_Name\"\nversion = \"1.0.0\"\ndescription = \"d\"\n")
            .expect_err("bad name");
        assert!(
            err.to_string().contains("not a valid connector name"),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("invalid connector.toml: line 1, column 8"),
            "{err}"
        );
    }

    #[test]
    fn a_default_for_an_undeclared_config_key_is_refused() {
        let text = "name = \"a\"\nversion = \"1.0.0\"\ndescription = \"d\"\n[config_defaults]\nurl = \"x\"\n";
        assert_eq!(
            parse(text).expect_err("undeclared").to_string(),
            "invalid connector.toml: config_defaults.url is not declared in capabilities.config"
        );
    }

    #[test]
    fn a_limit_past_the_ceiling_is_refused() {
        let text = "name = \"a\"\nversion = \"1.0.0\"\ndescription = \"d\"\n[limits]\ndeadline_ms = 3600000\n";
        assert!(
            parse(text)
                .expect_err("too long")
                .to_string()
                .contains("limits.deadline_ms")
        );
    }

    #[test]
    fn hooks_and_subscriptions_are_read_and_checked() {
        let text = "name = \"a\"\nversion = \"1.0.0\"\ndescription = \"d\"\n[hooks.calls]\nallow_ips = [\"10.0.0.0/8\"]\n[events]\nsubscribes = [\"call.*\"]\n";
        let manifest = parse(text).expect("valid");
        assert_eq!(manifest.hooks["calls"].allow_ips.len(), 1);
        assert!(manifest.subscribes[0].matches("call.answered"));
        let bad = text.replace("10.0.0.0/8", "10.0.0.0/80");
        assert!(
            parse(&bad)
                .expect_err("bad cidr")
                .to_string()
                .contains("line 5")
        );
        let bad = text.replace("hooks.calls", "hooks.Calls");
        assert!(
            parse(&bad)
                .expect_err("bad name")
                .to_string()
                .contains("hooks.Calls")
        );
    }

    #[test]
    fn the_names_of_event_sources_are_reserved() {
        for name in ["api", "switchboard"] {
            let text = format!("name = \"{name}\"\nversion = \"1.0.0\"\ndescription = \"d\"\n");
            assert!(
                parse(&text)
                    .expect_err("reserved")
                    .to_string()
                    .contains("reserved")
            );
        }
    }

    #[test]
    fn a_version_that_is_not_semver_is_refused() {
        let err = parse("name = \"a\"\nversion = \"one\"\ndescription = \"d\"\n")
            .expect_err("bad version");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
