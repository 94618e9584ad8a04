//! Verifying what providers send: HMAC signatures and URL secrets.
//!
//! Webhook providers sign the raw body (HMAC-SHA256 or HMAC-SHA1, in hex or
//! base64) or put a shared secret in the URL. Verify over the bytes exactly
//! as received — [`http::Request::body`](crate::http::Request) — never over
//! re-serialized JSON, and compare in constant time, as these functions do.
//! A failure is `signature_missing` or `signature_invalid`, which the host
//! answers with 401 and records.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::Error;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of `message` under `key` (for providers that still use it).
pub fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// How a signature is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Lower- or upper-case hex.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// The HMAC algorithm a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA1.
    Sha1,
}

fn missing() -> Error {
    Error::new(
        "signature_missing",
        "the request carries no signature; the provider must sign its webhooks",
    )
}

fn invalid() -> Error {
    Error::new(
        "signature_invalid",
        "the signature does not match the raw request body; check the shared secret, and that nothing re-encodes the body on the way",
    )
}

/// Checks that `signature` (as the provider wrote it, possibly absent) is
/// the HMAC of `body` under `secret`.
pub fn verify_hmac(
    algorithm: Algorithm,
    encoding: Encoding,
    secret: &[u8],
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), Error> {
    let signature = signature
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(missing)?;
    let given = match encoding {
        Encoding::Hex => decode_hex(signature),
        Encoding::Base64 => STANDARD.decode(signature).ok(),
    }
    .ok_or_else(invalid)?;
    let expected: Vec<u8> = match algorithm {
        Algorithm::Sha256 => hmac_sha256(secret, body).to_vec(),
        Algorithm::Sha1 => hmac_sha1(secret, body).to_vec(),
    };
    if constant_time_eq(&expected, &given) {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// Checks a shared secret the provider sends in the URL or a header.
pub fn verify_secret(expected: &str, given: Option<&str>) -> Result<(), Error> {
    let given = given.filter(|g| !g.is_empty()).ok_or_else(missing)?;
    if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// Lower-case hex of `bytes`, for signing requests to providers.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_and_rfc_2202_vectors() {
        // RFC 4231 test case 2 and RFC 2202 test case 2.
        assert_eq!(
            to_hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            to_hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn signatures_verify_in_hex_and_base64_and_fail_with_a_code() {
        let body = br#"{"call":"1"}"#;
        let hex = to_hex(&hmac_sha256(b"k", body));
        let b64 = STANDARD.encode(hmac_sha1(b"k", body));
        assert!(verify_hmac(Algorithm::Sha256, Encoding::Hex, b"k", body, Some(&hex)).is_ok());
        assert!(
            verify_hmac(
                Algorithm::Sha256,
                Encoding::Hex,
                b"k",
                body,
                Some(&hex.to_uppercase())
            )
            .is_ok()
        );
        assert!(verify_hmac(Algorithm::Sha1, Encoding::Base64, b"k", body, Some(&b64)).is_ok());
        let wrong = verify_hmac(Algorithm::Sha256, Encoding::Hex, b"other", body, Some(&hex));
        assert_eq!(wrong.expect_err("wrong key").code, "signature_invalid");
        let none = verify_hmac(Algorithm::Sha256, Encoding::Hex, b"k", body, None);
        assert_eq!(none.expect_err("missing").code, "signature_missing");
        let garbage = verify_hmac(Algorithm::Sha256, Encoding::Hex, b"k", body, Some("zz"));
        assert_eq!(garbage.expect_err("garbage").code, "signature_invalid");
    }

    #[test]
    fn url_secrets_compare_whole() {
        assert!(verify_secret("s3cret", Some("s3cret")).is_ok());
        assert_eq!(
            verify_secret("s3cret", Some("s3cre"))
                .expect_err("short")
                .code,
            "signature_invalid"
        );
        assert_eq!(
            verify_secret("s3cret", None).expect_err("none").code,
            "signature_missing"
        );
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
