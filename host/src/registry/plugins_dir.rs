//! Connectors bundled in a plugins directory, installed at start.
//!
//! Each subdirectory holding a `connector.toml` is one connector; beside the
//! manifest lies exactly one `.wasm` component. A package is installed when
//! its name is not installed yet, or was installed from the plugins directory
//! with other bytes or another manifest, so new bytes under an old file name
//! are always picked up and an unchanged package costs nothing. A connector
//! installed through the API is never replaced from the directory.

use std::path::{Path, PathBuf};

use super::Registry;
use super::manifest::Manifest;
use crate::runtime::compile_cache::sha256_hex;
use crate::store::{InstallSource, blocking};

/// The manifest file name inside each connector directory.
pub const MANIFEST_FILE: &str = "connector.toml";

/// What happened to one directory of the plugins directory.
#[derive(Debug)]
pub enum PluginOutcome {
    /// Installed (new or replacing another version).
    Installed(String),
    /// Already installed with the same bytes and manifest.
    Unchanged(String),
    /// Left alone: the API installed a package under this name.
    KeptApiInstall(String),
    /// Could not be installed.
    Failed {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A connector package found on disk.
#[derive(Debug)]
pub struct PluginPackage {
    /// The manifest text.
    pub manifest: String,
    /// The component bytes.
    pub wasm: Vec<u8>,
}

/// Reads the manifest and the one `.wasm` in `dir`.
pub fn read_package(dir: &Path) -> Result<PluginPackage, String> {
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
    Ok(PluginPackage { manifest, wasm })
}

impl Registry {
    /// Installs every connector package under `dir` whose bytes are new.
    pub async fn install_plugins_dir(&self, dir: &Path) -> std::io::Result<Vec<PluginOutcome>> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.join(MANIFEST_FILE).is_file())
            .collect();
        dirs.sort();
        let mut outcomes = Vec::with_capacity(dirs.len());
        for dir in dirs {
            outcomes.push(self.install_plugin(&dir).await);
        }
        Ok(outcomes)
    }

    async fn install_plugin(&self, dir: &Path) -> PluginOutcome {
        let failed = |reason: String| PluginOutcome::Failed {
            dir: dir.to_owned(),
            reason,
        };
        let package = match read_package(dir) {
            Ok(package) => package,
            Err(reason) => return failed(reason),
        };
        // Decide and install under one lock, from the store: the map may lack a
        // connector whose restore failed, and the API must not race the decision.
        let _changing = self.changes.lock().await;
        if let Ok(manifest) = Manifest::parse(&package.manifest, &self.defaults, &self.ceilings) {
            let name = manifest.name.to_string();
            let store = self.store.clone();
            let key = name.clone();
            let stored = match blocking(move || store.get_connector(&key)).await {
                Ok(stored) => stored,
                Err(err) => return failed(err.to_string()),
            };
            if let Some(record) = stored {
                if record.source == InstallSource::Api {
                    return PluginOutcome::KeptApiInstall(name);
                }
                let same = record.package_hash == sha256_hex(&package.wasm)
                    && record.manifest == package.manifest;
                if same && self.get(&name).is_some() {
                    return PluginOutcome::Unchanged(name);
                }
            }
        }
        match self
            .install_locked(&package.manifest, package.wasm, InstallSource::PluginsDir)
            .await
        {
            Ok(installed) => PluginOutcome::Installed(installed.name.to_string()),
            Err(err) => failed(err.to_string()),
        }
    }
}
