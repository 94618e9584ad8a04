//! API keys: made, listed, revoked and checked; stored as hashes only.
//!
//! A key is `sbk_<16 hex id>_<43 characters of base64url>`: 256 random bits
//! after a public id. The store keeps the id, its owner and scopes, and the
//! SHA-256 of the whole key; checking a presented key is one lookup by id and
//! one constant-time comparison of hashes. A salted slow hash buys nothing
//! for a 256-bit random secret.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Caller, Scope, Scopes};
use crate::capabilities::now_ms;
use crate::names::TenantId;
use crate::store::{ApiKeyRecord, KeyStore, StoreError};

const PREFIX: &str = "sbk_";
const ID_HEX: usize = 16;
const SECRET_CHARS: usize = 43;

/// Why a key could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key needs at least one scope.
    #[error("a key needs at least one scope: read, invoke or admin")]
    NoScopes,
    /// The caller asked for more than it has.
    #[error("a key cannot grant {wanted}: the caller has only {has}")]
    Escalation {
        /// What was asked for.
        wanted: Scopes,
        /// What the caller has.
        has: Scopes,
    },
    /// A tenant's key asked for a key of another tenant, or a host-wide one.
    #[error("a key bound to tenant {0} can only make and see keys of that tenant")]
    OtherTenant(String),
    /// No key has this id (or the caller may not see it).
    #[error("no key has the id {0}")]
    NotFound(String),
    /// A bootstrap key was given in the wrong form.
    #[error("{0}")]
    Malformed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to make a key for.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// What it is for, for people.
    pub name: String,
    /// The tenant it is bound to; `None` for host-wide.
    pub tenant: Option<TenantId>,
    /// What it may do.
    pub scopes: Scopes,
}

/// A key as the API shows it: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    /// The public id, which is also the OAuth2 client id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// The tenant it is bound to; absent for host-wide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// What it may do.
    pub scopes: Scopes,
    /// When it was made, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The key that made it.
    pub created_by: String,
}

/// A key just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    /// The key's record.
    #[serde(flatten)]
    pub view: KeyView,
    /// The key itself, to send as `Authorization: Bearer <key>`.
    pub key: String,
}

struct Entry {
    caller: Caller,
    hash: [u8; 32],
    view: KeyView,
}

/// The host's API keys, in memory and in the store.
pub struct ApiKeys {
    store: Arc<dyn KeyStore>,
    keys: RwLock<HashMap<String, Arc<Entry>>>,
}

impl ApiKeys {
    /// Loads every key from `store`; a damaged record is logged and skipped.
    pub fn open(store: Arc<dyn KeyStore>) -> Result<Self, StoreError> {
        let mut keys = HashMap::new();
        for (id, record) in store.list_api_keys()? {
            match record.map(entry) {
                Ok(Ok(entry)) => {
                    keys.insert(id, Arc::new(entry));
                }
                Ok(Err(reason)) => tracing::error!(id, reason, "skipped an unreadable API key"),
                Err(err) => tracing::error!(id, error = %err, "skipped a damaged API key"),
            }
        }
        Ok(Self {
            store,
            keys: RwLock::new(keys),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Entry>>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether no key exists yet.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The caller a presented key stands for, if it is a key of this host.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let (id, _) = split_key(presented)?;
        let entry = self.read().get(id).cloned()?;
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(hash.ct_eq(&entry.hash)).then(|| entry.caller.clone())
    }

    /// The caller of a key id that still exists; tokens name their key so a
    /// revoked key's tokens stop working at once.
    pub fn caller(&self, id: &str) -> Option<Caller> {
        self.read().get(id).map(|entry| entry.caller.clone())
    }

    /// Makes a key on behalf of `by` (`None` when the host makes it).
    pub fn create(&self, new: NewKey, by: Option<&Caller>) -> Result<CreatedKey, KeyError> {
        if new.scopes.is_empty() {
            return Err(KeyError::NoScopes);
        }
        if let Some(by) = by {
            if !by.scopes.covers(new.scopes) {
                return Err(KeyError::Escalation {
                    wanted: new.scopes,
                    has: by.scopes,
                });
            }
            if let Some(own) = &by.tenant
                && new.tenant.as_ref() != Some(own)
            {
                return Err(KeyError::OtherTenant(own.to_string()));
            }
        }
        let id = format!(
            "{PREFIX}{}",
            hex::encode(rand::random::<[u8; ID_HEX / 2]>())
        );
        let key = format!(
            "{id}_{}",
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        let created_by = by.map_or_else(|| "bootstrap".to_owned(), |c| c.id.clone());
        let view = self.put(&key, new, created_by)?;
        Ok(CreatedKey { view, key })
    }

    /// Makes sure `key` (a full key in the `sbk_` form, such as one an
    /// operator's automation generated) exists as a host-wide admin key.
    pub fn ensure_admin(&self, key: &str, name: &str) -> Result<(), KeyError> {
        let (id, _) = split_key(key).ok_or_else(|| {
            KeyError::Malformed(format!(
                "an API key is `{PREFIX}` then {ID_HEX} hex digits, `_` and {SECRET_CHARS} base64url characters"
            ))
        })?;
        if self.authenticate(key).is_some() {
            return Ok(());
        }
        if self.read().contains_key(id) {
            return Err(KeyError::Malformed(format!(
                "the key {id} exists with another secret; revoke it first"
            )));
        }
        let new = NewKey {
            name: name.to_owned(),
            tenant: None,
            scopes: [Scope::Admin].into_iter().collect(),
        };
        self.put(key, new, "bootstrap".into())?;
        Ok(())
    }

    fn put(&self, key: &str, new: NewKey, created_by: String) -> Result<KeyView, KeyError> {
        let (id, _) = split_key(key).ok_or_else(|| KeyError::Malformed("bad key".into()))?;
        let record = ApiKeyRecord {
            id: id.to_owned(),
            name: new.name,
            tenant: new.tenant.map(|t| t.to_string()),
            scopes: new.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            hash: hex::encode(Sha256::digest(key.as_bytes())),
            created_at_ms: now_ms(),
            created_by,
        };
        self.store.put_api_key(&record)?;
        let entry = entry(record).map_err(KeyError::Malformed)?;
        let view = entry.view.clone();
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(view.id.clone(), Arc::new(entry));
        Ok(view)
    }

    /// The keys `by` may see: all for a host-wide caller, else its tenant's.
    pub fn list(&self, by: &Caller) -> Vec<KeyView> {
        let mut views: Vec<_> = self
            .read()
            .values()
            .filter(|entry| visible(by, &entry.caller))
            .map(|entry| entry.view.clone())
            .collect();
        views.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        views
    }

    /// Revokes a key `by` may see; its tokens stop working too.
    pub fn revoke(&self, id: &str, by: &Caller) -> Result<(), KeyError> {
        let visible_to_caller = self
            .read()
            .get(id)
            .is_some_and(|entry| visible(by, &entry.caller));
        if !visible_to_caller {
            return Err(KeyError::NotFound(id.to_owned()));
        }
        self.store.delete_api_key(id)?;
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }
}

fn visible(by: &Caller, key: &Caller) -> bool {
    by.tenant.is_none() || by.tenant == key.tenant
}

/// The id and secret of a key in the `sbk_` form.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id_hex, secret) = rest.split_once('_')?;
    let well_formed = id_hex.len() == ID_HEX
        && id_hex.bytes().all(|b| b.is_ascii_hexdigit())
        && secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| (&key[..PREFIX.len() + ID_HEX], secret))
}

fn entry(record: ApiKeyRecord) -> Result<Entry, String> {
    let scopes = record
        .scopes
        .iter()
        .map(|name| Scope::parse(name).ok_or_else(|| format!("unknown scope {name}")))
        .collect::<Result<Scopes, _>>()?;
    let tenant = record
        .tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|err| err.to_string())?;
    let hash: [u8; 32] = hex::decode(&record.hash)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the hash is not 32 bytes of hex")?;
    Ok(Entry {
        caller: Caller {
            id: record.id.clone(),
            tenant,
            scopes,
        },
        hash,
        view: KeyView {
            id: record.id,
            name: record.name,
            tenant: record.tenant,
            scopes,
            created_at_ms: record.created_at_ms,
            created_by: record.created_by,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;

    fn keys() -> (tempfile::TempDir, ApiKeys) {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(dir.path(), Arc::new(crate::sealing::Sealer::ephemeral()))
            .expect("store");
        let keys = ApiKeys::open(Arc::new(store)).expect("keys");
        (dir, keys)
    }

    fn new(tenant: Option<&str>, scopes: &str) -> NewKey {
        NewKey {
            name: "test".into(),
            tenant: tenant.map(|t| TenantId::parse(t).expect("tenant")),
            scopes: Scopes::parse(scopes).expect("scopes"),
        }
    }

    #[test]
    fn a_made_key_authenticates_and_a_changed_one_does_not() {
        let (_dir, keys) = keys();
        let made = keys
            .create(new(Some("acme"), "invoke"), None)
            .expect("create");
        let caller = keys.authenticate(&made.key).expect("valid");
        assert_eq!(caller.id, made.view.id);
        assert_eq!(caller.tenant.as_ref().map(TenantId::as_str), Some("acme"));
        let mut forged = made.key.clone();
        forged.pop();
        forged.push(if made.key.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.authenticate(&forged), None);
        assert_eq!(keys.authenticate("Bearer nonsense"), None);
        assert_eq!(keys.authenticate(""), None);
    }

    #[test]
    fn only_the_hash_is_stored_and_keys_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let sealer = Arc::new(crate::sealing::Sealer::ephemeral());
        let made = {
            let store = Arc::new(SledStore::open(dir.path(), sealer.clone()).expect("store"));
            let keys = ApiKeys::open(store.clone()).expect("keys");
            let made = keys.create(new(None, "admin"), None).expect("create");
            let stored = store.list_api_keys().expect("list");
            let text = serde_json::to_string(stored[0].1.as_ref().expect("record")).expect("json");
            assert!(!text.contains(&made.key[made.view.id.len() + 1..]));
            made
        };
        let store = Arc::new(SledStore::open(dir.path(), sealer).expect("reopen"));
        let keys = ApiKeys::open(store).expect("keys");
        assert!(keys.authenticate(&made.key).is_some());
    }

    #[test]
    fn a_caller_cannot_grant_more_than_it_has_nor_reach_another_tenant() {
        let (_dir, keys) = keys();
        let tenant_admin = keys
            .authenticate(
                &keys
                    .create(new(Some("acme"), "admin"), None)
                    .expect("a")
                    .key,
            )
            .expect("caller");
        let reader = keys
            .authenticate(&keys.create(new(Some("acme"), "read"), None).expect("r").key)
            .expect("caller");
        assert!(matches!(
            keys.create(new(Some("acme"), "invoke"), Some(&reader)),
            Err(KeyError::Escalation { .. })
        ));
        assert!(matches!(
            keys.create(new(Some("globex"), "read"), Some(&tenant_admin)),
            Err(KeyError::OtherTenant(_))
        ));
        assert!(matches!(
            keys.create(new(None, "read"), Some(&tenant_admin)),
            Err(KeyError::OtherTenant(_))
        ));
        let other = keys.create(new(Some("globex"), "read"), None).expect("g");
        assert!(matches!(
            keys.revoke(&other.view.id, &tenant_admin),
            Err(KeyError::NotFound(_))
        ));
        assert_eq!(keys.list(&tenant_admin).len(), 2);
    }

    #[test]
    fn a_revoked_key_stops_at_once() {
        let (_dir, keys) = keys();
        let admin = keys.create(new(None, "admin"), None).expect("create");
        let caller = keys.authenticate(&admin.key).expect("valid");
        let victim = keys
            .create(new(None, "read"), Some(&caller))
            .expect("create");
        keys.revoke(&victim.view.id, &caller).expect("revoke");
        assert_eq!(keys.authenticate(&victim.key), None);
        assert_eq!(keys.caller(&victim.view.id), None);
    }

    #[test]
    fn a_bootstrap_key_is_checked_and_made_once() {
        let (_dir, keys) = keys();
        let key = format!("sbk_{}_{}", "0123456789abcdef", "A".repeat(43));
        keys.ensure_admin(&key, "bootstrap").expect("made");
        keys.ensure_admin(&key, "bootstrap").expect("already there");
        assert!(keys.authenticate(&key).is_some_and(|c| c.is_host_wide()));
        let err = keys
            .ensure_admin("letmein", "bootstrap")
            .expect_err("malformed");
        assert!(err.to_string().contains("sbk_"), "{err}");
        let other = format!("sbk_{}_{}", "0123456789abcdef", "B".repeat(43));
        assert!(keys.ensure_admin(&other, "bootstrap").is_err());
    }
}
