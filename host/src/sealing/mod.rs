//! Secrets at rest: AES-256-GCM under a master key ring.
//!
//! A sealed value is `0xFF '1'`, the 8-byte id of the key that sealed it, a
//! random 96-bit nonce, then the ciphertext and its tag. The first byte can
//! never start UTF-8 text, so values written before sealing existed are told
//! apart and sealed at the next start. The caller's associated data (the
//! setting's connector and key) is authenticated too, so a sealed value
//! copied under another key does not open.
//!
//! The ring has one current key, which seals, and older keys, which only
//! open: rotating adds a new current key, re-seals every value, then drops
//! the old one; values stay readable throughout.

mod rotation;
mod source;

use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use sha2::{Digest, Sha256};

pub use rotation::{MasterKeys, Rotated};
pub use source::{MasterKeySource, RotateError};

/// Bytes of a master key.
pub const KEY_BYTES: usize = 32;
/// Marks a sealed value; `0xFF` never starts UTF-8 text.
const MAGIC: [u8; 2] = [0xFF, b'1'];
const KEY_ID_BYTES: usize = 8;
const NONCE_BYTES: usize = 12;
const HEADER_BYTES: usize = MAGIC.len() + KEY_ID_BYTES + NONCE_BYTES;

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Sealed by a key the ring does not hold (a wrong or lost master key).
    #[error("sealed under master key {0}, which this host does not have")]
    UnknownKey(String),
    /// The bytes were altered, or belong under other associated data.
    #[error("the sealed value does not authenticate (altered, or moved from another key)")]
    Tampered,
    /// Too short or badly framed to be a sealed value.
    #[error("the sealed value is malformed")]
    Malformed,
}

/// One master key and its id (the first 8 bytes of its SHA-256).
struct MasterKey {
    id: [u8; KEY_ID_BYTES],
    cipher: Aes256Gcm,
}

impl MasterKey {
    fn new(bytes: &[u8; KEY_BYTES]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut id = [0; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        Self {
            id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        }
    }
}

struct Ring {
    current: Arc<MasterKey>,
    older: Vec<Arc<MasterKey>>,
}

/// Seals and opens values under the master key ring.
pub struct Sealer {
    ring: RwLock<Ring>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current_key_id())
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A ring sealing under `current` and still opening under `older`.
    pub fn new(current: &[u8; KEY_BYTES], older: &[[u8; KEY_BYTES]]) -> Self {
        Self {
            ring: RwLock::new(Ring {
                current: Arc::new(MasterKey::new(current)),
                older: older.iter().map(|k| Arc::new(MasterKey::new(k))).collect(),
            }),
        }
    }

    /// A ring with one fresh random key, for stores that never outlive the process.
    pub fn ephemeral() -> Self {
        Self::new(&random_key(), &[])
    }

    fn ring(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.ring
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hex id of the key that seals.
    pub fn current_key_id(&self) -> String {
        hex::encode(self.ring().current.id)
    }

    /// Seals `plaintext`, binding it to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = self.ring().current.clone();
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let mut sealed = Vec::with_capacity(HEADER_BYTES + plaintext.len() + 16);
        sealed.extend_from_slice(&MAGIC);
        sealed.extend_from_slice(&key.id);
        sealed.extend_from_slice(&nonce);
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // AES-GCM refuses only messages past 64 GiB; settings are kilobytes.
            .unwrap_or_default();
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a value [`Sealer::seal`] made under the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if !is_sealed(sealed) || sealed.len() < HEADER_BYTES {
            return Err(OpenError::Malformed);
        }
        let id = &sealed[MAGIC.len()..MAGIC.len() + KEY_ID_BYTES];
        let nonce = &sealed[MAGIC.len() + KEY_ID_BYTES..HEADER_BYTES];
        let key = {
            let ring = self.ring();
            std::iter::once(&ring.current)
                .chain(&ring.older)
                .find(|k| k.id == id)
                .cloned()
                .ok_or_else(|| OpenError::UnknownKey(hex::encode(id)))?
        };
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: &sealed[HEADER_BYTES..],
                    aad,
                },
            )
            .map_err(|_| OpenError::Tampered)
    }

    /// Whether `stored` is sealed under the current key (else it needs re-sealing).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        is_sealed(stored)
            && stored.len() >= HEADER_BYTES
            && stored[MAGIC.len()..MAGIC.len() + KEY_ID_BYTES] == self.ring().current.id
    }

    /// Makes `key` the sealing key; the previous one still opens.
    pub fn rotate_to(&self, key: &[u8; KEY_BYTES]) {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let next = Arc::new(MasterKey::new(key));
        let previous = std::mem::replace(&mut ring.current, next);
        ring.older.insert(0, previous);
    }

    /// Forgets every key but the current one.
    pub fn retire_older(&self) {
        self.ring
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .older
            .clear();
    }
}

/// Whether `stored` is framed as a sealed value (else it is legacy plaintext).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(&MAGIC)
}

/// A fresh random master key.
pub fn random_key() -> [u8; KEY_BYTES] {
    rand::random()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_under_its_associated_data() {
        let sealer = Sealer::ephemeral();
        let sealed = sealer.seal(b"sk_live_123", b"crm\0token");
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(11).any(|w| w == b"sk_live_123"));
        assert_eq!(
            sealer.open(&sealed, b"crm\0token").as_deref(),
            Ok(&b"sk_live_123"[..])
        );
        assert_eq!(
            sealer.open(&sealed, b"crm\0other"),
            Err(OpenError::Tampered)
        );
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let sealer = Sealer::ephemeral();
        assert_ne!(sealer.seal(b"v", b""), sealer.seal(b"v", b""));
    }

    #[test]
    fn a_flipped_bit_is_refused() {
        let sealer = Sealer::ephemeral();
        let mut sealed = sealer.seal(b"secret", b"a");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(sealer.open(&sealed, b"a"), Err(OpenError::Tampered));
        assert_eq!(sealer.open(b"plain", b"a"), Err(OpenError::Malformed));
        assert_eq!(sealer.open(&MAGIC, b"a"), Err(OpenError::Malformed));
    }

    #[test]
    fn rotation_keeps_old_values_readable_until_the_old_key_is_retired() {
        let sealer = Sealer::ephemeral();
        let old = sealer.seal(b"secret", b"a");
        sealer.rotate_to(&random_key());
        assert!(!sealer.is_current(&old));
        assert_eq!(sealer.open(&old, b"a").as_deref(), Ok(&b"secret"[..]));
        let new = sealer.seal(b"secret", b"a");
        assert!(sealer.is_current(&new));
        sealer.retire_older();
        assert!(matches!(
            sealer.open(&old, b"a"),
            Err(OpenError::UnknownKey(_))
        ));
        assert_eq!(sealer.open(&new, b"a").as_deref(), Ok(&b"secret"[..]));
    }

    #[test]
    fn another_master_key_cannot_open_a_value() {
        let sealed = Sealer::ephemeral().seal(b"secret", b"a");
        assert!(matches!(
            Sealer::ephemeral().open(&sealed, b"a"),
            Err(OpenError::UnknownKey(_))
        ));
    }
}
