//! The embedded store: every trait of [`crate::store`] over one sled database.

use std::path::Path;

use super::{
    ConnectorRecord, ConnectorStore, EventLog, KvScope, KvStore, SettingKind, SettingsStore,
    StoreError, StoreResult, StoredEvent,
};

/// Separates the parts of composite keys; never valid inside a name or key.
const SEP: u8 = 0;

/// A sled database holding all of Switchboard's durable state.
#[derive(Clone)]
pub struct SledStore {
    db: sled::Db,
    packages: sled::Tree,
    connectors: sled::Tree,
    config: sled::Tree,
    secrets: sled::Tree,
    kv: sled::Tree,
    events: sled::Tree,
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        StoreError::Backend(err.to_string())
    }
}

impl SledStore {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let db = sled::Config::new().path(dir).open()?;
        Ok(Self {
            packages: db.open_tree("packages")?,
            connectors: db.open_tree("connectors")?,
            config: db.open_tree("config")?,
            secrets: db.open_tree("secrets")?,
            kv: db.open_tree("kv")?,
            events: db.open_tree("events")?,
            db,
        })
    }

    /// Flushes every pending write to disk.
    pub fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Removes the package `hash` unless a record uses it or a damaged record
    /// might (it could be repaired).
    fn remove_package_if_unused(&self, hash: &str) -> StoreResult<()> {
        let still_used = self
            .list_connectors()?
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

/// The package of a stored record; `None` (and a warning) when the record is
/// damaged, so replacing or removing it still works.
fn package_hash_of(name: &str, stored: &[u8]) -> Option<String> {
    match decode_json::<ConnectorRecord>(name.as_bytes(), stored) {
        Ok(record) => Some(record.package_hash),
        Err(err) => {
            tracing::warn!(connector = name, error = %err, "replacing a damaged connector record");
            None
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

impl ConnectorStore for SledStore {
    fn put_package(&self, hash: &str, bytes: &[u8]) -> StoreResult<()> {
        self.packages.insert(hash.as_bytes(), bytes)?;
        Ok(())
    }

    fn get_package(&self, hash: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.packages.get(hash.as_bytes())?.map(|v| v.to_vec()))
    }

    fn put_connector(&self, record: &ConnectorRecord) -> StoreResult<()> {
        let previous = self
            .connectors
            .insert(record.name.as_bytes(), encode_json(record)?)?;
        if let Some(previous_hash) = previous.and_then(|p| package_hash_of(&record.name, &p))
            && previous_hash != record.package_hash
        {
            self.remove_package_if_unused(&previous_hash)?;
        }
        self.flush()
    }

    fn get_connector(&self, name: &str) -> StoreResult<Option<ConnectorRecord>> {
        self.connectors
            .get(name.as_bytes())?
            .map(|stored| decode_json(name.as_bytes(), &stored))
            .transpose()
    }

    fn list_connectors(&self) -> StoreResult<Vec<(String, StoreResult<ConnectorRecord>)>> {
        self.connectors
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                Ok((
                    String::from_utf8_lossy(&key).into_owned(),
                    decode_json(&key, &value),
                ))
            })
            .collect()
    }

    fn delete_connector(&self, name: &str) -> StoreResult<bool> {
        let Some(old) = self.connectors.remove(name.as_bytes())? else {
            return Ok(false);
        };
        if let Some(old_hash) = package_hash_of(name, &old) {
            self.remove_package_if_unused(&old_hash)?;
        }
        for kind in [SettingKind::Config, SettingKind::Secret] {
            let tree = self.settings_tree(kind);
            for key in tree.scan_prefix(prefix_of(&[name])).keys() {
                tree.remove(key?)?;
            }
        }
        self.flush()?;
        Ok(true)
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
        self.settings_tree(kind)
            .insert(composite_key(&[connector, key]), value.as_bytes())?;
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
                Ok((utf8(&key, &key[prefix.len()..])?, utf8(&key, &value)?))
            })
            .collect()
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

impl EventLog for SledStore {
    fn append_event(&self, event: &StoredEvent) -> StoreResult<u64> {
        let sequence = self.db.generate_id()?;
        self.events
            .insert(sequence.to_be_bytes(), encode_json(event)?)?;
        self.events.flush()?;
        Ok(sequence)
    }

    fn read_events(&self, from: u64, limit: usize) -> StoreResult<Vec<(u64, StoredEvent)>> {
        self.events
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                let sequence = key
                    .as_ref()
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        key: hex::encode(&key),
                        reason: "event key is not 8 bytes".into(),
                    })?;
                Ok((sequence, decode_json(&key, &value)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InstallSource;

    fn open() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path()).expect("open store");
        (dir, store)
    }

    fn record(name: &str, hash: &str, source: InstallSource) -> ConnectorRecord {
        ConnectorRecord {
            name: name.into(),
            manifest: String::new(),
            package_hash: hash.into(),
            installed_at_ms: 1,
            source,
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
    fn deleting_a_connector_removes_its_settings_and_unused_package() {
        let (_dir, store) = open();
        let record = record("c", "h", InstallSource::Api);
        store.put_package("h", b"wasm").expect("package");
        store.put_connector(&record).expect("record");
        store
            .set_setting(SettingKind::Secret, "c", "api_key", "s")
            .expect("secret");
        assert!(store.delete_connector("c").expect("delete"));
        assert!(!store.delete_connector("c").expect("delete again"));
        assert_eq!(store.get_package("h").expect("get"), None);
        assert!(
            store
                .list_settings(SettingKind::Secret, "c")
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn replacing_a_connector_drops_its_old_package_unless_another_uses_it() {
        let (_dir, store) = open();
        let record = |name: &str, hash: &str| record(name, hash, InstallSource::Api);
        for hash in ["old", "shared", "new"] {
            store.put_package(hash, b"wasm").expect("package");
        }
        store.put_connector(&record("a", "old")).expect("a");
        store.put_connector(&record("b", "shared")).expect("b");
        store.put_connector(&record("c", "shared")).expect("c");
        store.put_connector(&record("a", "new")).expect("replace a");
        store.put_connector(&record("b", "new")).expect("replace b");
        assert_eq!(store.get_package("old").expect("get"), None);
        assert!(
            store.get_package("shared").expect("get").is_some(),
            "c still uses it"
        );
    }

    #[test]
    fn a_damaged_record_is_reported_in_its_place_and_the_others_still_list() {
        let (_dir, store) = open();
        store
            .connectors
            .insert("broken", b"{not json".as_slice())
            .expect("insert");
        store
            .put_connector(&record("fine", "h", InstallSource::PluginsDir))
            .expect("put");
        let listed = store.list_connectors().expect("list");
        assert_eq!(listed.len(), 2);
        assert!(listed[0].1.is_err());
        assert_eq!(
            listed[1].1.as_ref().expect("fine").source,
            InstallSource::PluginsDir
        );
    }

    #[test]
    fn a_damaged_record_can_be_replaced_and_removed_and_keeps_packages_alive() {
        let (_dir, store) = open();
        store.put_package("maybe-its", b"wasm").expect("package");
        store
            .connectors
            .insert("broken", b"{not json".as_slice())
            .expect("insert");
        let record = record("broken", "h", InstallSource::Api);
        store
            .connectors
            .insert("other", b"{not json".as_slice())
            .expect("insert");
        store
            .put_connector(&record)
            .expect("replace the damaged record");
        assert!(
            store.get_package("maybe-its").expect("get").is_some(),
            "a damaged record may still use it"
        );
        store
            .set_setting(SettingKind::Secret, "other", "k", "v")
            .expect("secret");
        assert!(
            store
                .delete_connector("other")
                .expect("remove the damaged record")
        );
        assert!(
            store
                .list_settings(SettingKind::Secret, "other")
                .expect("list")
                .is_empty()
        );
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
            let store = SledStore::open(dir.path()).expect("open");
            store.append_event(&event).expect("append");
            store
                .set_setting(SettingKind::Secret, "c", "k", "v")
                .expect("secret");
        }
        let store = SledStore::open(dir.path()).expect("reopen");
        let events = store.read_events(0, 10).expect("read");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, event);
        assert_eq!(
            store.list_settings(SettingKind::Secret, "c").expect("list"),
            vec![("k".to_string(), "v".to_string())]
        );
    }
}
