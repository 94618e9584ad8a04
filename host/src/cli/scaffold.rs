//! `switchboard new`: a connector crate that builds and passes its tests as
//! soon as it is written.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use switchboard::names::ConnectorName;

const CARGO_TOML: &str = include_str!("template/Cargo.toml.tmpl");
const CONNECTOR_TOML: &str = include_str!("template/connector.toml.tmpl");
const LIB_RS: &str = include_str!("template/lib.rs.tmpl");
const GITIGNORE: &str = include_str!("template/gitignore.tmpl");

/// Where the SDK is when this binary runs from the Switchboard repository.
const REPO_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/sdk");

/// Writes the crate for connector `name` into `dir` (`./<name>` by default),
/// with `switchboard-sdk` taken from `sdk` or else the repository's copy.
pub fn new_connector(name: &str, dir: Option<PathBuf>, sdk: Option<PathBuf>) -> anyhow::Result<()> {
    let name = ConnectorName::parse(name)?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(name.as_str()));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!("{} already exists and is not empty", dir.display());
    }
    let sdk = sdk_path(sdk)?;
    let values = [
        ("{{name}}", name.as_str().to_owned()),
        ("{{type}}", type_name(name.as_str())),
        ("{{sdk}}", sdk.display().to_string()),
    ];
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("connector.toml", CONNECTOR_TOML),
        ("src/lib.rs", LIB_RS),
        (".gitignore", GITIGNORE),
    ];
    for (path, template) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, fill(template, &values))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "created connector `{name}` in {dir}\n\nnext:\n  cd {dir}\n  cargo test            # its tests, in-process, no host\n  switchboard build     # the component, validated\n  switchboard install dist",
        name = name.as_str(),
        dir = dir.display()
    );
    Ok(())
}

/// The SDK crate directory, absolute: `--sdk`, `SWITCHBOARD_SDK`, or the repository's.
fn sdk_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let (path, from) = match given {
        Some(path) => (path, "--sdk"),
        None => (PathBuf::from(REPO_SDK), "the Switchboard repository"),
    };
    let path =
        std::path::absolute(&path).with_context(|| format!("resolving {}", path.display()))?;
    let path = path.canonicalize().unwrap_or(path);
    if !path.join("Cargo.toml").is_file() {
        bail!(
            "the SDK is not at {} (from {from}); pass --sdk <path to plugins/sdk>",
            path.display()
        );
    }
    Ok(path)
}

/// `weather-alerts` as a Rust type name: `WeatherAlerts`.
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn fill(template: &str, values: &[(&str, String)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(key, value)
        })
}

/// Whether `dir` holds a connector crate: a `Cargo.toml` and a `connector.toml`.
pub fn is_connector_crate(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file() && dir.join("connector.toml").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_rust_type_names() {
        assert_eq!(type_name("weather"), "Weather");
        assert_eq!(type_name("weather-alerts"), "WeatherAlerts");
        assert_eq!(type_name("crm_v2"), "CrmV2");
    }

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let values = [
            ("{{name}}", "x".to_owned()),
            ("{{type}}", "X".to_owned()),
            ("{{sdk}}", "/sdk".to_owned()),
        ];
        for template in [CARGO_TOML, CONNECTOR_TOML, LIB_RS, GITIGNORE] {
            assert!(!fill(template, &values).contains("{{"), "{template}");
        }
    }
}
