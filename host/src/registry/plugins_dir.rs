//! Connector packages in a plugins directory.
//!
//! Each subdirectory holding a `connector.toml` is one package: the manifest,
//! exactly one `.wasm` component and, optionally, a `connector.sig` with its
//! signatures. A package whose name and version are not installed yet is
//! installed and then activated, canaried or staged as the host's hot-load
//! policy says; an installed package with the same bytes is left alone, and
//! one with other bytes under an installed version is refused, so a version
//! always means one package. The directory is read at start and, when
//! watched, again each time it settles after a change.

use std::path::{Path, PathBuf};

use super::Registry;
use super::lifecycle::{Activation, Actor, Package};
use crate::store::InstallSource;

/// The manifest file name inside each connector directory.
pub const MANIFEST_FILE: &str = "connector.toml";

/// The optional signature file beside the manifest.
pub const SIGNATURE_FILE: &str = "connector.sig";

/// What happened to one directory of the plugins directory.
#[derive(Debug)]
pub enum PluginOutcome {
    /// A new version was installed; `name@version`.
    Installed(String),
    /// Already installed with the same bytes and manifest; `name@version`.
    Unchanged(String),
    /// Could not be installed.
    Failed {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Reads the manifest, the one `.wasm` and the optional signature in `dir`.
pub fn read_package(dir: &Path) -> Result<Package, String> {
    let manifest = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .map_err(|err| format!("cannot read {MANIFEST_FILE}: {err}"))?;
    let wasm_files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|err| format!("cannot list the directory: {err}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .collect();
    let [wasm_path] = wasm_files.as_slice() else {
        return Err(format!(
            "expected exactly one .wasm beside {MANIFEST_FILE}, found {}",
            wasm_files.len()
        ));
    };
    let wasm = std::fs::read(wasm_path)
        .map_err(|err| format!("cannot read {}: {err}", wasm_path.display()))?;
    let signature = match std::fs::read_to_string(dir.join(SIGNATURE_FILE)) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(format!("cannot read {SIGNATURE_FILE}: {err}")),
    };
    Ok(Package {
        manifest,
        wasm,
        signature,
    })
}

/// The package directories under `dir`, sorted; hidden ones (`.staging`)
/// are where packages are prepared, so they are skipped.
pub fn package_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| !name.to_string_lossy().starts_with('.'))
        })
        .filter(|path| path.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

impl Registry {
    /// Installs every package under `dir` whose version is new.
    pub async fn install_plugins_dir(
        &self,
        dir: &Path,
        activation: &Activation,
    ) -> std::io::Result<Vec<PluginOutcome>> {
        let mut outcomes = Vec::new();
        for package_dir in package_dirs(dir)? {
            outcomes.push(self.install_plugin(&package_dir, activation).await);
        }
        Ok(outcomes)
    }

    async fn install_plugin(&self, dir: &Path, activation: &Activation) -> PluginOutcome {
        let failed = |reason: String| PluginOutcome::Failed {
            dir: dir.to_owned(),
            reason,
        };
        let package = match read_package(dir) {
            Ok(package) => package,
            Err(reason) => return failed(reason),
        };
        match self
            .install(
                package,
                InstallSource::PluginsDir,
                activation.clone(),
                Actor::PluginsDir,
            )
            .await
        {
            Ok(installed) => {
                let id = format!("{}@{}", installed.name, installed.version);
                if installed.already_installed {
                    PluginOutcome::Unchanged(id)
                } else {
                    PluginOutcome::Installed(id)
                }
            }
            Err(err) => failed(err.to_string()),
        }
    }
}
