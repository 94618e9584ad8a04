//! Standard Webhooks signatures on outbound deliveries.
//!
//! Each request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed
//! by the secret's bytes: `whsec_` followed by their base64. A receiver
//! verifies it with any Standard Webhooks library.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest secret bytes accepted.
const MIN_SECRET_BYTES: usize = 24;

/// A subscription's signing secret, `whsec_<base64>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// A new random 32-byte secret.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; 32]>().to_vec())
    }

    /// Parses `whsec_<base64>` of at least 24 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or_else(|| "a signing secret is `whsec_` followed by base64".to_owned())?;
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "a signing secret needs at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self(bytes))
    }

    /// The secret as `whsec_<base64>`.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` value for one message.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// Whether any `v1` signature in `header` (space-separated) is this
    /// secret's, compared in constant time.
    pub fn verify(&self, id: &str, timestamp: u64, body: &[u8], header: &str) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any size");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        header
            .split(' ')
            .filter_map(|sig| sig.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|sig| mac.clone().verify_slice(&sig).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_test_vector_verifies() {
        // From the Standard Webhooks specification's reference libraries.
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let body = br#"{"test": 2432232314}"#;
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &format!("v1,bm90IGl0 {signature}")
        ));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, &signature));
    }

    #[test]
    fn secrets_round_trip_and_short_or_unprefixed_ones_are_refused() {
        let secret = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&secret.expose()), Ok(secret.clone()));
        assert!(SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
        assert_eq!(format!("{secret:?}"), "SigningSecret(..)");
    }
}
