//! OAuth2 client credentials: short-lived bearer tokens for API keys.
//!
//! A token is `sbt_<payload>.<tag>`: base64url JSON naming the key, its
//! scopes and the expiry, then an HMAC-SHA256 tag under a key the host draws
//! at start. Checking one needs no store; it is honoured only while its key
//! exists, so revoking a key ends its tokens. Tokens do not outlive the
//! process: a client asks for a new one on `401`, as clients of this grant do.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{ApiKeys, Caller, Scopes};
use crate::capabilities::now_ms;

const PREFIX: &str = "sbt_";

/// Why a token was not issued or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is past its expiry.
    #[error("the token expired; ask /oauth/token for a new one")]
    Expired,
    /// The token is not one this host issued (or was altered, or its key revoked).
    #[error("the token is not valid")]
    Invalid,
    /// The scopes asked for are more than the client's key has.
    #[error("the client may have at most the scopes {0}")]
    ScopeTooWide(Scopes),
}

#[derive(Serialize, Deserialize)]
struct Claims {
    /// The key id.
    sub: String,
    /// The scopes granted.
    scp: Scopes,
    /// Expiry, in seconds since the Unix epoch.
    exp: u64,
}

/// A token just issued, in the shape of RFC 6749 §5.1.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedToken {
    /// The bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The scopes granted, space-separated.
    pub scope: String,
}

/// Issues and checks tokens.
pub struct TokenIssuer {
    key: [u8; 32],
    lifetime: Duration,
}

impl TokenIssuer {
    /// An issuer of tokens that live for `lifetime`, under a fresh key.
    pub fn new(lifetime: Duration) -> Self {
        Self {
            key: rand::random(),
            lifetime,
        }
    }

    fn tag(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(payload.as_bytes());
        mac
    }

    /// A token for `client`, with `requested` scopes or, if none, all of its own.
    pub fn issue(
        &self,
        client: &Caller,
        requested: Option<Scopes>,
    ) -> Result<IssuedToken, TokenError> {
        let scopes = match requested {
            Some(requested) if !client.scopes.covers(requested) => {
                return Err(TokenError::ScopeTooWide(client.scopes));
            }
            Some(requested) if !requested.is_empty() => requested,
            _ => client.scopes,
        };
        let claims = Claims {
            sub: client.id.clone(),
            scp: scopes,
            exp: now_ms() / 1000 + self.lifetime.as_secs(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(self.tag(&payload).finalize().into_bytes());
        Ok(IssuedToken {
            access_token: format!("{PREFIX}{payload}.{tag}"),
            token_type: "Bearer",
            expires_in: self.lifetime.as_secs(),
            scope: scopes.to_string(),
        })
    }

    /// Whether `presented` looks like a token (rather than a key).
    pub fn is_token(presented: &str) -> bool {
        presented.starts_with(PREFIX)
    }

    /// The caller a token stands for: its key's tenant, the token's scopes
    /// (never more than the key has now).
    pub fn verify(&self, presented: &str, keys: &ApiKeys) -> Result<Caller, TokenError> {
        let (payload, tag) = presented
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or(TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Invalid)?;
        self.tag(payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Invalid)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Invalid)?;
        if claims.exp <= now_ms() / 1000 {
            return Err(TokenError::Expired);
        }
        let key = keys.caller(&claims.sub).ok_or(TokenError::Invalid)?;
        Ok(Caller {
            scopes: key
                .scopes
                .iter()
                .filter(|s| claims.scp.allows(*s))
                .collect(),
            ..key
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::auth::{NewKey, Scope};
    use crate::store::SledStore;

    fn setup() -> (tempfile::TempDir, ApiKeys, Caller) {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(dir.path(), Arc::new(crate::sealing::Sealer::ephemeral()))
            .expect("store");
        let keys = ApiKeys::open(Arc::new(store)).expect("keys");
        let made = keys
            .create(
                NewKey {
                    name: "client".into(),
                    tenant: None,
                    scopes: Scopes::parse("read invoke").expect("scopes"),
                },
                None,
            )
            .expect("key");
        let caller = keys.authenticate(&made.key).expect("caller");
        (dir, keys, caller)
    }

    #[test]
    fn a_token_stands_for_its_key_with_the_scopes_asked_for() {
        let (_dir, keys, client) = setup();
        let issuer = TokenIssuer::new(Duration::from_secs(60));
        let token = issuer
            .issue(&client, Some(Scopes::parse("read").expect("scopes")))
            .expect("issued");
        assert_eq!(token.scope, "read");
        assert_eq!(token.expires_in, 60);
        let caller = issuer.verify(&token.access_token, &keys).expect("valid");
        assert_eq!(caller.id, client.id);
        assert!(caller.scopes.allows(Scope::Read));
        assert!(!caller.scopes.allows(Scope::Invoke));
    }

    #[test]
    fn wider_scopes_than_the_key_are_refused() {
        let (_dir, _keys, client) = setup();
        let issuer = TokenIssuer::new(Duration::from_secs(60));
        let err = issuer
            .issue(&client, Some(Scopes::parse("admin").expect("scopes")))
            .expect_err("too wide");
        assert_eq!(err, TokenError::ScopeTooWide(client.scopes));
    }

    #[test]
    fn altered_expired_foreign_and_orphaned_tokens_are_refused() {
        let (_dir, keys, client) = setup();
        let issuer = TokenIssuer::new(Duration::from_secs(60));
        let token = issuer.issue(&client, None).expect("issued").access_token;
        let mut altered = token.clone();
        altered.insert(6, 'x');
        assert_eq!(issuer.verify(&altered, &keys), Err(TokenError::Invalid));
        let other = TokenIssuer::new(Duration::from_secs(60));
        assert_eq!(other.verify(&token, &keys), Err(TokenError::Invalid));
        let expired = TokenIssuer {
            key: issuer.key,
            lifetime: Duration::ZERO,
        }
        .issue(&client, None)
        .expect("issued");
        assert_eq!(
            issuer.verify(&expired.access_token, &keys),
            Err(TokenError::Expired)
        );
        let admin = Caller {
            scopes: [Scope::Admin].into_iter().collect(),
            ..client.clone()
        };
        keys.revoke(&client.id, &admin).expect("revoke");
        assert_eq!(issuer.verify(&token, &keys), Err(TokenError::Invalid));
    }
}
