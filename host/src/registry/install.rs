//! Installing a package: checking its signature, manifest and component,
//! storing it as a new version, then activating, canarying or staging it.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::deploy::{Change, describe_change};
use super::lifecycle::{Activation, Actor, CanarySpec, Installed, LifecycleError, Package};
use super::manifest::Manifest;
use super::signature::Verdict;
use super::{InstallError, LoadedConnector, Registry, VersionEntry, VersionStats};
use crate::capabilities::now_ms;
use crate::runtime::compile_cache::sha256_hex;
use crate::store::{InstallSource, VersionRecord, blocking};

impl Registry {
    /// Installs a version of a connector, then activates it, canaries it or
    /// keeps it staged as `activation` says. The first version of a
    /// connector is always activated. From the plugins directory, a package
    /// that is already installed changes nothing.
    pub async fn install(
        &self,
        package: Package,
        source: InstallSource,
        activation: Activation,
        actor: Actor,
    ) -> Result<Installed, LifecycleError> {
        let _changing = self.changes.lock().await;
        // Holding the loaded version keeps it in memory until it is deployed.
        let (installed, _loaded) = self.install_locked(package, source, actor).await?;
        let (name, version) = (&installed.name, &installed.version);
        let current = self
            .read()
            .get(name)
            .map(|entry| entry.deployment.clone())
            .unwrap_or_default();
        let mut next = current.clone();
        match activation {
            // The directory is read again and again; only new versions count.
            _ if installed.already_installed && actor == Actor::PluginsDir => {}
            _ if current.active.is_none() => next.activate(version),
            Activation::Activate => next.activate(version),
            Activation::ActivateIfNewer if current.active.as_ref() < Some(version) => {
                next.activate(version)
            }
            Activation::Canary(weight_bp) if current.active.as_ref() != Some(version) => {
                next.canary = Some(self.canary_rule(
                    &current,
                    CanarySpec {
                        version: version.clone(),
                        weight_bp,
                        agents: BTreeSet::new(),
                        channels: BTreeSet::new(),
                        tenants: BTreeSet::new(),
                    },
                ));
            }
            _ => {}
        }
        if next != current {
            let detail = describe_change(&current, &next);
            let change = Change {
                actor,
                action: "deployment.changed",
                version: Some(version),
                detail,
                event: None,
            };
            self.deploy(name, next, change).await?;
        }
        Ok(installed)
    }

    async fn install_locked(
        &self,
        package: Package,
        source: InstallSource,
        actor: Actor,
    ) -> Result<(Installed, Option<Arc<LoadedConnector>>), LifecycleError> {
        let package_hash = sha256_hex(&package.wasm);
        let verdict = self.policy.trusted_keys.check(
            &package.manifest,
            &package_hash,
            package.signature.as_deref(),
        )?;
        let manifest = Manifest::parse(&package.manifest, &self.defaults, &self.ceilings)
            .map_err(InstallError::from)?;
        let (name, version) = (manifest.name.clone(), manifest.version.clone());
        if let Some(existing) = self
            .read()
            .get(&name)
            .and_then(|entry| entry.versions.get(&version))
        {
            if existing.record.package_hash == package_hash
                && existing.record.manifest == package.manifest
            {
                let installed = Installed {
                    name,
                    version,
                    package_hash,
                    already_installed: true,
                };
                return Ok((installed, None));
            }
            return Err(LifecycleError::VersionConflict {
                name: name.to_string(),
                version: version.to_string(),
                installed_hash: existing.record.package_hash.clone(),
            });
        }
        let record = VersionRecord {
            name: name.to_string(),
            version: version.to_string(),
            manifest: package.manifest,
            package_hash: package_hash.clone(),
            installed_at_ms: now_ms(),
            source,
            signed_by: match verdict {
                Verdict::Verified { key_id } => Some(key_id),
                Verdict::NotRequired => None,
            },
        };
        let wasm: Arc<[u8]> = package.wasm.into();
        let stats = Arc::new(VersionStats::default());
        let loaded = Arc::new(self.load(&record, wasm.clone(), stats.clone()).await?);
        let store = self.store.clone();
        let stored = record.clone();
        blocking(move || {
            store.put_package(&stored.package_hash, &wasm)?;
            store.put_version(&stored)
        })
        .await?;
        let detail = format!(
            "package {package_hash}{}",
            record
                .signed_by
                .as_deref()
                .map(|key| format!(", signed by {key}"))
                .unwrap_or_default()
        );
        self.write()
            .entry(name.clone())
            .or_default()
            .versions
            .insert(
                version.clone(),
                VersionEntry {
                    record,
                    manifest,
                    stats,
                    loaded: Arc::downgrade(&loaded),
                },
            );
        self.audit(actor, "version.installed", &name, Some(&version), detail)
            .await;
        let installed = Installed {
            name,
            version,
            package_hash,
            already_installed: false,
        };
        Ok((installed, Some(loaded)))
    }
}
