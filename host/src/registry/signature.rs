//! Optional ed25519 signatures on connector packages.
//!
//! An operator who configures trusted public keys gets installs that only
//! accept packages signed by one of them; with no key configured, signatures
//! are not required and not checked. A signature covers both halves of a
//! package, the manifest text and the component (through its SHA-256), so
//! neither can be swapped after signing.
//!
//! This module owns the text formats (keys, signatures), the signed message,
//! and the verdict. It does not read files or requests: callers hand it the
//! manifest text, the component's hash and the signature text.
//!
//! Formats:
//! - public key: `ed25519:<base64 of 32 bytes>` (the bare base64 is accepted);
//! - secret key: `ed25519-secret:<base64 of 32 bytes>` (prefix required, so a
//!   public key is never mistaken for a secret one);
//! - signature file (`connector.sig`): one `ed25519:<base64 of 64 bytes>` per
//!   line, blank lines and surrounding whitespace ignored. Several lines let a
//!   package carry signatures by an old and a new key while keys rotate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Prefix of a public key and of a signature line.
pub const ED25519_PREFIX: &str = "ed25519:";
/// Prefix of a secret (signing) key.
pub const SECRET_KEY_PREFIX: &str = "ed25519-secret:";
/// Most signature lines one package may carry; verification work grows with
/// lines times trusted keys, so an upload cannot make it unbounded.
pub const MAX_SIGNATURE_LINES: usize = 16;

/// Separates Switchboard package signatures from anything else the same key
/// might sign, and versions the message layout.
const DOMAIN: &[u8] = b"switchboard-package-v1\n";
/// Hex characters of a key's SHA-256 kept as its id.
const KEY_ID_HEX_CHARS: usize = 16;

/// Why a package signature or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Keys are trusted but the package carries no signature.
    #[error(
        "this host only installs signed packages and this one has no signature: \
         sign it with `switchboard sign` and send the signature as `connector.sig` \
         beside `connector.toml` (or as the `signature` part of the upload)"
    )]
    Missing,
    /// The signature text cannot be read.
    #[error(
        "the package signature is malformed: {0}; expected one \
         `ed25519:<base64 of 64 bytes>` per line, as written by `switchboard sign`"
    )]
    Malformed(String),
    /// No signature line verifies against any trusted key.
    #[error(
        "no signature on the package verifies against a trusted key (tried {}): \
         the package changed after it was signed, or a key this host does not \
         trust signed it; sign it again with `switchboard sign` and a trusted key",
        .tried.join(", ")
    )]
    Invalid {
        /// Ids of the trusted keys tried.
        tried: Vec<String>,
    },
    /// A configured trusted key cannot be read.
    #[error(
        "trusted key #{position} is not valid: {reason}; expected \
         `ed25519:<base64 of 32 bytes>`, the public key printed when the signing \
         key was generated"
    )]
    InvalidTrustedKey {
        /// Its 1-based position in the configured list.
        position: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A secret (signing) key cannot be read. The message never repeats the key.
    #[error(
        "the signing key is not valid: {0}; expected `ed25519-secret:<base64 of 32 bytes>` \
         as generated with the public key"
    )]
    InvalidSecretKey(String),
}

impl SignatureError {
    /// The stable machine code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_required",
            SignatureError::Malformed(_) => "signature_malformed",
            SignatureError::Invalid { .. } => "signature_invalid",
            SignatureError::InvalidTrustedKey { .. } => "invalid_trusted_key",
            SignatureError::InvalidSecretKey(_) => "invalid_secret_key",
        }
    }
}

/// The outcome of a successful [`TrustedKeys::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No key is trusted, so the package needs no signature.
    NotRequired,
    /// A signature verified against the trusted key with this id.
    Verified {
        /// The id of the key that verified it (see [`PublicKey::key_id`]).
        key_id: String,
    },
}

/// The bytes a package signature covers.
///
/// `package_hash` is the lowercase hex SHA-256 of the component, as the
/// registry stores it; the manifest is hashed here.
pub fn signing_message(manifest: &str, package_hash: &str) -> Vec<u8> {
    let manifest_hash = hex::encode(Sha256::digest(manifest.as_bytes()));
    let mut message = Vec::with_capacity(DOMAIN.len() + package_hash.len() + 2 + 64 + 1);
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(package_hash.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(manifest_hash.as_bytes());
    message.push(b'\n');
    message
}

/// A public key packages may be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    key_id: String,
}

impl PublicKey {
    /// Parses `ed25519:<base64>` or bare base64 of the 32 key bytes.
    ///
    /// The error is the reason alone; [`TrustedKeys::parse`] says which key.
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.starts_with(SECRET_KEY_PREFIX) {
            return Err("it is a secret key; configure its public key instead".into());
        }
        let encoded = text.strip_prefix(ED25519_PREFIX).unwrap_or(text);
        let bytes = decode_exact::<32>(encoded)?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "the bytes are not an ed25519 public key".to_owned())?;
        if key.is_weak() {
            return Err("it is a weak (small-order) key that cannot sign securely".into());
        }
        Ok(Self::from_verifying_key(key))
    }

    /// The public half of `signing_key`.
    pub fn of(signing_key: &SigningKey) -> Self {
        Self::from_verifying_key(signing_key.verifying_key())
    }

    /// A short, stable name for the key: the first 16 hex characters of the
    /// SHA-256 of its bytes. Safe to log and show.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn from_verifying_key(key: VerifyingKey) -> Self {
        let mut key_id = hex::encode(Sha256::digest(key.as_bytes()));
        key_id.truncate(KEY_ID_HEX_CHARS);
        Self { key, key_id }
    }

    fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        self.key.verify_strict(message, signature).is_ok()
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{ED25519_PREFIX}{}", BASE64.encode(self.key.as_bytes()))
    }
}

/// The public keys this host accepts package signatures from. Empty means
/// signatures are not required.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// Parses each configured key; a key listed twice is kept once.
    pub fn parse(texts: &[String]) -> Result<Self, SignatureError> {
        let mut keys: Vec<PublicKey> = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let key =
                PublicKey::parse(text).map_err(|reason| SignatureError::InvalidTrustedKey {
                    position: index + 1,
                    reason,
                })?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(Self { keys })
    }

    /// Whether no key is trusted (and so no signature is required).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids of the trusted keys, in configured order.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.key_id.clone()).collect()
    }

    /// Decides whether a package may be installed.
    ///
    /// With no trusted key the package needs no signature and `signature` is
    /// not read. Otherwise `signature` (the text of `connector.sig`) must be
    /// well formed and one of its lines must verify against a trusted key.
    pub fn check(
        &self,
        manifest: &str,
        package_hash: &str,
        signature: Option<&str>,
    ) -> Result<Verdict, SignatureError> {
        if self.is_empty() {
            return Ok(Verdict::NotRequired);
        }
        let signatures = parse_signatures(signature.ok_or(SignatureError::Missing)?)?;
        let message = signing_message(manifest, package_hash);
        signatures
            .iter()
            .find_map(|signature| self.keys.iter().find(|k| k.verifies(&message, signature)))
            .map(|key| Verdict::Verified {
                key_id: key.key_id.clone(),
            })
            .ok_or_else(|| SignatureError::Invalid {
                tried: self.key_ids(),
            })
    }
}

/// A new signing key and its public key, as text: (secret, public).
pub fn generate_keypair() -> (String, String) {
    let signing_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let secret = format!(
        "{SECRET_KEY_PREFIX}{}",
        BASE64.encode(signing_key.to_bytes())
    );
    (secret, PublicKey::of(&signing_key).to_string())
}

/// Parses `ed25519-secret:<base64 of 32 bytes>`.
pub fn parse_secret_key(text: &str) -> Result<SigningKey, SignatureError> {
    let encoded = text.trim().strip_prefix(SECRET_KEY_PREFIX).ok_or_else(|| {
        SignatureError::InvalidSecretKey(format!("it does not start with `{SECRET_KEY_PREFIX}`"))
    })?;
    let bytes = decode_exact::<32>(encoded).map_err(SignatureError::InvalidSecretKey)?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Signs a package; returns one signature line (`ed25519:<base64>`, no newline).
pub fn sign_package(key: &SigningKey, manifest: &str, package_hash: &str) -> String {
    let signature = key.sign(&signing_message(manifest, package_hash));
    format!("{ED25519_PREFIX}{}", BASE64.encode(signature.to_bytes()))
}

/// Every signature in a `connector.sig` text; any unreadable line rejects the
/// whole text, since it means the file was damaged or written by something else.
fn parse_signatures(text: &str) -> Result<Vec<Signature>, SignatureError> {
    let mut signatures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if signatures.len() == MAX_SIGNATURE_LINES {
            return Err(SignatureError::Malformed(format!(
                "it has more than {MAX_SIGNATURE_LINES} signature lines"
            )));
        }
        let signature = parse_signature_line(line)
            .map_err(|reason| SignatureError::Malformed(format!("line {}: {reason}", index + 1)))?;
        signatures.push(signature);
    }
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("it is empty".into()));
    }
    Ok(signatures)
}

fn parse_signature_line(line: &str) -> Result<Signature, String> {
    let encoded = line
        .strip_prefix(ED25519_PREFIX)
        .ok_or_else(|| format!("it does not start with `{ED25519_PREFIX}`"))?;
    Ok(Signature::from_bytes(&decode_exact::<64>(encoded)?))
}

/// Decodes standard base64 that must hold exactly `N` bytes.
fn decode_exact<const N: usize>(encoded: &str) -> Result<[u8; N], String> {
    let bytes = BASE64
        .decode(encoded)
        .map_err(|err| format!("it is not valid base64 ({err})"))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format!("it decodes to {len} bytes instead of {N}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "name = \"echo\"\nversion = \"0.1.0\"\ndescription = \"Echoes.\"\n";

    fn component_hash(wasm: &[u8]) -> String {
        hex::encode(Sha256::digest(wasm))
    }

    fn keypair() -> (SigningKey, String) {
        let (secret, public) = generate_keypair();
        let signing_key = parse_secret_key(&secret).expect("a generated secret key parses");
        (signing_key, public)
    }

    fn trusting(public_keys: &[&str]) -> TrustedKeys {
        let texts: Vec<String> = public_keys.iter().map(|k| (*k).to_owned()).collect();
        TrustedKeys::parse(&texts).expect("generated public keys parse")
    }

    fn error_code(result: Result<Verdict, SignatureError>) -> &'static str {
        result.expect_err("the check should fail").code()
    }

    #[test]
    fn a_package_signed_by_a_trusted_key_is_verified_and_names_that_key() {
        let (signing_key, public) = keypair();
        let hash = component_hash(b"component");
        let signature = sign_package(&signing_key, MANIFEST, &hash);
        let verdict = trusting(&[&public])
            .check(MANIFEST, &hash, Some(&signature))
            .expect("the signature verifies");
        let key_id = PublicKey::of(&signing_key).key_id().to_owned();
        assert_eq!(key_id.len(), 16);
        assert_eq!(verdict, Verdict::Verified { key_id });
    }

    #[test]
    fn the_signed_message_is_domain_separated_and_binds_component_then_manifest() {
        let message = signing_message("m", "abc");
        let expected = format!(
            "switchboard-package-v1\nabc\n{}\n",
            hex::encode(Sha256::digest(b"m"))
        );
        assert_eq!(message, expected.into_bytes());
    }

    #[test]
    fn with_no_trusted_keys_no_signature_is_required_even_a_broken_one() {
        let keys = TrustedKeys::parse(&[]).expect("an empty list parses");
        assert!(keys.is_empty());
        let hash = component_hash(b"component");
        for signature in [None, Some("garbage")] {
            let verdict = keys.check(MANIFEST, &hash, signature);
            assert_eq!(verdict, Ok(Verdict::NotRequired));
        }
    }

    #[test]
    fn with_trusted_keys_an_unsigned_package_is_refused_as_signature_required() {
        let (_, public) = keypair();
        let result = trusting(&[&public]).check(MANIFEST, &component_hash(b"c"), None);
        let err = result.expect_err("an unsigned package is refused");
        assert_eq!(err.code(), "signature_required");
        assert!(err.to_string().contains("switchboard sign"));
    }

    #[test]
    fn a_component_changed_after_signing_is_refused_as_invalid() {
        let (signing_key, public) = keypair();
        let signature = sign_package(&signing_key, MANIFEST, &component_hash(b"original"));
        let result =
            trusting(&[&public]).check(MANIFEST, &component_hash(b"tampered"), Some(&signature));
        assert_eq!(error_code(result), "signature_invalid");
    }

    #[test]
    fn a_manifest_changed_after_signing_is_refused_as_invalid() {
        let (signing_key, public) = keypair();
        let hash = component_hash(b"component");
        let signature = sign_package(&signing_key, MANIFEST, &hash);
        let tampered = MANIFEST.replace("Echoes.", "Echoes, and more.");
        let result = trusting(&[&public]).check(&tampered, &hash, Some(&signature));
        assert_eq!(error_code(result), "signature_invalid");
    }

    #[test]
    fn a_signature_by_an_untrusted_key_is_refused_naming_the_trusted_key_ids() {
        let (untrusted, _) = keypair();
        let (_, trusted_public) = keypair();
        let keys = trusting(&[&trusted_public]);
        let hash = component_hash(b"component");
        let signature = sign_package(&untrusted, MANIFEST, &hash);
        let err = keys
            .check(MANIFEST, &hash, Some(&signature))
            .expect_err("an untrusted signer is refused");
        assert_eq!(err.code(), "signature_invalid");
        assert_eq!(
            err,
            SignatureError::Invalid {
                tried: keys.key_ids()
            }
        );
        assert!(err.to_string().contains(&keys.key_ids()[0]));
    }

    #[test]
    fn during_key_rotation_a_package_passes_when_only_its_second_signature_verifies() {
        let (old_key, _) = keypair();
        let (new_key, new_public) = keypair();
        let hash = component_hash(b"component");
        let signatures = format!(
            "{}\n\n  {}  \n",
            sign_package(&old_key, MANIFEST, &hash),
            sign_package(&new_key, MANIFEST, &hash)
        );
        let verdict = trusting(&[&new_public])
            .check(MANIFEST, &hash, Some(&signatures))
            .expect("the second line verifies");
        let key_id = PublicKey::of(&new_key).key_id().to_owned();
        assert_eq!(verdict, Verdict::Verified { key_id });
    }

    #[test]
    fn any_of_several_trusted_keys_may_have_signed_the_package() {
        let (_, first_public) = keypair();
        let (second_key, second_public) = keypair();
        let hash = component_hash(b"component");
        let signature = sign_package(&second_key, MANIFEST, &hash);
        let verdict = trusting(&[&first_public, &second_public])
            .check(MANIFEST, &hash, Some(&signature))
            .expect("the second trusted key verifies");
        assert!(matches!(verdict, Verdict::Verified { .. }));
    }

    #[test]
    fn unreadable_signature_text_is_refused_as_malformed() {
        let (signing_key, public) = keypair();
        let keys = trusting(&[&public]);
        let hash = component_hash(b"component");
        let valid = sign_package(&signing_key, MANIFEST, &hash);
        let short = format!("{ED25519_PREFIX}{}", BASE64.encode([7u8; 63]));
        let unprefixed = valid.trim_start_matches(ED25519_PREFIX).to_owned();
        let cases = [
            ("ed25519:not base64!".to_owned(), "not valid base64"),
            (short, "63 bytes instead of 64"),
            (unprefixed, "does not start with `ed25519:`"),
            (
                format!("rsa:{}", BASE64.encode([7u8; 64])),
                "does not start",
            ),
            ("  \n\n".to_owned(), "it is empty"),
            (format!("{valid}\nnonsense"), "line 2"),
        ];
        for (text, expected) in cases {
            let err = keys
                .check(MANIFEST, &hash, Some(&text))
                .expect_err("malformed text is refused");
            assert_eq!(err.code(), "signature_malformed", "for {text:?}");
            assert!(err.to_string().contains(expected), "{err} for {text:?}");
        }
    }

    #[test]
    fn signature_lines_up_to_the_limit_are_read_and_one_more_is_refused() {
        let (signing_key, public) = keypair();
        let keys = trusting(&[&public]);
        let hash = component_hash(b"component");
        let line = sign_package(&signing_key, MANIFEST, &hash);
        let at_limit = vec![line.as_str(); MAX_SIGNATURE_LINES].join("\n");
        assert!(keys.check(MANIFEST, &hash, Some(&at_limit)).is_ok());
        let over_limit = vec![line.as_str(); MAX_SIGNATURE_LINES + 1].join("\n");
        let result = keys.check(MANIFEST, &hash, Some(&over_limit));
        assert_eq!(error_code(result), "signature_malformed");
    }

    #[test]
    fn a_public_key_is_accepted_with_or_without_its_prefix_and_listed_once() {
        let (_, public) = keypair();
        let bare = public.trim_start_matches(ED25519_PREFIX).to_owned();
        let keys = TrustedKeys::parse(&[public.clone(), format!("  {bare}\n")])
            .expect("both spellings parse");
        assert_eq!(keys.keys.len(), 1);
        assert_eq!(keys.keys[0].to_string(), public);
    }

    #[test]
    fn bad_trusted_key_text_is_refused_with_its_position_and_never_a_secret_key() {
        let (secret, public) = generate_keypair();
        let weak_key = format!("{ED25519_PREFIX}{}", BASE64.encode([0u8; 32]));
        let cases = [
            ("ed25519:%%%".to_owned(), "not valid base64"),
            (
                format!("{ED25519_PREFIX}{}", BASE64.encode([1u8; 31])),
                "31 bytes",
            ),
            (weak_key, "weak"),
            (secret.clone(), "secret key"),
        ];
        for (text, expected) in cases {
            let err = TrustedKeys::parse(&[public.clone(), text.clone()])
                .expect_err("a bad key is refused");
            assert_eq!(err.code(), "invalid_trusted_key", "for {text:?}");
            let message = err.to_string();
            assert!(message.contains("#2"), "{message}");
            assert!(message.contains(expected), "{message} for {text:?}");
            assert!(!message.contains(&secret), "{message} repeats the secret");
        }
    }

    #[test]
    fn a_secret_key_needs_its_prefix_and_32_bytes_and_errors_never_repeat_it() {
        let (secret, public) = generate_keypair();
        let short = format!("{SECRET_KEY_PREFIX}{}", BASE64.encode([9u8; 33]));
        for text in [public.as_str(), short.as_str(), "ed25519-secret:@@"] {
            let err = parse_secret_key(text).expect_err("a bad secret key is refused");
            assert_eq!(err.code(), "invalid_secret_key");
            assert!(!err.to_string().contains(text), "{err} repeats the key");
        }
        let reparsed = parse_secret_key(&format!("  {secret}\n")).expect("whitespace is ignored");
        assert_eq!(PublicKey::of(&reparsed).to_string(), public);
    }

    #[test]
    fn every_error_has_its_stable_code() {
        let codes = [
            (SignatureError::Missing, "signature_required"),
            (SignatureError::Malformed("x".into()), "signature_malformed"),
            (
                SignatureError::Invalid { tried: vec![] },
                "signature_invalid",
            ),
            (
                SignatureError::InvalidTrustedKey {
                    position: 1,
                    reason: "x".into(),
                },
                "invalid_trusted_key",
            ),
            (
                SignatureError::InvalidSecretKey("x".into()),
                "invalid_secret_key",
            ),
        ];
        for (err, code) in codes {
            assert_eq!(err.code(), code);
        }
    }
}
