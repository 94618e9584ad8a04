//! The embedded store: every trait of [`crate::store`] over one sled database.

mod events;

use std::path::Path;
use std::sync::Arc;

use super::{
    ApiKeyRecord, AuditLog, AuditRecord, ConnectorStore, DeploymentRecord, IdempotencyStore,
    IdempotentResult, InstallSource, KeyStore, KvScope, KvStore, PipelineOverrideStore,
    SettingKind, SettingsStore, StoreError, StoreResult, VersionRecord,
};
use crate::sealing::{Sealer, is_sealed};

/// Separates the parts of composite keys; never valid inside a name or key.
const SEP: u8 = 0;

/// The tree of one record per connector, from before versions.
const LEGACY_CONNECTORS: &str = "connectors";

/// A connector record as written before versions.
#[derive(serde::Deserialize)]
struct LegacyConnectorRecord {
    name: String,
    manifest: String,
    package_hash: String,
    installed_at_ms: u64,
    #[serde(default)]
    source: InstallSource,
}

impl LegacyConnectorRecord {
    /// Its version record; the version is read from the manifest.
    fn into_version(self) -> Option<VersionRecord> {
        let manifest: toml::Table = toml::from_str(&self.manifest).ok()?;
        let version = manifest.get("version")?.as_str()?.to_owned();
        Some(VersionRecord {
            name: self.name,
            version,
            manifest: self.manifest,
            package_hash: self.package_hash,
            installed_at_ms: self.installed_at_ms,
            source: self.source,
            signed_by: None,
        })
    }
}

/// A sled database holding all of Switchboard's durable state.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    packages: sled::Tree,
    versions: sled::Tree,
    deployments: sled::Tree,
    config: sled::Tree,
    secrets: sled::Tree,
    kv: sled::Tree,
    event_trees: events::EventTrees,
    audit: sled::Tree,
    idempotency: sled::Tree,
    pipeline_overrides: sled::Tree,
    api_keys: sled::Tree,
    sealer: Arc<Sealer>,
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        StoreError::Backend(err.to_string())
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir`; secrets are sealed by `sealer`.
    pub fn open(dir: &Path, sealer: Arc<Sealer>) -> StoreResult<Self> {
        let db = sled::Config::new().path(dir).open()?;
        let store = Self {
            packages: db.open_tree("packages")?,
            versions: db.open_tree("versions")?,
            deployments: db.open_tree("deployments")?,
            config: db.open_tree("config")?,
            secrets: db.open_tree("secrets")?,
            kv: db.open_tree("kv")?,
            event_trees: events::EventTrees::open(&db)?,
            audit: db.open_tree("audit")?,
            idempotency: db.open_tree("idempotency")?,
            pipeline_overrides: db.open_tree("pipeline_overrides")?,
            api_keys: db.open_tree("api_keys")?,
            db,
            sealer,
        };
        store.migrate_connector_records()?;
        Ok(store)
    }

    /// Data written before versions kept one record per connector in the
    /// `connectors` tree; each becomes its version's record and a deployment
    /// that keeps it active. A record that cannot be read is left in place.
    fn migrate_connector_records(&self) -> StoreResult<()> {
        let old = self.db.open_tree(LEGACY_CONNECTORS)?;
        if old.is_empty() {
            return Ok(());
        }
        for entry in old.iter() {
            let (key, value) = entry?;
            let Some(record) = decode_json::<LegacyConnectorRecord>(&key, &value)
                .ok()
                .and_then(LegacyConnectorRecord::into_version)
            else {
                tracing::warn!(key = %String::from_utf8_lossy(&key), "left a damaged connector record unmigrated");
                continue;
            };
            self.versions.insert(
                composite_key(&[&record.name, &record.version]),
                encode_json(&record)?,
            )?;
            if !self.deployments.contains_key(record.name.as_bytes())? {
                let deployment = DeploymentRecord {
                    active: Some(record.version.clone()),
                    ..DeploymentRecord::default()
                };
                self.deployments
                    .insert(record.name.as_bytes(), encode_json(&deployment)?)?;
            }
            old.remove(key)?;
        }
        self.flush()
    }

    /// Flushes every pending write to disk.
    pub fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Removes the package `hash` unless a version uses it or a damaged
    /// record might (it could be repaired).
    fn remove_package_if_unused(&self, hash: &str) -> StoreResult<()> {
        let still_used = self
            .list_versions()?
            .into_iter()
            .any(|(_, record)| record.is_err() || record.is_ok_and(|r| r.package_hash == hash));
        if !still_used {
            self.packages.remove(hash.as_bytes())?;
        }
        Ok(())
    }

    fn settings_tree(&self, kind: SettingKind) -> &sled::Tree {
        match kind {
            SettingKind::Config => &self.config,
            SettingKind::Secret => &self.secrets,
        }
    }
}

fn composite_key(parts: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(part.as_bytes());
    }
    key
}

fn prefix_of(parts: &[&str]) -> Vec<u8> {
    let mut prefix = composite_key(parts);
    prefix.push(SEP);
    prefix
}

fn utf8(key: &[u8], bytes: &[u8]) -> StoreResult<String> {
    String::from_utf8(bytes.to_vec()).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: err.to_string(),
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: err.to_string(),
    })
}

fn encode_json<T: serde::Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|err| StoreError::Backend(err.to_string()))
}

fn list_records<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    display_key: impl Fn(&[u8]) -> String,
) -> StoreResult<Vec<(String, StoreResult<T>)>> {
    tree.iter()
        .map(|entry| {
            let (key, value) = entry?;
            Ok((display_key(&key), decode_json(&key, &value)))
        })
        .collect()
}

/// `name@version` for a `name\0version` key.
fn version_key_text(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replacen('\0', "@", 1)
}

impl ConnectorStore for SledStore {
    fn put_package(&self, hash: &str, bytes: &[u8]) -> StoreResult<()> {
        self.packages.insert(hash.as_bytes(), bytes)?;
        Ok(())
    }

    fn get_package(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.packages.get(hash.as_bytes())?.map(|v| v.to_vec()))
    }

    fn put_version(&self, record: &VersionRecord) -> StoreResult<()> {
        self.versions.insert(
            composite_key(&[&record.name, &record.version]),
            encode_json(record)?,
        )?;
        self.flush()
    }

    fn list_versions(&self) -> StoreResult<Vec<(String, StoreResult<VersionRecord>)>> {
        list_records(&self.versions, version_key_text)
    }

    fn delete_version(&self, name: &str, version: &str) -> StoreResult<bool> {
        let key = composite_key(&[name, version]);
        let Some(old) = self.versions.remove(&key)? else {
            return Ok(false);
        };
        if let Ok(old) = decode_json::<VersionRecord>(&key, &old) {
            self.remove_package_if_unused(&old.package_hash)?;
        }
        self.flush()?;
        Ok(true)
    }

    fn put_deployment(&self, name: &str, record: &DeploymentRecord) -> StoreResult<()> {
        self.deployments
            .insert(name.as_bytes(), encode_json(record)?)?;
        self.flush()
    }

    fn list_deployments(&self) -> StoreResult<Vec<(String, StoreResult<DeploymentRecord>)>> {
        list_records(&self.deployments, |key| {
            String::from_utf8_lossy(key).into_owned()
        })
    }

    fn delete_connector(&self, name: &str) -> StoreResult<bool> {
        let mut existed = self.deployments.remove(name.as_bytes())?.is_some();
        let mut hashes = Vec::new();
        for entry in self.versions.scan_prefix(prefix_of(&[name])) {
            let (key, value) = entry?;
            if let Ok(record) = decode_json::<VersionRecord>(&key, &value) {
                hashes.push(record.package_hash);
            }
            self.versions.remove(key)?;
            existed = true;
        }
        for hash in hashes {
            self.remove_package_if_unused(&hash)?;
        }
        for kind in [SettingKind::Config, SettingKind::Secret] {
            let tree = self.settings_tree(kind);
            for key in tree.scan_prefix(prefix_of(&[name])).keys() {
                tree.remove(key?)?;
            }
        }
        self.pipeline_overrides.remove(name.as_bytes())?;
        self.flush()?;
        Ok(existed)
    }
}

impl SettingsStore for SledStore {
    fn set_setting(
        &self,
        kind: SettingKind,
        connector: &str,
        key: &str,
        value: &str,
    ) -> StoreResult<()> {
        let stored_key = composite_key(&[connector, key]);
        let stored = match kind {
            SettingKind::Config => value.as_bytes().to_vec(),
            SettingKind::Secret => self.sealer.seal(value.as_bytes(), &stored_key),
        };
        self.settings_tree(kind).insert(stored_key, stored)?;
        self.flush()
    }

    fn delete_setting(&self, kind: SettingKind, connector: &str, key: &str) -> StoreResult<bool> {
        let existed = self
            .settings_tree(kind)
            .remove(composite_key(&[connector, key]))?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    fn list_settings(
        &self,
        kind: SettingKind,
        connector: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let prefix = prefix_of(&[connector]);
        self.settings_tree(kind)
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let value = match kind {
                    SettingKind::Secret if is_sealed(&value) => self
                        .sealer
                        .open(&value, &key)
                        .map_err(|err| StoreError::Corrupt {
                            key: String::from_utf8_lossy(&key).replace('\0', "/"),
                            reason: err.to_string(),
                        })?,
                    _ => value.to_vec(),
                };
                Ok((utf8(&key, &key[prefix.len()..])?, utf8(&key, &value)?))
            })
            .collect()
    }

    fn reseal_secrets(&self) -> StoreResult<usize> {
        let mut resealed = 0;
        for entry in self.secrets.iter() {
            let (key, value) = entry?;
            if self.sealer.is_current(&value) {
                continue;
            }
            let plaintext = if is_sealed(&value) {
                self.sealer
                    .open(&value, &key)
                    .map_err(|err| StoreError::Corrupt {
                        key: String::from_utf8_lossy(&key).replace('\0', "/"),
                        reason: err.to_string(),
                    })?
            } else {
                value.to_vec()
            };
            let sealed = self.sealer.seal(&plaintext, &key);
            // A value written meanwhile is already sealed under the current key.
            if self
                .secrets
                .compare_and_swap(&key, Some(value), Some(sealed))?
                .is_ok()
            {
                resealed += 1;
            }
        }
        self.flush()?;
        Ok(resealed)
    }
}

/// Values are stored as 8 bytes of big-endian expiry (0 = never) then the value.
fn encode_kv_value(value: &[u8], expires_at_ms: Option<u64>) -> Vec<u8> {
    let mut stored = Vec::with_capacity(8 + value.len());
    stored.extend_from_slice(&expires_at_ms.unwrap_or(0).to_be_bytes());
    stored.extend_from_slice(value);
    stored
}

fn decode_kv_expiry(key: &[u8], stored: &[u8]) -> StoreResult<u64> {
    let header: [u8; 8] = stored
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "kv value shorter than its expiry header".into(),
        })?;
    Ok(u64::from_be_bytes(header))
}

fn is_expired(expires_at_ms: u64, now_ms: u64) -> bool {
    expires_at_ms != 0 && expires_at_ms <= now_ms
}

impl KvStore for SledStore {
    fn kv_get(&self, scope: &KvScope, key: &str, now_ms: u64) -> StoreResult<Option<Vec<u8>>> {
        let full_key = composite_key(&[&scope.connector, &scope.tenant, key]);
        let Some(stored) = self.kv.get(&full_key)? else {
            return Ok(None);
        };
        if is_expired(decode_kv_expiry(&full_key, &stored)?, now_ms) {
            // Only if unchanged: a value stored meanwhile must survive.
            let _ = self
                .kv
                .compare_and_swap(&full_key, Some(stored), None::<&[u8]>)?;
            return Ok(None);
        }
        Ok(Some(stored[8..].to_vec()))
    }

    fn kv_set(
        &self,
        scope: &KvScope,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
    ) -> StoreResult<()> {
        let full_key = composite_key(&[&scope.connector, &scope.tenant, key]);
        self.kv
            .insert(full_key, encode_kv_value(value, expires_at_ms))?;
        Ok(())
    }

    fn kv_set_if_absent(
        &self,
        scope: &KvScope,
        key: &str,
        value: &[u8],
        expires_at_ms: Option<u64>,
        now_ms: u64,
    ) -> StoreResult<bool> {
        let full_key = composite_key(&[&scope.connector, &scope.tenant, key]);
        let new = encode_kv_value(value, expires_at_ms);
        loop {
            let current = self.kv.get(&full_key)?;
            if let Some(stored) = &current
                && !is_expired(decode_kv_expiry(&full_key, stored)?, now_ms)
            {
                return Ok(false);
            }
            // Replaces exactly what was read (nothing, or an expired value); if another
            // writer got in between, look again.
            if self
                .kv
                .compare_and_swap(&full_key, current, Some(new.clone()))?
                .is_ok()
            {
                return Ok(true);
            }
        }
    }

    fn kv_delete(&self, scope: &KvScope, key: &str) -> StoreResult<()> {
        self.kv
            .remove(composite_key(&[&scope.connector, &scope.tenant, key]))?;
        Ok(())
    }

    fn kv_sweep_expired(&self, now_ms: u64) -> StoreResult<usize> {
        let mut removed = 0;
        for entry in self.kv.iter() {
            let (key, value) = entry?;
            // A damaged entry is left for kv_get to report; it must not stop the sweep.
            let Ok(expires_at) = decode_kv_expiry(&key, &value) else {
                continue;
            };
            if is_expired(expires_at, now_ms)
                && self
                    .kv
                    .compare_and_swap(&key, Some(value), None::<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Appends `value` under the next database-wide sequence number and flushes.
fn append_sequenced<T: serde::Serialize>(
    db: &sled::Db,
    tree: &sled::Tree,
    value: &T,
) -> StoreResult<u64> {
    let sequence = db.generate_id()?;
    tree.insert(sequence.to_be_bytes(), encode_json(value)?)?;
    tree.flush()?;
    Ok(sequence)
}

fn sequence_of(key: &[u8]) -> StoreResult<u64> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: hex::encode(key),
            reason: "sequence key is not 8 bytes".into(),
        })
}

fn read_sequenced<T: serde::de::DeserializeOwned>(
    tree: &sled::Tree,
    from: u64,
    limit: usize,
) -> StoreResult<Vec<(u64, T)>> {
    tree.range(from.to_be_bytes()..)
        .take(limit)
        .map(|entry| {
            let (key, value) = entry?;
            Ok((sequence_of(&key)?, decode_json(&key, &value)?))
        })
        .collect()
}

impl AuditLog for SledStore {
    fn append_audit(&self, record: &AuditRecord) -> StoreResult<u64> {
        append_sequenced(&self.db, &self.audit, record)
    }

    fn append_audit_batch(&self, records: &[AuditRecord]) -> StoreResult<()> {
        let mut batch = sled::Batch::default();
        for record in records {
            batch.insert(&self.db.generate_id()?.to_be_bytes(), encode_json(record)?);
        }
        self.audit.apply_batch(batch)?;
        self.audit.flush()?;
        Ok(())
    }

    fn read_audit(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, AuditRecord)>> {
        read_sequenced(&self.audit, from, limit)
    }

    fn read_audit_back(&self, before: u64, limit: usize) -> StoreResult<Vec<(u64, AuditRecord)>> {
        self.audit
            .range(..before.to_be_bytes())
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                Ok((sequence_of(&key)?, decode_json(&key, &value)?))
            })
            .collect()
    }

    fn sweep_audit(&self, before_ms: u64) -> StoreResult<usize> {
        #[derive(serde::Deserialize)]
        struct Time {
            time_ms: u64,
        }
        let mut removed = 0;
        for entry in self.audit.iter() {
            let (key, value) = entry?;
            // A damaged record goes with the old ones rather than stopping the sweep.
            let time = serde_json::from_slice::<Time>(&value).map_or(0, |t| t.time_ms);
            if time >= before_ms {
                break;
            }
            self.audit.remove(key)?;
            removed += 1;
        }
        if removed > 0 {
            self.audit.flush()?;
        }
        Ok(removed)
    }
}

impl KeyStore for SledStore {
    fn put_api_key(&self, record: &ApiKeyRecord) -> StoreResult<()> {
        self.api_keys
            .insert(record.id.as_bytes(), encode_json(record)?)?;
        self.api_keys.flush()?;
        Ok(())
    }

    fn delete_api_key(&self, id: &str) -> StoreResult<bool> {
        let existed = self.api_keys.remove(id.as_bytes())?.is_some();
        self.api_keys.flush()?;
        Ok(existed)
    }

    fn list_api_keys(&self) -> StoreResult<Vec<(String, StoreResult<ApiKeyRecord>)>> {
        list_records(&self.api_keys, |key| {
            String::from_utf8_lossy(key).into_owned()
        })
    }
}

impl PipelineOverrideStore for SledStore {
    fn put_pipeline_override(&self, connector: &str, json: &str) -> StoreResult<()> {
        self.pipeline_overrides
            .insert(connector.as_bytes(), json.as_bytes())?;
        self.flush()
    }

    fn delete_pipeline_override(&self, connector: &str) -> StoreResult<bool> {
        let existed = self
            .pipeline_overrides
            .remove(connector.as_bytes())?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    fn list_pipeline_overrides(&self) -> StoreResult<Vec<(String, String)>> {
        self.pipeline_overrides
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((utf8(&key, &key)?, utf8(&key, &value)?))
            })
            .collect()
    }
}

impl IdempotencyStore for SledStore {
    fn get_idempotent(&self, key: &str) -> StoreResult<Option<IdempotentResult>> {
        self.idempotency
            .get(key.as_bytes())?
            .map(|stored| decode_json(key.as_bytes(), &stored))
            .transpose()
    }

    fn put_idempotent(&self, key: &str, result: &IdempotentResult) -> StoreResult<()> {
        self.idempotency
            .insert(key.as_bytes(), encode_json(result)?)?;
        self.idempotency.flush()?;
        Ok(())
    }

    fn sweep_idempotent(&self, before_ms: u64) -> StoreResult<usize> {
        let mut removed = 0;
        for entry in self.idempotency.iter() {
            let (key, value) = entry?;
            // A damaged entry can never be replayed; it goes too.
            let old = decode_json::<IdempotentResult>(&key, &value)
                .map_or(true, |result| result.stored_at_ms < before_ms);
            if old
                && self
                    .idempotency
                    .compare_and_swap(&key, Some(value), None::<&[u8]>)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventLog, StoredEvent};

    /// The same master key on every open, so a reopened store reads its secrets.
    fn fixed_sealer() -> Arc<Sealer> {
        Arc::new(Sealer::new(&[9; 32], &[]))
    }

    fn open() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), fixed_sealer()).expect("open store");
        (dir, store)
    }

    fn record(name: &str, version: &str, hash: &str) -> VersionRecord {
        VersionRecord {
            name: name.into(),
            version: version.into(),
            manifest: String::new(),
            package_hash: hash.into(),
            installed_at_ms: 1,
            source: InstallSource::Api,
            signed_by: None,
        }
    }

    fn scope(connector: &str, tenant: &str) -> KvScope {
        KvScope {
            connector: connector.into(),
            tenant: tenant.into(),
        }
    }

    #[test]
    fn kv_values_are_private_to_their_connector_and_tenant() {
        let (_dir, store) = open();
        store
            .kv_set(&scope("a", "t1"), "k", b"one", None)
            .expect("set");
        assert_eq!(
            store.kv_get(&scope("a", "t1"), "k", 0).expect("get"),
            Some(b"one".to_vec())
        );
        assert_eq!(store.kv_get(&scope("a", "t2"), "k", 0).expect("get"), None);
        assert_eq!(store.kv_get(&scope("b", "t1"), "k", 0).expect("get"), None);
    }

    #[test]
    fn set_if_absent_stores_once_until_the_value_expires() {
        let (_dir, store) = open();
        let s = scope("a", "t");
        assert!(
            store
                .kv_set_if_absent(&s, "lock", b"first", Some(1_000), 0)
                .expect("set")
        );
        assert!(
            !store
                .kv_set_if_absent(&s, "lock", b"second", None, 999)
                .expect("set")
        );
        assert_eq!(
            store.kv_get(&s, "lock", 999).expect("get"),
            Some(b"first".to_vec())
        );
        assert!(
            store
                .kv_set_if_absent(&s, "lock", b"third", None, 1_000)
                .expect("set")
        );
        assert_eq!(
            store.kv_get(&s, "lock", 5_000).expect("get"),
            Some(b"third".to_vec())
        );
    }

    #[test]
    fn of_racing_set_if_absent_calls_exactly_one_stores() {
        let (_dir, store) = open();
        let store = std::sync::Arc::new(store);
        let winners: usize = std::thread::scope(|threads| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let store = std::sync::Arc::clone(&store);
                    threads.spawn(move || {
                        store
                            .kv_set_if_absent(&scope("a", "t"), "lock", &[i], None, 0)
                            .expect("set")
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| usize::from(handle.join().expect("thread")))
                .sum()
        });
        assert_eq!(winners, 1);
    }

    #[test]
    fn kv_values_expire_at_their_ttl_and_are_swept() {
        let (_dir, store) = open();
        let s = scope("a", "t");
        store.kv_set(&s, "short", b"x", Some(1_000)).expect("set");
        store.kv_set(&s, "long", b"y", Some(5_000)).expect("set");
        assert_eq!(
            store.kv_get(&s, "short", 999).expect("get"),
            Some(b"x".to_vec())
        );
        assert_eq!(store.kv_get(&s, "short", 1_000).expect("get"), None);
        assert_eq!(store.kv_sweep_expired(6_000).expect("sweep"), 1);
        assert_eq!(store.kv_get(&s, "long", 0).expect("get"), None);
    }

    #[test]
    fn settings_of_one_connector_do_not_leak_into_a_prefix_sibling() {
        let (_dir, store) = open();
        store
            .set_setting(SettingKind::Config, "pay", "url", "a")
            .expect("set");
        store
            .set_setting(SettingKind::Config, "payment", "url", "b")
            .expect("set");
        assert_eq!(
            store
                .list_settings(SettingKind::Config, "pay")
                .expect("list"),
            vec![("url".to_string(), "a".to_string())]
        );
        assert!(
            store
                .list_settings(SettingKind::Secret, "pay")
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn deleting_a_connector_removes_its_versions_deployment_settings_and_unused_packages() {
        let (_dir, store) = open();
        for (version, hash) in [("1.0.0", "h1"), ("2.0.0", "h2")] {
            store.put_package(hash, b"wasm").expect("package");
            store
                .put_version(&record("c", version, hash))
                .expect("record");
        }
        store
            .put_version(&record("cc", "1.0.0", "h1"))
            .expect("sibling");
        store
            .put_deployment("c", &DeploymentRecord::default())
            .expect("deployment");
        store
            .set_setting(SettingKind::Secret, "c", "api_key", "s")
            .expect("secret");
        assert!(store.delete_connector("c").expect("delete"));
        assert!(!store.delete_connector("c").expect("delete again"));
        assert_eq!(store.get_package("h2").expect("get"), None);
        assert!(
            store.get_package("h1").expect("get").is_some(),
            "`cc` still uses it"
        );
        assert!(store.list_deployments().expect("list").is_empty());
        let left: Vec<String> = store
            .list_versions()
            .expect("list")
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        assert_eq!(left, ["cc@1.0.0"]);
        assert!(
            store
                .list_settings(SettingKind::Secret, "c")
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn deleting_a_version_drops_its_package_unless_another_version_uses_it() {
        let (_dir, store) = open();
        for hash in ["only", "shared"] {
            store.put_package(hash, b"wasm").expect("package");
        }
        store
            .put_version(&record("a", "1.0.0", "only"))
            .expect("a1");
        store
            .put_version(&record("a", "2.0.0", "shared"))
            .expect("a2");
        store
            .put_version(&record("b", "1.0.0", "shared"))
            .expect("b1");
        assert!(store.delete_version("a", "1.0.0").expect("delete"));
        assert!(store.delete_version("a", "2.0.0").expect("delete"));
        assert!(!store.delete_version("a", "2.0.0").expect("delete again"));
        assert_eq!(store.get_package("only").expect("get"), None);
        assert!(store.get_package("shared").expect("get").is_some());
    }

    #[test]
    fn a_damaged_record_is_reported_in_its_place_and_keeps_packages_alive() {
        let (_dir, store) = open();
        store.put_package("maybe-its", b"wasm").expect("package");
        store
            .versions
            .insert(composite_key(&["broken", "1.0.0"]), b"{not json".as_slice())
            .expect("insert");
        store
            .put_version(&record("fine", "1.0.0", "h"))
            .expect("put");
        store
            .put_version(&record("gone", "1.0.0", "maybe-its"))
            .expect("put");
        assert!(store.delete_version("gone", "1.0.0").expect("delete"));
        assert!(
            store.get_package("maybe-its").expect("get").is_some(),
            "the damaged record may use it"
        );
        let listed = store.list_versions().expect("list");
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].0, "broken@1.0.0");
        assert!(listed[0].1.is_err());
        assert!(listed[1].1.is_ok());
        assert!(
            store
                .delete_connector("broken")
                .expect("remove the damaged record")
        );
    }

    #[test]
    fn connector_records_from_before_versions_become_active_versions() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let db = sled::open(dir.path()).expect("open");
            let old = db.open_tree(LEGACY_CONNECTORS).expect("tree");
            let record = serde_json::json!({
                "name": "echo",
                "manifest": "name = \"echo\"\nversion = \"0.1.0\"\ndescription = \"d\"\n",
                "package_hash": "h",
                "installed_at_ms": 5,
            });
            old.insert("echo", record.to_string().as_bytes())
                .expect("insert");
            old.insert("broken", b"{not json".as_slice())
                .expect("insert");
            db.flush().expect("flush");
        }
        let store = SledStore::open(dir.path(), fixed_sealer()).expect("reopen");
        let versions = store.list_versions().expect("versions");
        assert_eq!(versions.len(), 1);
        let record = versions[0].1.as_ref().expect("migrated");
        assert_eq!(
            (
                record.version.as_str(),
                record.installed_at_ms,
                record.source
            ),
            ("0.1.0", 5, InstallSource::Api)
        );
        let deployments = store.list_deployments().expect("deployments");
        assert_eq!(
            deployments[0]
                .1
                .as_ref()
                .expect("deployment")
                .active
                .as_deref(),
            Some("0.1.0")
        );
        let left = store.db.open_tree(LEGACY_CONNECTORS).expect("tree");
        assert_eq!(left.len(), 1, "the damaged record is left for inspection");
    }

    #[test]
    fn idempotent_results_are_kept_until_swept_by_age() {
        let (_dir, store) = open();
        let result = |at: u64| IdempotentResult {
            request_hash: "h".into(),
            status: 200,
            body: "{}".into(),
            version: Some("1.0.0".into()),
            stored_at_ms: at,
        };
        store.put_idempotent("old", &result(10)).expect("put");
        store.put_idempotent("new", &result(30)).expect("put");
        assert_eq!(store.get_idempotent("old").expect("get"), Some(result(10)));
        assert_eq!(store.sweep_idempotent(20).expect("sweep"), 1);
        assert_eq!(store.get_idempotent("old").expect("get"), None);
        assert!(store.get_idempotent("new").expect("get").is_some());
    }

    #[test]
    fn the_sweep_skips_a_damaged_entry_and_removes_the_expired_ones() {
        let (_dir, store) = open();
        let s = scope("a", "t");
        store.kv_set(&s, "old", b"x", Some(10)).expect("set");
        store
            .kv
            .insert(composite_key(&["a", "t", "bad"]), b"short".as_slice())
            .expect("insert");
        assert_eq!(store.kv_sweep_expired(20).expect("sweep"), 1);
    }

    #[test]
    fn everything_written_is_back_after_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let event = StoredEvent {
            id: "e1".into(),
            connector: "c".into(),
            tenant: "t".into(),
            kind: "k.happened".into(),
            subject: Some("s".into()),
            time_ms: 7,
            data: "{}".into(),
        };
        {
            let store = SledStore::open(dir.path(), fixed_sealer()).expect("open");
            store
                .append_events(std::slice::from_ref(&event))
                .expect("append");
            store
                .set_setting(SettingKind::Secret, "c", "k", "v")
                .expect("secret");
            store
                .put_version(&record("c", "1.0.0", "h"))
                .expect("version");
            store
                .put_deployment(
                    "c",
                    &DeploymentRecord {
                        active: Some("1.0.0".into()),
                        ..DeploymentRecord::default()
                    },
                )
                .expect("deployment");
            store
                .append_audit(&AuditRecord {
                    time_ms: 1,
                    actor: "api".into(),
                    action: "version.activated".into(),
                    connector: "c".into(),
                    version: Some("1.0.0".into()),
                    detail: String::new(),
                    ..AuditRecord::default()
                })
                .expect("audit");
        }
        let store = SledStore::open(dir.path(), fixed_sealer()).expect("reopen");
        let events = store.read_events(0, 10).expect("read");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, event);
        assert_eq!(
            store.list_settings(SettingKind::Secret, "c").expect("list"),
            vec![("k".to_string(), "v".to_string())]
        );
        assert_eq!(store.list_versions().expect("versions").len(), 1);
        let deployments = store.list_deployments().expect("deployments");
        assert_eq!(
            deployments[0]
                .1
                .as_ref()
                .expect("decoded")
                .active
                .as_deref(),
            Some("1.0.0")
        );
        let audit = store.read_audit(0, 10).expect("audit");
        assert_eq!(audit[0].1.action, "version.activated");
    }

    #[test]
    fn secrets_are_sealed_on_disk_and_config_is_not() {
        let (_dir, store) = open();
        store
            .set_setting(SettingKind::Secret, "crm", "token", "sk_live_7f3a")
            .expect("secret");
        store
            .set_setting(SettingKind::Config, "crm", "base_url", "http://x")
            .expect("config");
        let raw = store
            .secrets
            .get(composite_key(&["crm", "token"]))
            .expect("read")
            .expect("present");
        assert!(is_sealed(&raw));
        assert!(!raw.windows(12).any(|w| w == b"sk_live_7f3a"));
        assert_eq!(
            store
                .list_settings(SettingKind::Secret, "crm")
                .expect("list"),
            vec![("token".to_string(), "sk_live_7f3a".to_string())]
        );
        let config = store.config.get(composite_key(&["crm", "base_url"]));
        assert_eq!(config.expect("read").as_deref(), Some(&b"http://x"[..]));
    }

    #[test]
    fn plaintext_and_old_key_secrets_are_resealed_under_the_current_key() {
        let (_dir, store) = open();
        store
            .secrets
            .insert(composite_key(&["crm", "legacy"]), &b"plain"[..])
            .expect("legacy");
        store
            .set_setting(SettingKind::Secret, "crm", "old", "before")
            .expect("old");
        store.sealer.rotate_to(&[3; 32]);
        store
            .set_setting(SettingKind::Secret, "crm", "new", "after")
            .expect("new");
        assert_eq!(store.reseal_secrets().expect("reseal"), 2);
        assert_eq!(store.reseal_secrets().expect("again"), 0);
        store.sealer.retire_older();
        assert_eq!(
            store
                .list_settings(SettingKind::Secret, "crm")
                .expect("list"),
            vec![
                ("legacy".to_string(), "plain".to_string()),
                ("new".to_string(), "after".to_string()),
                ("old".to_string(), "before".to_string()),
            ]
        );
    }

    #[test]
    fn a_secret_under_a_lost_master_key_is_reported_damaged() {
        let dir = tempfile::tempdir().expect("temp dir");
        SledStore::open(dir.path(), fixed_sealer())
            .expect("open")
            .set_setting(SettingKind::Secret, "crm", "token", "v")
            .expect("secret");
        let other = SledStore::open(dir.path(), Arc::new(Sealer::ephemeral())).expect("reopen");
        let err = other
            .list_settings(SettingKind::Secret, "crm")
            .expect_err("cannot open");
        assert!(err.to_string().contains("crm/token"), "{err}");
    }
}
